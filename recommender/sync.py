"""The catalog's registration with the sync app (autodiscovered by ``SyncConfig``)."""

from typing import Any

from django.db.models import QuerySet

import sync
from recommender.models import Item
from recommender.serializers import item_to_dict


@sync.register(Item)
class ItemSync(sync.SyncedModel):
    """Items reach every dashboard as ``"item"`` changes, in their API shape.

    A shape of items narrows them as ``GET /api/items/`` does: active items
    only; ``category`` by id or slug; ``min_price``/``max_price`` inclusive;
    ``q`` every word a prefix of a word of the title or the tags (the
    PostgreSQL search's rule; the HTTP search is the source of truth for
    snapshots); ``min_id``/``max_id`` inclusive, the range of ids a paged
    view shows (its pages, ``?cursor=``, are the snapshot).
    """

    name = "item"
    shape = sync.ShapeSpec(
        filters={
            "category": sync.Exact("category_id", text_field="category"),
            "q": sync.Words("title", "tags"),
            "min_price": sync.AtLeast("price"),
            "max_price": sync.AtMost("price"),
            "min_id": sync.AtLeast("id"),
            "max_id": sync.AtMost("id"),
        },
        where={"active": True},
    )

    def serialize(self, obj: Item) -> dict[str, Any]:
        """Return the wire shape of ``obj`` (as ``GET /api/items/<id>/`` has it)."""
        return item_to_dict(obj)

    def get_queryset(self) -> QuerySet[Item]:
        """Return every item with its category, as a snapshot reads them."""
        return Item.objects.select_related("category")
