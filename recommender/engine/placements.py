"""Placements: the lists besides "for you", scored over the catalog rows.

* ``similar`` — items like one item: its behavioural neighbours (what users
  who interacted with it went on to), with content similarity as the
  fallback that orders the rest and covers items nobody has touched yet;
* ``complements`` — items carted or bought together with the user's basket
  (or one given item), from a co-occurrence model of cart and purchase
  events, with behavioural neighbours as a weak fallback;
* ``trending`` — what is rising: shoppers in the last hour against the
  item's usual hourly rate, as a Poisson z-score.

Every function returns a score per catalog row (``-inf`` where barred) that
the caller ranks under the merchandising rules like any other list. Pure
numpy / scipy; the vocabulary below is read by models, wire validation and
the page.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from recommender.engine.indexing import gather_rows

__all__ = [
    "DEFAULT_PLACEMENT",
    "ITEM_PLACEMENTS",
    "PLACEMENTS",
    "PLACEMENT_NAMES",
    "PlacementName",
    "basket_rows",
    "complement_scores",
    "complements_fit",
    "similar_scores",
    "strongest_source",
    "trending_scores",
]

#: Placement name -> human label, default first.
PLACEMENTS: dict[str, str] = {
    "for_you": "For you",
    "similar": "Similar items",
    "complements": "Goes well with",
    "trending": "Trending now",
}

#: Placement names, default first.
PLACEMENT_NAMES: tuple[str, ...] = tuple(PLACEMENTS)

#: The values a client may send, as a type for pydantic and ninja schemas
#: (``Literal["for_you", "similar", …]``, built from :data:`PLACEMENTS`).
PlacementName = Literal[PLACEMENT_NAMES]  # type: ignore[valid-type]

#: The placement a message or request means when it names none.
DEFAULT_PLACEMENT = "for_you"

#: Placements about one item: ``similar`` needs it, ``complements`` may take
#: it instead of the user's basket.
ITEM_PLACEMENTS = frozenset({"similar", "complements"})

#: (position in the sources, target row, value) of item-to-item links.
Links = tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.float32]]

_EPSILON = 1e-9
_TIE_WEIGHT = 1e-3


def _max_normalised(values: NDArray[np.float32]) -> NDArray[np.float32]:
    top = float(values.max()) if values.size else 0.0
    if top > 0:
        values /= np.float32(top)
    return values


def similar_scores(
    anchor: int,
    *,
    neighbours: sp.csr_matrix,
    features: sp.csr_matrix,
    content_weight: float = 0.1,
) -> tuple[NDArray[np.float32], NDArray[np.float32], NDArray[np.float32]]:
    """Return scores of items like the item at row ``anchor``.

    Parameters
    ----------
    anchor : int
        Catalog row of the item on screen.
    neighbours : scipy.sparse.csr_matrix of shape (n_items, n_items), float32
        Behavioural item-to-item weights; row ``j`` = what ``j`` leads to.
    features : scipy.sparse.csr_matrix of shape (n_items, n_features), float32
        L2-normalised item features (a dot product is a cosine).
    content_weight : float
        Weight of content similarity next to the behavioural score (max 1):
        small, so behaviour leads wherever it has an opinion.

    Returns
    -------
    scores : ndarray of shape (n_items,), float32
        ``-inf`` at ``anchor``.
    behaviour : ndarray of shape (n_items,), float32
        The behavioural part (max 1).
    content : ndarray of shape (n_items,), float32
        The feature cosine with the anchor, before ``content_weight``.
    """
    n = neighbours.shape[0]
    if not 0 <= anchor < n:
        raise ValueError(f"anchor row {anchor} outside 0..{n - 1}")
    _, cols, vals = gather_rows(neighbours, np.array([anchor], dtype=np.int64))
    behaviour = np.zeros(n, dtype=np.float32)
    behaviour[cols] = np.maximum(vals, 0.0)
    behaviour = _max_normalised(behaviour)
    row = features[anchor]
    content = np.asarray(features @ row.T.toarray(), dtype=np.float32).ravel()
    scores = behaviour + content * np.float32(content_weight)
    scores[anchor] = -np.inf
    return scores, behaviour, content


def complements_fit(
    user_ids: NDArray[np.int64],
    rows: NDArray[np.int64],
    n_items: int,
    *,
    keep: int = 50,
) -> sp.csr_matrix:
    """Return a co-occurrence model of cart and purchase events.

    Two items co-occur when one user carted or bought both. Weights are
    cosines of the items' user sets (so best-sellers do not lead every
    row), the diagonal is zero, and each row keeps its ``keep`` largest.

    Parameters
    ----------
    user_ids : ndarray of shape (n_events,), int64
        Who carted or bought.
    rows : ndarray of shape (n_events,), int64
        Catalog row of the item.
    n_items : int
    keep : int
        Neighbours kept per item (bounds memory and scoring time).

    Returns
    -------
    scipy.sparse.csr_matrix of shape (n_items, n_items), float32
    """
    user_ids = np.asarray(user_ids, dtype=np.int64)
    rows = np.asarray(rows, dtype=np.int64)
    if user_ids.shape != rows.shape:
        raise ValueError("user_ids and rows differ in length")
    ok = (rows >= 0) & (rows < n_items)
    if not ok.any():
        return sp.csr_matrix((n_items, n_items), dtype=np.float32)
    users, user_index = np.unique(user_ids[ok], return_inverse=True)
    x = sp.csr_matrix(
        (np.ones(int(ok.sum()), dtype=np.float32), (user_index, rows[ok])),
        shape=(users.shape[0], n_items),
    )
    x.data[:] = 1.0  # carted twice still counts once
    co = sp.csr_matrix(x.T @ x, dtype=np.float32)
    co.setdiag(0.0)
    co.eliminate_zeros()
    norms = np.sqrt(np.asarray(x.sum(axis=0), dtype=np.float32).ravel())
    norms[norms < _EPSILON] = 1.0
    co = sp.csr_matrix(sp.diags(1.0 / norms) @ co @ sp.diags(1.0 / norms))
    co = sp.csr_matrix(co, dtype=np.float32)
    return _keep_top_per_row(co, keep)


def _keep_top_per_row(matrix: sp.csr_matrix, keep: int) -> sp.csr_matrix:
    """Return ``matrix`` with only the ``keep`` largest cells of each row."""
    coo = matrix.tocoo()
    order = np.lexsort((-coo.data, coo.row))
    row_sorted = coo.row[order]
    row_start = np.searchsorted(row_sorted, row_sorted, side="left")
    rank = np.arange(order.shape[0]) - row_start
    kept = order[rank < keep]
    out = sp.csr_matrix(
        (coo.data[kept], (coo.row[kept], coo.col[kept])),
        shape=matrix.shape,
        dtype=np.float32,
    )
    out.sort_indices()
    return out


def basket_rows(
    event_rows: NDArray[np.int64],
    weights: NDArray[np.float32],
    *,
    min_weight: float,
    limit: int = 20,
) -> NDArray[np.int64]:
    """Return the catalog rows of a user's basket, most recent first.

    The basket is the items the user carted or bought lately: events whose
    action weight is at least ``min_weight`` (the cart's), the last
    ``limit`` distinct items.

    Parameters
    ----------
    event_rows : ndarray of shape (n_events,), int64
        Catalog row of each event, oldest first; -1 for items gone.
    weights : ndarray of shape (n_events,), float32
        Action weight of each event.
    """
    event_rows = np.asarray(event_rows, dtype=np.int64)
    strong = (np.asarray(weights) >= min_weight) & (event_rows >= 0)
    newest_first = event_rows[strong][::-1]
    _, first = np.unique(newest_first, return_index=True)
    return newest_first[np.sort(first)][:limit]


def complement_scores(
    basket: NDArray[np.int64],
    *,
    complements: sp.csr_matrix,
    neighbours: sp.csr_matrix,
    fallback_weight: float = 0.05,
) -> tuple[NDArray[np.float32], dict[str, Links]]:
    """Return scores of items that go with ``basket``, and the links used.

    Parameters
    ----------
    basket : ndarray of shape (m,), int64
        Catalog rows, most recent first (earlier ones weigh less).
    complements : scipy.sparse.csr_matrix of shape (n_items, n_items)
        From :func:`complements_fit`.
    neighbours : scipy.sparse.csr_matrix of shape (n_items, n_items)
        Behavioural neighbours: a weak fallback where nothing was carted
        together yet.
    fallback_weight : float

    Returns
    -------
    scores : ndarray of shape (n_items,), float32
        ``-inf`` on the basket's own items; 0 everywhere for an empty basket.
    links : dict
        ``"complements"`` and ``"fallback"``: each a (position in
        ``basket``, target row, weighted value) triple of arrays, for the
        reasons.
    """
    n = complements.shape[0]
    basket = np.asarray(basket, dtype=np.int64)
    scores = np.zeros(n, dtype=np.float32)
    empty = np.empty(0, dtype=np.int64)
    if not basket.size:
        none = (empty, empty, np.empty(0, dtype=np.float32))
        return scores, {"complements": none, "fallback": none}
    recency = np.exp2(-np.arange(basket.shape[0], dtype=np.float32) / 3.0)
    position, cols, vals = gather_rows(complements, basket)
    vals = vals * recency[position]
    f_position, f_cols, f_vals = gather_rows(neighbours, basket)
    f_vals = np.maximum(f_vals, 0.0) * recency[f_position]
    top = float(f_vals.max()) if f_vals.size else 0.0
    if top > 0:
        f_vals *= np.float32(fallback_weight / top)
    all_cols = np.concatenate([cols, f_cols]).astype(np.int64)
    all_vals = np.concatenate([vals, f_vals]).astype(np.float32)
    scores += np.bincount(all_cols, weights=all_vals, minlength=n).astype(np.float32)
    scores[basket] = -np.inf
    return scores, {
        "complements": (position, cols.astype(np.int64), vals.astype(np.float32)),
        "fallback": (f_position, f_cols.astype(np.int64), f_vals.astype(np.float32)),
    }


def strongest_source(chosen: NDArray[np.int64], links: Links) -> NDArray[np.int64]:
    """Return, per chosen row, the index of the link source adding most (-1: none).

    Parameters
    ----------
    chosen : ndarray of shape (k,), int64
    links : (position, col, value)
        One of the link triples of :func:`complement_scores`.

    Returns
    -------
    ndarray of shape (k,), int64
        Index into the sources (e.g. the basket) or -1.
    """
    position, cols, vals = links
    out = np.full(chosen.shape[0], -1, dtype=np.int64)
    if not position.size or not chosen.size:
        return out
    n_sources = int(position.max()) + 1
    order = np.argsort(chosen)
    slot = np.minimum(np.searchsorted(chosen[order], cols), chosen.shape[0] - 1)
    hit = (chosen[order][slot] == cols) & (vals > 0)
    table = np.zeros((chosen.shape[0], n_sources), dtype=np.float32)
    np.add.at(table, (order[slot[hit]], position[hit]), vals[hit])
    best = np.argmax(table, axis=1)
    has = table.max(axis=1) > 0
    out[has] = best[has]
    return out


def trending_scores(
    recent: NDArray[np.float32],
    past: NDArray[np.float32],
    *,
    past_hours: float,
    prior: float = 1.0,
) -> NDArray[np.float32]:
    """Return how much each item is rising: last hour against its usual rate.

    A Poisson z-score, ``(recent - rate) / sqrt(rate + prior)``, where
    ``rate`` is the item's mean hourly count over the ``past_hours`` before
    the last hour: an item seen by 30 shoppers in the last hour after 2 an
    hour scores far above a steady best-seller at 40 an hour. The ``prior``
    keeps items that were never seen before from dividing by zero and
    tempers one-off spikes. Equal scores go to the item seen more in the
    last hour.

    Parameters
    ----------
    recent : ndarray of shape (n_items,)
        Shoppers per item in the last hour.
    past : ndarray of shape (n_items,)
        Shoppers per item in the ``past_hours`` before it.
    past_hours : float
    prior : float

    Returns
    -------
    ndarray of shape (n_items,), float32
    """
    if past_hours <= 0:
        raise ValueError(f"past_hours must be positive, got {past_hours}")
    recent = np.asarray(recent, dtype=np.float32)
    rate = np.asarray(past, dtype=np.float32) / np.float32(past_hours)
    z = (recent - rate) / np.sqrt(rate + np.float32(prior))
    # Equal rises (a steady seller and an item nobody saw both score 0):
    # the busier item first.
    volume = recent / np.float32(max(float(recent.max(initial=0.0)), 1.0))
    return (z + np.float32(_TIE_WEIGHT) * volume).astype(np.float32)
