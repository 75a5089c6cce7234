"""Explain a recommended list: human reasons and the ids they rest on.

For each of the ``k`` recommended rows this returns up to two sentences,
strongest signal first, and ``because``: the ids of the user's own items
that contributed most to the item's score. Reasons must be true and
distinct:

* "Because you {verb} X" names the history item whose neighbour links add
  most to the item; never the item itself, nor another item with the same
  title (it would read as the item itself);
* "Similar to X" only when X's feature vector has a cosine of at least
  :data:`SIMILAR_MIN_COSINE` with the item's (same department, shared tags),
  and never the X a behavioural reason already names;
* popularity and newness name no history item, and an item that is in the
  list for them alone has an empty ``because``.

Everything is computed for the ``k`` rows at once from the cells gathered
while scoring; the Python loop at the end only formats ``k`` short lists.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from recommender.engine.actions import ACTION_VERBS
from recommender.engine.indexing import gather_rows
from recommender.engine.signals import Cells, Links, Signals
from recommender.engine.types import History

if TYPE_CHECKING:
    from recommender.engine.scoring import Engine

__all__ = ["BECAUSE_MAX", "BECAUSE_SHARE", "SIMILAR_MIN_COSINE", "reasons_explain"]

#: Least feature cosine for "Similar to X". Rows are unit-norm with category
#: and tags weighing 1 each and the numeric facts ~0.4 together: two items
#: of different departments with no common tag score ~0.1, same department
#: ~0.5 and more with shared tags.
SIMILAR_MIN_COSINE = 0.5

#: At most this many ids in ``because``.
BECAUSE_MAX = 3

#: A history item is in ``because`` when it contributes at least this share
#: of the largest contribution to the item.
BECAUSE_SHARE = 0.25

#: Reasons per item.
_REASONS_MAX = 2


def _table(
    cells: Cells, best: NDArray[np.int64], m: int, n_rows: int
) -> NDArray[np.float64]:
    """Return the (k, m) sum of link values from history item j to row best[i].

    Parameters
    ----------
    cells : Cells
        Links (history position, target row, value).
    best : ndarray of shape (k,), int64
        Recommended rows (distinct).
    m : int
        Distinct history items.
    n_rows : int
        Catalog rows (every ``col`` is below it).

    Returns
    -------
    ndarray of shape (k, m), float64
    """
    position, col, value = cells
    k = best.shape[0]
    # A catalog-sized slot map: one gather finds the few links that land on
    # a recommended row among the user's ~10^4 (binary search costs 4x).
    slot_of = np.full(n_rows, -1, dtype=np.int64)
    slot_of[best] = np.arange(k)
    slot = slot_of[col]
    hit = slot >= 0
    flat = slot[hit] * m + position[hit]
    table = np.bincount(flat, weights=value[hit], minlength=k * m)
    return table.astype(np.float64).reshape(k, m)


def _cosines(
    engine: Engine, features: Cells, best: NDArray[np.int64], m: int
) -> NDArray[np.float64]:
    """Return the (k, m) feature cosine of row best[i] with history item j.

    Feature rows are unit-norm, so the dot product is the cosine; ``k``
    dense feature rows are small.
    """
    f_position, f_col, f_value = features
    k = best.shape[0]
    bpos, bcols, bvals = gather_rows(engine.features, best)
    dense = np.zeros((k, engine.features.shape[1]), dtype=np.float32)
    dense[bpos, bcols] = bvals
    cell = dense[:, f_col] * f_value  # (k, n_cells)
    flat = (np.arange(k)[:, np.newaxis] * m + f_position).ravel()
    cosines = np.bincount(flat, weights=cell.ravel(), minlength=k * m)
    return cosines.astype(np.float64).reshape(k, m)


def _shares(
    tables: dict[str, NDArray[np.float64]],
    signals: Signals,
    best: NDArray[np.int64],
) -> NDArray[np.float64]:
    """Return each history item's share of each row's blended score, (k, m).

    A personal signal at row ``i`` is a fixed scale times the sum over
    history items of their contributions (the scale being the per-user
    normalisation), so its value splits exactly across the items in
    proportion to the contributions; weighted by the blend, the splits add.
    """
    shares = None
    for name, table in tables.items():
        values = signals.personal.get(name)
        if values is None:
            continue
        sums = table.sum(axis=1)
        scale = np.divide(
            values[best].astype(np.float64) * signals.weights[name],
            sums,
            out=np.zeros_like(sums),
            where=sums > 0,
        )
        part = table * scale[:, np.newaxis]
        shares = part if shares is None else shares + part
    return shares


def _because(
    shares: NDArray[np.float64], rows: NDArray[np.int64], ids: NDArray[np.int64]
) -> list[list[int]]:
    """Return, per recommended row, the ids of its strongest contributors.

    Parameters
    ----------
    shares : ndarray of shape (k, m), float64
        Each history item's share of each row's score (see :func:`_shares`).
    rows : ndarray of shape (m,), int64
        Catalog rows of the history items.
    ids : ndarray of shape (n_items,), int64
        Item id of every catalog row.

    Returns
    -------
    list of list of int
        At most :data:`BECAUSE_MAX` ids per row, strongest first.
    """
    k, m = shares.shape
    # Up to BECAUSE_MAX argmax passes: each takes the largest remaining share,
    # the first history item on a tie (what a stable sort would give), at a
    # fraction of a (k, m) sort.
    left = shares.copy()
    every = np.arange(k)
    top = np.empty((k, min(BECAUSE_MAX, m)), dtype=np.int64)
    for j in range(top.shape[1]):
        top[:, j] = np.argmax(left, axis=1)
        left[every, top[:, j]] = -np.inf
    top_share = np.take_along_axis(shares, top, axis=1)
    keep = (top_share > 0) & (top_share >= BECAUSE_SHARE * top_share[:, :1])
    history_ids = ids[rows]
    return [history_ids[top[i][keep[i]]].tolist() for i in range(k)]


def _verbs(
    link_src: dict[str, NDArray[np.int64]],
    history: History,
    event_rows: NDArray[np.int64],
) -> dict[int, str]:
    """Return the verb of the user's strongest action on each source row.

    Parameters
    ----------
    link_src : dict of str to ndarray of shape (k,), int64
        Per item-to-item signal, the source row of each recommended row.
    history : History
    event_rows : ndarray of shape (n_events,), int64

    Returns
    -------
    dict
        Catalog row -> past-tense verb ("liked").
    """
    sources = [src[src >= 0] for src in link_src.values()]
    rows = np.unique(np.concatenate(sources)) if sources else np.empty(0, np.int64)
    if not rows.size or not event_rows.size:
        return {}
    strength = np.asarray(history.weights, dtype=np.float32)
    same = event_rows[np.newaxis, :] == rows[:, np.newaxis]  # (n_sources, n_events)
    strongest = np.argmax(np.where(same, strength, -np.inf), axis=1).tolist()
    return {
        row: ACTION_VERBS.get(history.actions[event], "viewed")
        for row, event in zip(rows.tolist(), strongest, strict=True)
    }


def reasons_explain(
    engine: Engine,
    *,
    best: NDArray[np.int64],
    signals: Signals,
    links: Links | None,
    rows: NDArray[np.int64],
    history: History,
    event_rows: NDArray[np.int64],
) -> list[tuple[list[str], list[int]]]:
    """Return ``(reasons, because)`` for each recommended row, in order.

    Parameters
    ----------
    engine : Engine
        The engine that scored the list (catalog, feature matrix, ids).
    best : ndarray of shape (k,), int64
        Recommended catalog rows, best first.
    signals : Signals
        The user's signals (see :mod:`recommender.engine.signals`).
    links : Links or None
        The cells gathered while scoring; None for an empty history.
    rows : ndarray of shape (m,), int64
        Catalog rows of the user's distinct history items.
    history : History
        The user's events (actions name the verb).
    event_rows : ndarray of shape (n_events,), int64
        Catalog row of every event, -1 when the item left the catalog.

    Returns
    -------
    list of (list of str, list of int)
        Up to two distinct sentences, and the history item ids (at most
        :data:`BECAUSE_MAX`, strongest first) behind the item.
    """
    k = best.shape[0]
    if k == 0:
        return []
    cat = engine.catalog
    m = rows.shape[0]
    # Per item-to-item signal: the history item adding most to each row.
    link_src: dict[str, NDArray[np.int64]] = {}
    tables: dict[str, NDArray[np.float64]] = {}
    similar_src = np.full(k, -1, dtype=np.int64)
    if links is not None and m:
        for name, cells in links.neighbours.items():
            table = _table(cells, best, m, engine.n_items)
            tables[name] = table
            src = np.full(k, -1, dtype=np.int64)
            has = table.max(axis=1) > 0
            src[has] = rows[np.argmax(table, axis=1)][has]
            link_src[name] = src
        if links.features is not None:
            cosines = _cosines(engine, links.features, best, m)
            nearest = np.argmax(cosines, axis=1)
            close = cosines[np.arange(k), nearest] >= SIMILAR_MIN_COSINE
            similar_src[close] = rows[nearest][close]
            # Content attributions count only from really similar items: a
            # faint cosine through price alone explains nothing.
            content = links.weights[np.newaxis, :].astype(np.float64) * cosines
            tables["content"] = np.where(cosines >= SIMILAR_MIN_COSINE, content, 0.0)
    shares = _shares(tables, signals, best) if tables else None
    because = _because(shares, rows, engine.ids) if shares is not None else None
    verbs = _verbs(link_src, history, event_rows)
    parts = signals.parts_at(best)
    names = signals.names
    ranked = np.argsort(-parts, axis=0, kind="stable").T.tolist()
    positive = (parts > 0).T.tolist()
    sources = {name: src.tolist() for name, src in link_src.items()}
    similar = similar_src.tolist()
    named_rows = {src for src in similar if src >= 0}
    for src in sources.values():
        named_rows.update(r for r in src if r >= 0)
    all_ids = dict(zip(named_rows, engine.ids[list(named_rows)].tolist(), strict=True))
    categories = cat.category[best].tolist()
    out: list[tuple[list[str], list[int]]] = []
    for col, item in enumerate(best.tolist()):
        title = cat.titles[item]
        cat_index = categories[col]
        category = cat.category_names[cat_index] if cat_index >= 0 else ""
        popular = f"Popular in {category}" if category else "Popular right now"
        texts: list[str] = []
        named: list[int] = []
        for kind in ranked[col]:
            if not positive[col][kind] or len(texts) == _REASONS_MAX:
                continue
            name = names[kind]
            if name in sources:
                src = sources[name][col]
                if src < 0 or src in named or cat.titles[src] == title:
                    continue
                text = f"Because you {verbs[src]} {cat.titles[src]}"
            elif name == "content":
                src = similar[col]
                if src < 0 or src in named or cat.titles[src] == title:
                    continue
                text = f"Similar to {cat.titles[src]}"
            elif name == "popularity":
                src, text = -1, popular
            elif name == "new":
                src, text = -1, f"New in {category}" if category else "New arrival"
            else:
                continue
            if text in texts:
                continue
            texts.append(text)
            if src >= 0:
                named.append(src)
        ids = because[col] if because is not None else []
        # The items a sentence names lead ``because``, in ``because`` order.
        lead = [all_ids[src] for src in named]
        if len(lead) > 1:
            lead.sort(key=lambda i: ids.index(i) if i in ids else len(ids))
        merged = lead + [i for i in ids if i not in lead]
        out.append((texts or [popular], merged[:BECAUSE_MAX]))
    return out
