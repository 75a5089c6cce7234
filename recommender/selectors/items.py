"""Reads of the catalog."""

from django.db import connection, transaction

from recommender.models import Item
from recommender.serializers import item_to_dict
from sync.selectors import seq_latest


def items_snapshot() -> dict:
    """Return ``{"seq": S, "items": [...]}``: active items and the seq they reflect.

    Read in one repeatable-read transaction so the items are exactly the state
    at ``seq`` (SQLite transactions are serialisable already).
    """
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        seq = seq_latest()
        items = [
            item_to_dict(item)
            for item in Item.objects.filter(active=True).select_related("category")
        ]
    return {"seq": seq, "items": items}
