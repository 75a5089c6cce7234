"""Catalog edits applied in place: the rows that changed, not a rebuild.

A staff edit, a new item or a deletion touches a handful of rows of a catalog
that may hold a million. :func:`catalog_patched` writes those rows over a
built catalog and appends new ones, keeping every other row where it was, so
the engine can reuse its feature rows, its behaviour model re-indexed into
rows and its popularity tables (see :meth:`Engine.with_changes`).

Rows never move: a deleted item stays as an inactive row (it may still sit in
someone's history), and new items are appended, which keeps rows in id order
because ids only grow. An edit that would move rows (an id below the largest
known one, a category deleted from the middle of the list) cannot be patched
and asks for a full build.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from recommender.engine.indexing import lookup, sorted_catalog
from recommender.engine.types import Catalog

__all__ = ["CatalogPatch", "catalog_patched"]


@dataclass(frozen=True)
class CatalogPatch:
    """A catalog after edits, and where they landed.

    Attributes
    ----------
    catalog : Catalog
        Rows in ascending id order, as the engine keeps them.
    rows : ndarray of shape (n_changed,), int64
        Ascending rows whose item was edited or added (not the retired ones).
    retired : ndarray of shape (n_retired,), int64
        Rows of deleted items, now inactive.
    n_before : int
        Rows before the edits: rows from here on were appended.
    """

    catalog: Catalog
    rows: NDArray[np.int64]
    retired: NDArray[np.int64]
    n_before: int


def catalog_patched(
    catalog: Catalog, changed: Catalog, removed: NDArray[np.int64]
) -> CatalogPatch | None:
    """Return ``catalog`` with ``changed`` written over it and ``removed`` retired.

    Parameters
    ----------
    catalog : Catalog
        Rows in ascending id order (an engine's catalog).
    changed : Catalog
        The current state of every edited or new item (any order); its
        ``category_names`` is the whole current category list.
    removed : ndarray of shape (n_removed,), int64
        Ids of deleted items (unknown ids are ignored).

    Returns
    -------
    CatalogPatch or None
        None when the edits cannot keep rows in place: a new id below the
        largest known one, or a category list that changed other than by new
        categories at its end.
    """
    names = list(changed.category_names)
    if names[: len(catalog.category_names)] != list(catalog.category_names):
        return None
    changed = sorted_catalog(changed)
    n_before = int(catalog.ids.shape[0])
    at = lookup(catalog.ids, changed.ids)
    new = at < 0
    if new.any() and n_before and changed.ids[new].min() <= catalog.ids[-1]:
        return None
    n_new = int(new.sum())
    rows = at.copy()
    rows[new] = np.arange(n_before, n_before + n_new, dtype=np.int64)

    def column(old: NDArray, fresh: NDArray) -> NDArray:
        out = np.concatenate([old, np.empty(n_new, dtype=old.dtype)])
        out[rows] = fresh
        return out

    titles = _list_patched(catalog.titles, rows, changed.titles, n_new)
    tags = _list_patched(catalog.tags, rows, changed.tags, n_new)
    ids = column(catalog.ids, changed.ids)
    active = column(catalog.active, changed.active)
    retired = lookup(ids, np.asarray(removed, dtype=np.int64))
    retired = np.unique(retired[retired >= 0])
    active[retired] = False
    return CatalogPatch(
        catalog=Catalog(
            ids=ids,
            titles=titles,
            category=column(catalog.category, changed.category),
            category_names=names,
            tags=tags,
            price=column(catalog.price, changed.price),
            rating=column(catalog.rating, changed.rating),
            year=column(catalog.year, changed.year),
            active=active,
            created=column(catalog.created, changed.created),
        ),
        rows=np.sort(rows),
        retired=retired,
        n_before=n_before,
    )


def _list_patched(old: list, rows: NDArray[np.int64], values: list, n_new: int) -> list:
    """Return ``old`` with ``values`` at ``rows`` (``old`` itself if nothing differs).

    A million-entry list costs ~15 ms to copy, so an edit that leaves titles
    (or tags) as they were shares the list with the engine before it.
    """
    pairs = list(zip(rows.tolist(), values, strict=True))
    if not n_new and all(old[row] == value for row, value in pairs):
        return old
    out = list(old) + [None] * n_new
    for row, value in pairs:
        out[row] = value
    return out
