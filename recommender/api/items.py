"""``/api/items/``: the catalog snapshot."""

from django.http import HttpRequest
from ninja import Router, Schema
from pydantic import Field

from recommender import selectors

router = Router(tags=["items"])


class ItemOut(Schema):
    id: int
    title: str
    description: str
    category: str | None
    category_id: int | None
    tags: list[str]
    price: float
    rating: float
    year: int | None
    active: bool
    updated: str | None


class ItemsOut(Schema):
    seq: int = Field(
        description="Change-log seq this snapshot reflects; resume after it."
    )
    items: list[ItemOut]


@router.get("/items/", response=ItemsOut, summary="Catalog snapshot with its seq")
def items(request: HttpRequest) -> dict:
    """Return every active item and the change-log seq they reflect."""
    return selectors.items_snapshot()
