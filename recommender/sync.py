"""The catalog's registration with the sync app (autodiscovered by ``SyncConfig``)."""

from typing import Any

from django.db.models import QuerySet

import sync
from recommender.models import Item
from recommender.serializers import item_to_dict


@sync.register(Item)
class ItemSync(sync.SyncedModel):
    """Items reach every dashboard as ``"item"`` changes, in their API shape."""

    name = "item"

    def serialize(self, obj: Item) -> dict[str, Any]:
        """Return the wire shape of ``obj`` (as ``GET /api/items/<id>/`` has it)."""
        return item_to_dict(obj)

    def get_queryset(self) -> QuerySet[Item]:
        """Return every item with its category, as a snapshot reads them."""
        return Item.objects.select_related("category")
