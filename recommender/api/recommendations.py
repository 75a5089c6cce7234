"""``/api/recommendations/``: the session user's lists, by placement."""

from typing import Literal

from django.http import HttpRequest
from ninja import Query, Router, Schema
from ninja.responses import Status
from ninja.security import django_auth
from pydantic import Field

from recommender.api.schemas import ErrorOut
from recommender.engine.placements import DEFAULT_PLACEMENT, PlacementName
from recommender.services.lists import UnknownPlacementItem, placement_list

router = Router(tags=["recommendations"])


class RecommendedItemOut(Schema):
    id: int
    title: str
    score: float
    reasons: list[str]
    because: list[int] = Field(
        default_factory=list,
        description="Ids of the user's own items that contributed most to this "
        "one, strongest first; empty when it comes from popularity or newness.",
    )


class RecommendationsOut(Schema):
    type: Literal["recommendations"]
    version: int
    placement: str = Field(description="Which list: for_you, similar, …")
    item: int | None = Field(
        default=None, description="The item a similar / complements list is about."
    )
    items: list[RecommendedItemOut]
    computed_ms: float


class PlacementQuery(Schema):
    placement: PlacementName = Field(
        default=DEFAULT_PLACEMENT,
        description="for_you (the user's list), similar (items like `item`), "
        "complements (what goes with `item`, or with the user's cart), trending.",
    )
    item: int | None = Field(default=None, ge=1, le=2**63 - 1)


@router.get(
    "/recommendations/",
    response={200: RecommendationsOut, 401: ErrorOut, 404: ErrorOut},
    auth=django_auth,
    summary="The session user's recommendations of one placement",
)
def recommendations(
    request: HttpRequest, query: Query[PlacementQuery]
) -> dict | Status:
    """Return the logged-in user's list of ``placement`` (for_you by default)."""
    try:
        return placement_list(
            user_id=request.user.pk, placement=query.placement, item=query.item
        )
    except UnknownPlacementItem as exc:
        return Status(404, {"code": "unknown_item", "message": str(exc)})
