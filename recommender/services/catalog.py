"""Reading the catalog into the engine's in-memory form."""

import numpy as np
from django.db.models import F, QuerySet

from recommender.engine import Catalog
from recommender.models import Category, Item
from recommender.serializers import item_to_dict
from recommender.sync import ItemSync
from sync.selectors import changed_keys
from sync.services import changes_record


def catalog_load() -> Catalog:
    """Return every item (active or not) as the engine's column arrays."""
    return _catalog_read(Item.objects.all())


def catalog_changes(*, after: int, until: int) -> tuple[Catalog, np.ndarray] | None:
    """Return the items changed by change-log entries ``after`` < seq <= ``until``.

    Returns
    -------
    (changed, removed) or None
        ``changed``: the current state of every item edited or created in
        that range (a :class:`Catalog`, with every category); ``removed``:
        ndarray of shape (n,), int64, the ids of the ones since deleted.
        None when the range is not all in the log any more (pruned, or too
        long to be worth reading): read the whole catalog instead.
    """
    keys = changed_keys(
        model=ItemSync.name, after=after, until=until, limit=_CHANGES_READ_MAX
    )
    if keys is None:
        return None
    ids = sorted({int(key) for key in keys})
    changed = _catalog_read(Item.objects.filter(pk__in=ids))
    removed = np.setdiff1d(np.asarray(ids, dtype=np.int64), changed.ids)
    return changed, removed


# Past this many changes since the engine's version, reading the whole
# catalog costs less than reading the changes and patching.
_CHANGES_READ_MAX = 20_000


def _catalog_read(items: QuerySet[Item]) -> Catalog:
    categories = list(Category.objects.order_by("id").values_list("id", "name"))
    index_of = {cid: i for i, (cid, _) in enumerate(categories)}
    rows = list(
        items.order_by("id").values_list(
            "id",
            "title",
            "category_id",
            "tags",
            "price",
            "rating",
            "year",
            "active",
            F("created"),
        )
    )
    n = len(rows)
    return Catalog(
        ids=np.fromiter((r[0] for r in rows), dtype=np.int64, count=n),
        titles=[r[1] for r in rows],
        category=np.fromiter(
            (index_of.get(r[2], -1) if r[2] is not None else -1 for r in rows),
            dtype=np.int32,
            count=n,
        ),
        category_names=[name for _, name in categories],
        tags=[[t.strip().lower() for t in r[3].split(",") if t.strip()] for r in rows],
        price=np.fromiter((float(r[4]) for r in rows), dtype=np.float32, count=n),
        rating=np.fromiter((r[5] for r in rows), dtype=np.float32, count=n),
        year=np.fromiter(
            (np.nan if r[6] is None else r[6] for r in rows), dtype=np.float32, count=n
        ),
        active=np.fromiter((r[7] for r in rows), dtype=np.bool_, count=n),
        created=np.fromiter(
            (r[8].timestamp() for r in rows), dtype=np.float64, count=n
        ),
    )


def items_changed(queryset: QuerySet[Item]) -> list[int]:
    """Record an upsert in the change log for every item of ``queryset``.

    For writes that change items without saving them one by one (bulk
    updates, a renamed or deleted category).
    """
    items = list(queryset.select_related("category").order_by("pk"))
    return changes_record(
        model_name="item",
        changes=[("upsert", str(item.pk), item_to_dict(item)) for item in items],
    )
