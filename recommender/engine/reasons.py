"""Explain recommended lists: human reasons and the ids they rest on.

For each recommended row this returns up to two sentences, strongest signal
first, and ``because``: the ids of the user's own items that contributed
most to the item's score. Reasons must be true and distinct:

* "Because you {verb} X" names the history item whose neighbour links add
  most to the item; never the item itself, nor another item with the same
  title (it would read as the item itself);
* "Similar to X" only when X's feature vector has a cosine of at least
  :data:`SIMILAR_MIN_COSINE` with the item's (same department, shared tags),
  and never the X a behavioural reason already names;
* popularity and newness name no history item, and an item that is in the
  list for them alone has an empty ``because``.

A chunk of users is explained at once, from the cells gathered while scoring
it: every array below is padded to (users, K recommended rows, M history
items), so numpy's per-call cost is paid once per chunk, not once per user.
The Python loop at the end only formats the short lists.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from recommender.engine.actions import ACTION_VERBS
from recommender.engine.indexing import gather_rows
from recommender.engine.signals import PERSONAL, SHARED, ChunkSignals, blend_weights
from recommender.engine.types import History

if TYPE_CHECKING:
    from recommender.engine.scoring import Engine

__all__ = [
    "BECAUSE_MAX",
    "BECAUSE_SHARE",
    "SIMILAR_MIN_COSINE",
    "Explained",
    "reasons_explain_many",
]

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

#: One recommended row's sentences and ``because`` ids.
Explained = tuple[list[str], list[int]]


class _Warm:
    """The warm users' history items, padded to (n_warm, M)."""

    def __init__(self, chunk: ChunkSignals) -> None:
        first = chunk.first_row
        sizes = np.diff(first)
        self.n = sizes.shape[0]
        self.m = int(sizes.max())
        # owner[i], local[i]: warm user and position of history item i.
        self.owner = np.repeat(np.arange(self.n, dtype=np.int64), sizes)
        self.local = np.arange(chunk.rows.shape[0], dtype=np.int64) - first[self.owner]
        self.rows = np.full((self.n, self.m), -1, dtype=np.int64)
        self.rows[self.owner, self.local] = chunk.rows
        self.weights = np.zeros((self.n, self.m), dtype=np.float64)
        self.weights[self.owner, self.local] = chunk.weights


def _tables(
    chunk: ChunkSignals, warm: _Warm, best: NDArray[np.int64], n_rows: int
) -> dict[str, NDArray[np.float64]]:
    """Return, per link signal, the (n_warm, K, M) sum of links item j -> best[u, i].

    ``best`` is (n_warm, K), padded with -1. A (n_warm, n_rows) slot map
    finds the few links that land on a recommended row among each user's
    ~10^4 with one gather.
    """
    n, k = best.shape
    slot_of = np.full((n, n_rows), -1, dtype=np.int64)
    user, slot = np.nonzero(best >= 0)
    slot_of[user, best[user, slot]] = slot
    tables: dict[str, NDArray[np.float64]] = {}
    for name, (position, col, value) in chunk.links.items():
        owner = warm.owner[position]
        at = slot_of[owner, col]
        hit = at >= 0
        flat = (owner[hit] * k + at[hit]) * warm.m + warm.local[position[hit]]
        table = np.bincount(flat, weights=value[hit], minlength=n * k * warm.m)
        tables[name] = table.astype(np.float64).reshape(n, k, warm.m)
    return tables


def _cosines(
    engine: Engine, chunk: ChunkSignals, warm: _Warm, best: NDArray[np.int64]
) -> NDArray[np.float64]:
    """Return the (n_warm, K, M) feature cosine of row best[u, i] with item j.

    Feature rows are unit-norm, so the dot product is the cosine; the dense
    feature rows of the recommended items are small (n_warm x K x features).
    """
    n, k = best.shape
    n_features = engine.features.shape[1]
    bpos, bcols, bvals = gather_rows(engine.features, np.maximum(best, 0).ravel())
    dense = np.zeros((n * k, n_features), dtype=np.float32)
    dense[bpos, bcols] = bvals
    dense = dense.reshape(n, k, n_features)
    position, col, value = chunk.features
    owner = warm.owner[position]
    cell = dense[owner, :, col] * value[:, np.newaxis]  # (n_cells, K)
    flat = (owner[:, np.newaxis] * k + np.arange(k)) * warm.m + warm.local[position][
        :, np.newaxis
    ]
    cosines = np.bincount(flat.ravel(), weights=cell.ravel(), minlength=n * k * warm.m)
    return cosines.astype(np.float64).reshape(n, k, warm.m)


def _shares(
    tables: dict[str, NDArray[np.float64]], at_best: dict[str, NDArray[np.float64]]
) -> NDArray[np.float64]:
    """Return each history item's share of each row's blended score, (n, K, M).

    A personal signal at a row is a fixed scale times the sum over history
    items of their contributions (the scale being the per-user
    normalisation), so its value splits exactly across the items in
    proportion to the contributions; weighted by the blend, the splits add.
    ``at_best`` holds each signal's weighted value at the rows, (n, K).
    """
    shares = None
    for name, table in tables.items():
        sums = table.sum(axis=2)
        scale = np.divide(at_best[name], sums, out=np.zeros_like(sums), where=sums > 0)
        part = table * scale[:, :, np.newaxis]
        shares = part if shares is None else shares + part
    assert shares is not None
    return shares


def _because(
    shares: NDArray[np.float64], warm: _Warm, ids: NDArray[np.int64]
) -> list[list[list[int]]]:
    """Return, per warm user and recommended row, its strongest contributors' ids.

    At most :data:`BECAUSE_MAX` ids, strongest first.
    """
    n, k, m = shares.shape
    flat = shares.reshape(n * k, m)
    every = np.arange(n * k)
    # Argmax passes: each takes the largest remaining share, the first
    # history item on a tie (what a stable sort would give), at a fraction
    # of a sort along M.
    left = flat.copy()
    top = np.empty((n * k, min(BECAUSE_MAX, m)), dtype=np.int64)
    for j in range(top.shape[1]):
        top[:, j] = left.argmax(axis=1)
        left[every, top[:, j]] = -np.inf
    top_share = flat[every[:, np.newaxis], top]
    keep = (top_share > 0) & (top_share >= BECAUSE_SHARE * top_share[:, :1])
    history_ids = ids[np.maximum(warm.rows, 0)]  # (n, M)
    owner = np.repeat(np.arange(n), k)[:, np.newaxis]
    chosen = np.where(keep, history_ids[owner, top], -1).tolist()
    rows = [[i for i in row if i >= 0] for row in chosen]
    return [rows[u * k : (u + 1) * k] for u in range(n)]


def _verbs(
    chunk: ChunkSignals,
    histories: list[History],
    event_rows: list[NDArray[np.int64]],
    sources: NDArray[np.int64],
    n_rows: int,
) -> dict[tuple[int, int], str]:
    """Return the verb of each warm user's strongest action on each source row.

    Parameters
    ----------
    sources : ndarray of shape (n_warm, n_sources), int64
        Rows some reason may name, -1 for none.

    Returns
    -------
    dict
        (warm user, catalog row) -> past-tense verb ("liked").
    """
    flat = sources.ravel()
    wanted = np.flatnonzero(flat >= 0)
    if not wanted.size:
        return {}
    want_key = np.unique(wanted // sources.shape[1] * n_rows + flat[wanted])
    warm_users = chunk.warm.tolist()
    counts = [event_rows[u].shape[0] for u in warm_users]
    owner = np.repeat(np.arange(len(warm_users), dtype=np.int64), counts)
    rows = np.concatenate([event_rows[u] for u in warm_users])
    key = owner * n_rows + rows
    # Only the events on a source row matter: a handful of the chunk's.
    at = np.minimum(np.searchsorted(want_key, key), want_key.shape[0] - 1)
    event = np.flatnonzero((want_key[at] == key) & (rows >= 0))
    starts = np.concatenate([[0], np.cumsum(counts)]).tolist()
    owners = owner[event].tolist()
    strength = np.array(
        [
            histories[warm_users[o]].weights[e - starts[o]]
            for o, e in zip(owners, event.tolist(), strict=True)
        ],
        dtype=np.float32,
    )
    # The strongest event per (user, row); the first one on a tie.
    order = np.lexsort((event, -strength, key[event]))
    keys, first = np.unique(key[event][order], return_index=True)
    strongest = event[order][first].tolist()
    out: dict[tuple[int, int], str] = {}
    for both, e in zip(keys.tolist(), strongest, strict=True):
        j = both // n_rows
        action = histories[warm_users[j]].actions[e - starts[j]]
        out[(j, both - j * n_rows)] = ACTION_VERBS.get(action, "viewed")
    return out


def reasons_explain_many(
    engine: Engine,
    *,
    chunk: ChunkSignals,
    best: list[NDArray[np.int64]],
    histories: list[History],
    event_rows: list[NDArray[np.int64]],
) -> list[list[Explained]]:
    """Return ``(reasons, because)`` for each user's recommended rows, in order.

    Parameters
    ----------
    engine : Engine
        The engine that scored the lists (catalog, feature matrix, ids).
    chunk : ChunkSignals
        The users' signals and the cells gathered while scoring them.
    best : list of ndarray of shape (k_u,), int64
        Per user, the recommended catalog rows, best first.
    histories : list of History
        The users' events (actions name the verb).
    event_rows : list of ndarray of shape (n_events,), int64
        Per user, the catalog row of every event, -1 when the item left.

    Returns
    -------
    list of list of (list of str, list of int)
        Per user and row: up to two distinct sentences, and the history item
        ids (at most :data:`BECAUSE_MAX`, strongest first) behind the item.
    """
    n_users = chunk.n_users
    lengths = [b.shape[0] for b in best]
    k = max(lengths, default=0)
    if k == 0:
        return [[] for _ in range(n_users)]
    cat = engine.catalog
    padded = np.full((n_users, k), -1, dtype=np.int64)
    for u, rows in enumerate(best):
        padded[u, : rows.shape[0]] = rows
    at = np.maximum(padded, 0)
    names = [*PERSONAL, *SHARED]
    weights = {cold: blend_weights(engine.params, cold=cold) for cold in (False, True)}
    is_warm = np.zeros(n_users, dtype=np.bool_)
    is_warm[chunk.warm] = True
    # Each signal's weighted value at each recommended row: (signals, users, K).
    parts = np.zeros((len(names), n_users, k), dtype=np.float32)
    warm_index = np.arange(chunk.warm.shape[0])[:, np.newaxis]
    for s, name in enumerate(PERSONAL):
        if chunk.warm.size:
            parts[s, chunk.warm] = chunk.personal[name][
                warm_index, at[chunk.warm]
            ] * np.float32(weights[False][name])
    for u, (popularity, new) in enumerate(chunk.shared):
        w = weights[not is_warm[u]]
        parts[len(PERSONAL), u] = popularity[at[u]] * np.float32(w["popularity"])
        parts[len(PERSONAL) + 1, u] = new[at[u]] * np.float32(w["new"])
    ranked = np.argsort(-parts, axis=0, kind="stable").transpose(1, 2, 0).tolist()
    positive = (parts > 0).transpose(1, 2, 0).tolist()

    # Per warm user and row: the history item behind each link signal, the
    # really similar one, and the because ids.
    sources: dict[str, list[list[int]]] = {}
    similar: list[list[int]] = []
    because: list[list[list[int]]] = []
    verbs: dict[tuple[int, int], str] = {}
    warm_of = {u: j for j, u in enumerate(chunk.warm.tolist())}
    if chunk.warm.size:
        warm = _Warm(chunk)
        wbest = padded[chunk.warm]
        tables = _tables(chunk, warm, wbest, engine.n_items)
        link_src: dict[str, NDArray[np.int64]] = {}
        user = np.arange(chunk.warm.shape[0])[:, np.newaxis]  # (n_warm, 1)
        for name, table in tables.items():
            strongest = warm.rows[user, np.argmax(table, axis=2)]
            link_src[name] = np.where(table.max(axis=2) > 0, strongest, -1)
        cosines = _cosines(engine, chunk, warm, wbest)
        nearest = np.argmax(cosines, axis=2)
        close = cosines.max(axis=2) >= SIMILAR_MIN_COSINE
        similar_src = np.where(close, warm.rows[user, nearest], -1)
        # Content attributions count only from really similar items: a
        # faint cosine through price alone explains nothing.
        content = warm.weights[:, np.newaxis, :] * cosines
        tables["content"] = np.where(cosines >= SIMILAR_MIN_COSINE, content, 0.0)
        at_best = {
            name: chunk.personal[name][warm_index, at[chunk.warm]].astype(np.float64)
            * weights[False][name]
            for name in tables
        }
        because = _because(_shares(tables, at_best), warm, engine.ids)
        verbs = _verbs(
            chunk,
            histories,
            event_rows,
            np.concatenate(list(link_src.values()), axis=1),
            engine.n_items,
        )
        sources = {name: src.tolist() for name, src in link_src.items()}
        similar = similar_src.tolist()
    titles = cat.titles
    category_of = cat.category[at].tolist()
    out: list[list[Explained]] = []
    for u in range(n_users):
        j = warm_of.get(u)
        explained: list[Explained] = []
        for col, item in enumerate(padded[u, : lengths[u]].tolist()):
            title = titles[item]
            cat_index = category_of[u][col]
            category = cat.category_names[cat_index] if cat_index >= 0 else ""
            popular = f"Popular in {category}" if category else "Popular right now"
            texts: list[str] = []
            named: list[int] = []
            for kind in ranked[u][col]:
                if not positive[u][col][kind] or len(texts) == _REASONS_MAX:
                    continue
                name = names[kind]
                if name in sources:
                    src = sources[name][j][col] if j is not None else -1
                    if src < 0 or src in named or titles[src] == title:
                        continue
                    text = f"Because you {verbs[(j, src)]} {titles[src]}"
                elif name == "content":
                    src = similar[j][col] if j is not None else -1
                    if src < 0 or src in named or titles[src] == title:
                        continue
                    text = f"Similar to {titles[src]}"
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
            ids = because[j][col] if j is not None else []
            # The items a sentence names lead ``because``, in ``because`` order.
            lead = [int(engine.ids[src]) for src in named]
            if len(lead) > 1:
                lead.sort(key=lambda i: ids.index(i) if i in ids else len(ids))
            merged = lead + [i for i in ids if i not in lead]
            explained.append((texts or [popular], merged[:BECAUSE_MAX]))
        out.append(explained)
    return out
