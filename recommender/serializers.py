"""Plain-dict views of models, shared by the change log, the API and the sockets."""

from datetime import datetime
from decimal import Decimal
from typing import Any

from recommender.models import Item

#: Columns :func:`item_row_to_dict` reads, in order, for ``values_list(*ITEM_COLUMNS)``.
ITEM_COLUMNS = (
    "id",
    "title",
    "description",
    "category_id",
    "tags",
    "price",
    "rating",
    "year",
    "active",
    "updated",
)


def item_to_dict(item: Item) -> dict[str, Any]:
    """Return the wire representation of ``item`` (JSON- and msgpack-safe)."""
    category = item.category if item.category_id else None
    return {
        "id": item.pk,
        "title": item.title,
        "description": item.description,
        "category": category.name if category is not None else None,
        "category_id": item.category_id,
        "tags": item.tag_list,
        "price": float(item.price),
        "rating": float(item.rating),
        "year": item.year,
        "active": bool(item.active),
        "updated": item.updated.isoformat() if item.updated else None,
    }


def item_row_to_dict(
    row: tuple[Any, ...], category_names: dict[int, str]
) -> dict[str, Any]:
    """Return what :func:`item_to_dict` returns, from a row of ``ITEM_COLUMNS``.

    Used where thousands of items are read at once: a tuple and a dict lookup
    cost a fraction of a model instance and a join.
    """
    pk, title, description, category_id, tags, price, rating, year, active, updated = (
        row
    )
    price_value: Decimal = price
    updated_at: datetime | None = updated
    return {
        "id": pk,
        "title": title,
        "description": description,
        "category": category_names.get(category_id) if category_id else None,
        "category_id": category_id,
        "tags": [tag.strip() for tag in tags.split(",") if tag.strip()],
        "price": float(price_value),
        "rating": float(rating),
        "year": year,
        "active": bool(active),
        "updated": updated_at.isoformat() if updated_at else None,
    }
