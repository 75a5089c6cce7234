"""Plain-dict views of models, shared by the change log, the API and the sockets."""

from typing import Any

from recommender.models import Item


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
