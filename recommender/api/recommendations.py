"""``/api/recommendations/``: the session user's current list."""

from typing import Literal

from django.http import HttpRequest
from ninja import Router, Schema
from ninja.security import django_auth
from pydantic import Field

from recommender.api.schemas import ErrorOut
from recommender.services import recommendations as recs

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
    items: list[RecommendedItemOut]
    computed_ms: float


@router.get(
    "/recommendations/",
    response={200: RecommendationsOut, 401: ErrorOut},
    auth=django_auth,
    summary="The session user's latest recommendations",
)
def recommendations(request: HttpRequest) -> dict:
    """Return the logged-in user's current list (computed if none is stored)."""
    return recs.recommendations_current(user_id=request.user.pk)
