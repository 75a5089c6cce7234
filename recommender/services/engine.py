"""The recommendation engine: a batch-fitted behaviour model plus live scoring.

Two immutable halves, each replaced atomically when it is rebuilt:

* :class:`Behaviour` is fitted from every user's events by
  ``recompute_recommendations`` (or ``evaluate``): sparse item-to-item
  neighbours (EASE on catalogs small enough for a dense inverse, cosine
  item-kNN beyond) pruned to the top ``N`` per item, and a time-bucketed
  popularity table so "popular right now" can be read at any moment.
* :class:`Engine` adds what depends on the catalog: the item feature matrix,
  the id <-> row maps, and the neighbours re-indexed into catalog rows.

:meth:`Engine.recommend` scores one user from their recent :class:`History`
alone, so a new event changes their list at once with no refit: behavioural
neighbours of recent items (recent events weigh more), content similarity to
the same profile, popularity at ``now``, and a small bonus for new items. Items
the behaviour model has never seen still get content, recency and popularity
scores, so new catalog entries are recommendable from the first minute.

No Django imports here: the services that read the database build
:class:`Catalog`, :class:`Interactions` and :class:`History` and call this.
"""

from __future__ import annotations

import io
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import scipy.linalg
import scipy.sparse as sp
from numpy.typing import NDArray

from recommender.services.features import FeatureWeights, item_features_build
from recommender.similarity import EPSILON, top_k

__all__ = [
    "ACTION_VERBS",
    "ACTION_WEIGHTS",
    "Behaviour",
    "Catalog",
    "Engine",
    "FitParams",
    "History",
    "Interactions",
    "Recommendation",
    "ScoreParams",
]

#: Strength of each action, weakest first; stored as ``BrowsingEvent.weight``.
ACTION_WEIGHTS: dict[str, float] = {
    "view": 1.0,
    "click": 1.5,
    "like": 2.5,
    "cart": 3.0,
    "purchase": 4.0,
}

#: Past-tense verb of each action, for "Because you liked Toy Story".
ACTION_VERBS: dict[str, str] = {
    "view": "viewed",
    "click": "opened",
    "like": "liked",
    "cart": "added",
    "purchase": "bought",
}

_FORMAT_VERSION = 1
_SECS_PER_DAY = 86400.0
_SECS_PER_HOUR = 3600.0

ProgressFn = Callable[[str], None]


# --------------------------------------------------------------------------
# Inputs and outputs
# --------------------------------------------------------------------------
@dataclass(frozen=True)
class Catalog:
    """Every item the engine may score, as parallel arrays (any order)."""

    ids: NDArray[np.int64]
    titles: list[str]
    category: NDArray[np.int32]
    category_names: list[str]
    tags: list[list[str]]
    price: NDArray[np.float32]
    rating: NDArray[np.float32]
    year: NDArray[np.float32]
    active: NDArray[np.bool_]
    created: NDArray[np.float64]

    def __post_init__(self) -> None:
        n = len(self.ids)
        for name in ("titles", "category", "tags", "price", "rating", "year"):
            if len(getattr(self, name)) != n:
                raise ValueError(
                    f"Catalog.{name} has {len(getattr(self, name))} rows, ids {n}"
                )
        for name in ("active", "created"):
            if len(getattr(self, name)) != n:
                raise ValueError(
                    f"Catalog.{name} has {len(getattr(self, name))} rows, ids {n}"
                )


@dataclass(frozen=True)
class Interactions:
    """All users' events, for the batch fit (parallel arrays, any order)."""

    user_ids: NDArray[np.int64]
    item_ids: NDArray[np.int64]
    weights: NDArray[np.float32]
    timestamps: NDArray[np.float64]


@dataclass(frozen=True)
class History:
    """One user's recent events, oldest first (parallel arrays)."""

    item_ids: NDArray[np.int64]
    actions: list[str]
    weights: NDArray[np.float32]
    timestamps: NDArray[np.float64]

    @classmethod
    def empty(cls) -> History:
        """Return the history of a user who has done nothing yet."""
        return cls(
            item_ids=np.empty(0, dtype=np.int64),
            actions=[],
            weights=np.empty(0, dtype=np.float32),
            timestamps=np.empty(0, dtype=np.float64),
        )


@dataclass(frozen=True)
class Recommendation:
    """One recommended item with its blended score and why it was chosen."""

    item_id: int
    score: float
    reasons: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------
# Parameters (defaults chosen on a validation split carved from train; see
# docs/evaluation.md)
# --------------------------------------------------------------------------
@dataclass(frozen=True)
class FitParams:
    """How :meth:`Behaviour.fit` learns item neighbours and popularity.

    Attributes
    ----------
    method : {"auto", "ease", "knn"}
        ``auto`` uses EASE up to ``dense_max_items`` items, cosine kNN beyond.
    ease_lambda : float
        L2 regularisation of EASE (added to the Gram diagonal).
    dense_max_items : int
        Largest item count for the dense EASE inverse (memory ~ 8 n^2 bytes).
    neighbours : int
        Neighbours kept per item; bounds memory and per-user scoring time.
    min_item_events : int
        Items with fewer events get no neighbours (they still get popularity
        and content scores); shrinks the cubic EASE cost.
    bucket_secs : float
        Width of the popularity time buckets, in seconds.
    """

    method: str = "auto"
    ease_lambda: float = 200.0
    dense_max_items: int = 20_000
    neighbours: int = 200
    min_item_events: int = 3
    bucket_secs: float = 3600.0


@dataclass(frozen=True)
class ScoreParams:
    """How :meth:`Engine.recommend` blends its signals.

    Attributes
    ----------
    history_half_life_events : float
        An event this many events back counts half as much as the newest.
    action_power : float
        Exponent on the action weight (0 ignores the action, 1 is linear).
    behaviour_weight, content_weight, popularity_weight, new_weight : float
        Blend weights of the normalised signals.
    popularity_half_life_days : float
        Half-life of an event's contribution to "popular right now".
    new_half_life_days : float
        Half-life of the new-item bonus after an item is created.
    cold_new_weight : float
        Weight of the new-item bonus, relative to popularity, for a user
        with no history (cold start ranks by popularity first).
    """

    history_half_life_events: float = 5.0
    action_power: float = 2.0
    behaviour_weight: float = 1.0
    content_weight: float = 0.2
    popularity_weight: float = 0.02
    new_weight: float = 0.01
    popularity_half_life_days: float = 30.0
    new_half_life_days: float = 180.0
    cold_new_weight: float = 0.1


# --------------------------------------------------------------------------
# Behaviour: the batch-fitted part
# --------------------------------------------------------------------------
def _noop(_: str) -> None:
    return None


def _top_n_rows(block: NDArray[np.float32], n: int) -> tuple[NDArray, NDArray]:
    """Return (row, column) indices of the ``n`` largest positive cells per row.

    Parameters
    ----------
    block : ndarray of shape (n_rows, n_cols), float32
    n : int

    Returns
    -------
    rows, cols : ndarray of shape (n_kept,), int64
    """
    n_rows, n_cols = block.shape
    if n < n_cols:
        cols = np.argpartition(-block, n - 1, axis=1)[:, :n]
    else:
        cols = np.broadcast_to(np.arange(n_cols), (n_rows, n_cols))
    rows = np.broadcast_to(np.arange(n_rows)[:, np.newaxis], cols.shape)
    values = block[rows, cols]
    keep = values > 0
    return rows[keep].astype(np.int64), cols[keep].astype(np.int64)


def _ease_neighbours(
    x: sp.csr_matrix, *, lam: float, n_keep: int, progress: ProgressFn
) -> sp.csr_matrix:
    """Return EASE weights pruned to the top ``n_keep`` per source item.

    Parameters
    ----------
    x : scipy.sparse.csr_matrix of shape (n_users, n_items)
    lam : float
    n_keep : int
    progress : callable

    Returns
    -------
    scipy.sparse.csr_matrix of shape (n_items, n_items), float32
        Row ``j`` holds how much a history item ``j`` adds to each target.
    """
    n = x.shape[1]
    gram = (x.T @ x).toarray().astype(np.float32)
    gram[np.diag_indices(n)] += np.float32(lam)
    progress(f"inverting the {n}x{n} Gram matrix")
    # Cholesky-based inverse: the Gram matrix is symmetric positive definite,
    # and potrf+potri is ~4x faster than a general inverse.
    chol, info = scipy.linalg.lapack.spotrf(gram, lower=0, overwrite_a=1)
    if info != 0:
        raise np.linalg.LinAlgError(f"Gram matrix not positive definite ({info})")
    del gram
    inv, info = scipy.linalg.lapack.spotri(chol, lower=0, overwrite_c=1)
    if info != 0:
        raise np.linalg.LinAlgError(f"Gram matrix inversion failed ({info})")
    del chol
    # potri fills only the upper triangle; mirror it block by block so no
    # n^2 index arrays or full-size temporaries are needed.
    step = 1024
    for start in range(0, n, step):
        stop = min(n, start + step)
        inv[stop:, start:stop] = inv[start:stop, stop:].T
        tri = inv[start:stop, start:stop]
        inv[start:stop, start:stop] = np.triu(tri) + np.triu(tri, 1).T
    diag = np.diag(inv).copy()
    diag[np.abs(diag) < EPSILON] = EPSILON
    # B = I - P diag(1/diag(P)) with a zero diagonal: B_ij = -P_ij / P_jj.
    inv /= -diag[np.newaxis, :]
    inv[np.diag_indices(n)] = 0.0
    rows_all, cols_all, vals_all = [], [], []
    step = max(1, min(n, 4_000_000 // max(1, n)))
    for start in range(0, n, step):
        block = inv[start : start + step]
        rows, cols = _top_n_rows(block, n_keep)
        rows_all.append(rows + start)
        cols_all.append(cols)
        vals_all.append(block[rows, cols])
    return _csr(rows_all, cols_all, vals_all, n)


def _knn_neighbours(
    x: sp.csr_matrix, *, n_keep: int, progress: ProgressFn
) -> sp.csr_matrix:
    """Return cosine item-item similarities pruned to the top ``n_keep`` per item.

    Works in row chunks of the item-item product, so memory stays at one
    chunk x n_items block however large the catalog.

    Parameters
    ----------
    x : scipy.sparse.csr_matrix of shape (n_users, n_items)
    n_keep : int
    progress : callable

    Returns
    -------
    scipy.sparse.csr_matrix of shape (n_items, n_items), float32
    """
    n = x.shape[1]
    norms = np.sqrt(np.asarray(x.multiply(x).sum(axis=0), dtype=np.float32).ravel())
    norms[norms < EPSILON] = EPSILON
    xn = sp.csr_matrix(x @ sp.diags(1.0 / norms), dtype=np.float32)
    xt = sp.csr_matrix(xn.T, dtype=np.float32)
    rows_all, cols_all, vals_all = [], [], []
    step = max(1, min(n, 8_000_000 // max(1, n)))
    for start in range(0, n, step):
        stop = min(n, start + step)
        block = (xt[start:stop] @ xn).toarray()
        block[np.arange(stop - start), np.arange(start, stop)] = 0.0
        rows, cols = _top_n_rows(block, n_keep)
        rows_all.append(rows + start)
        cols_all.append(cols)
        vals_all.append(block[rows, cols])
        if start // step % 20 == 0:
            progress(f"neighbours {stop}/{n}")
    return _csr(rows_all, cols_all, vals_all, n)


def _csr(rows: list, cols: list, vals: list, n: int) -> sp.csr_matrix:
    if rows:
        r = np.concatenate(rows)
        c = np.concatenate(cols)
        v = np.concatenate(vals).astype(np.float32)
    else:
        r = c = np.empty(0, dtype=np.int64)
        v = np.empty(0, dtype=np.float32)
    out = sp.csr_matrix((v, (r, c)), shape=(n, n), dtype=np.float32)
    out.sort_indices()
    return out


class Behaviour:
    """What all users' events teach: item neighbours and popularity over time.

    Immutable. Fitted in batch by :meth:`fit`, stored with :meth:`to_bytes`,
    shared by every server process through :meth:`from_bytes`.

    Attributes
    ----------
    item_ids : ndarray of shape (n_seen,), int64
        Ids of the items that occur in the fitted events, ascending.
    neighbours : scipy.sparse.csr_matrix of shape (n_seen, n_seen), float32
        Row ``j``: how much interacting with item ``j`` adds to each item.
    counts : ndarray of shape (n_seen,), float32
        Events per item over the whole fitted period.
    pop_item, pop_bucket : ndarray of shape (n_cells,), int32
        Sparse (item, time bucket) cells of the popularity table.
    pop_count : ndarray of shape (n_cells,), float32
        Events in each cell.
    bucket_origin : float
        Start of bucket 0, epoch seconds.
    bucket_secs : float
        Bucket width, seconds.
    fitted_at : float
        The ``now`` of the fit, epoch seconds.
    method : str
        ``"ease"``, ``"knn"`` or ``"empty"``.
    """

    __slots__ = (
        "bucket_origin",
        "bucket_secs",
        "counts",
        "fitted_at",
        "item_ids",
        "method",
        "n_events",
        "neighbours",
        "pop_bucket",
        "pop_count",
        "pop_item",
    )

    def __init__(
        self,
        *,
        item_ids: NDArray[np.int64],
        neighbours: sp.csr_matrix,
        counts: NDArray[np.float32],
        pop_item: NDArray[np.int32],
        pop_bucket: NDArray[np.int32],
        pop_count: NDArray[np.float32],
        bucket_origin: float,
        bucket_secs: float,
        fitted_at: float,
        method: str,
        n_events: int,
    ) -> None:
        n = item_ids.shape[0]
        if neighbours.shape != (n, n) or counts.shape != (n,):
            raise ValueError("Behaviour arrays disagree on the number of items")
        for name, value in (
            ("item_ids", item_ids),
            ("neighbours", neighbours),
            ("counts", counts),
            ("pop_item", pop_item),
            ("pop_bucket", pop_bucket),
            ("pop_count", pop_count),
            ("bucket_origin", float(bucket_origin)),
            ("bucket_secs", float(bucket_secs)),
            ("fitted_at", float(fitted_at)),
            ("method", method),
            ("n_events", int(n_events)),
        ):
            if isinstance(value, np.ndarray):
                value.flags.writeable = False
            object.__setattr__(self, name, value)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("Behaviour is immutable")

    def __repr__(self) -> str:
        return (
            f"Behaviour(method={self.method!r}, items={self.item_ids.shape[0]}, "
            f"events={self.n_events}, links={self.neighbours.nnz})"
        )

    @classmethod
    def empty(cls) -> Behaviour:
        """Return a model that knows nothing (before the first fit)."""
        return cls(
            item_ids=np.empty(0, dtype=np.int64),
            neighbours=sp.csr_matrix((0, 0), dtype=np.float32),
            counts=np.empty(0, dtype=np.float32),
            pop_item=np.empty(0, dtype=np.int32),
            pop_bucket=np.empty(0, dtype=np.int32),
            pop_count=np.empty(0, dtype=np.float32),
            bucket_origin=0.0,
            bucket_secs=3600.0,
            fitted_at=0.0,
            method="empty",
            n_events=0,
        )

    @classmethod
    def fit(
        cls,
        interactions: Interactions,
        *,
        now: float | None = None,
        progress: ProgressFn | None = None,
        params: FitParams | None = None,
    ) -> Behaviour:
        """Fit item neighbours and the popularity table from all users' events.

        Parameters
        ----------
        interactions : Interactions
            Every user's events; those later than ``now`` are ignored. The
            weights are not used here: the neighbour model sees one binary
            cell per (user, item), and action strength enters each user's
            profile at scoring time instead.
        now : float, optional
            Epoch seconds of the fit; the latest event time when omitted.
        progress : callable, optional
            Called with a short message at each stage.
        params : FitParams, optional

        Returns
        -------
        Behaviour
        """
        p = params or FitParams()
        say = progress or _noop
        if p.method not in {"auto", "ease", "knn"}:
            raise ValueError(f"unknown method {p.method!r}")
        users = np.asarray(interactions.user_ids, dtype=np.int64)
        items = np.asarray(interactions.item_ids, dtype=np.int64)
        stamps = np.asarray(interactions.timestamps, dtype=np.float64)
        if not users.shape == items.shape == stamps.shape:
            raise ValueError("Interactions arrays must have the same length")
        if now is None:
            now = float(stamps.max()) if stamps.size else time.time()
        keep = stamps <= now
        users, items, stamps = users[keep], items[keep], stamps[keep]
        if items.size == 0:
            return _with_fitted_at(cls.empty(), now)

        say(f"indexing {items.size} events")
        item_ids, item_idx = np.unique(items, return_inverse=True)
        _, user_idx = np.unique(users, return_inverse=True)
        n_items = item_ids.shape[0]
        counts = np.bincount(item_idx, minlength=n_items).astype(np.float32)

        say("counting popularity over time")
        origin = float(np.floor(stamps.min() / p.bucket_secs) * p.bucket_secs)
        bucket = ((stamps - origin) // p.bucket_secs).astype(np.int64)
        n_buckets = int(bucket.max()) + 1
        cell, cell_count = np.unique(item_idx * n_buckets + bucket, return_counts=True)

        # One binary cell per (user, item): every interaction is evidence of
        # interest; how strong it was matters in the user's profile instead.
        x = sp.csr_matrix(
            (np.ones(items.size, dtype=np.float32), (user_idx, item_idx)),
            shape=(int(user_idx.max()) + 1, n_items),
            dtype=np.float32,
        )
        x.data[:] = 1.0
        # Items with a single event carry almost no co-occurrence evidence but
        # cost cubic time in EASE; they keep popularity and content scores.
        linked = np.flatnonzero(counts >= p.min_item_events)
        n_linked = linked.shape[0]
        method = p.method
        if method == "auto":
            method = "ease" if n_linked <= p.dense_max_items else "knn"
        say(f"fitting {method} neighbours for {n_linked} of {n_items} items")
        x_linked = sp.csr_matrix(x[:, linked])
        if n_linked == 0:
            sub = sp.csr_matrix((0, 0), dtype=np.float32)
        elif method == "ease":
            sub = _ease_neighbours(
                x_linked, lam=p.ease_lambda, n_keep=p.neighbours, progress=say
            )
        else:
            sub = _knn_neighbours(x_linked, n_keep=p.neighbours, progress=say)
        sub = sub.tocoo()
        neighbours = sp.csr_matrix(
            (sub.data, (linked[sub.row], linked[sub.col])),
            shape=(n_items, n_items),
            dtype=np.float32,
        )
        neighbours.sort_indices()
        return cls(
            item_ids=item_ids.astype(np.int64),
            neighbours=neighbours,
            counts=counts,
            pop_item=(cell // n_buckets).astype(np.int32),
            pop_bucket=(cell % n_buckets).astype(np.int32),
            pop_count=cell_count.astype(np.float32),
            bucket_origin=origin,
            bucket_secs=p.bucket_secs,
            fitted_at=float(now),
            method=method,
            n_events=int(items.size),
        )

    def to_bytes(self) -> bytes:
        """Return the model as an ``.npz`` archive (no pickle)."""
        buf = io.BytesIO()
        nb = self.neighbours
        np.savez(
            buf,
            format_version=np.int64(_FORMAT_VERSION),
            item_ids=self.item_ids,
            nb_indptr=nb.indptr.astype(np.int64),
            nb_indices=nb.indices.astype(np.int32),
            nb_data=nb.data.astype(np.float32),
            counts=self.counts,
            pop_item=self.pop_item,
            pop_bucket=self.pop_bucket,
            pop_count=self.pop_count,
            scalars=np.array(
                [self.bucket_origin, self.bucket_secs, self.fitted_at, self.n_events],
                dtype=np.float64,
            ),
            method=np.array(self.method),
        )
        return buf.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> Behaviour:
        """Return the model stored by :meth:`to_bytes`."""
        with np.load(io.BytesIO(bytes(data)), allow_pickle=False) as z:
            version = int(z["format_version"])
            if version != _FORMAT_VERSION:
                raise ValueError(f"unsupported Behaviour format {version}")
            n = z["item_ids"].shape[0]
            scalars = z["scalars"]
            return cls(
                item_ids=z["item_ids"].astype(np.int64),
                neighbours=sp.csr_matrix(
                    (z["nb_data"], z["nb_indices"], z["nb_indptr"]),
                    shape=(n, n),
                    dtype=np.float32,
                ),
                counts=z["counts"].astype(np.float32),
                pop_item=z["pop_item"].astype(np.int32),
                pop_bucket=z["pop_bucket"].astype(np.int32),
                pop_count=z["pop_count"].astype(np.float32),
                bucket_origin=float(scalars[0]),
                bucket_secs=float(scalars[1]),
                fitted_at=float(scalars[2]),
                method=str(z["method"]),
                n_events=int(scalars[3]),
            )


def _with_fitted_at(behaviour: Behaviour, now: float) -> Behaviour:
    """Return ``behaviour`` with its fit time set to ``now``."""
    return Behaviour(
        item_ids=behaviour.item_ids,
        neighbours=behaviour.neighbours,
        counts=behaviour.counts,
        pop_item=behaviour.pop_item,
        pop_bucket=behaviour.pop_bucket,
        pop_count=behaviour.pop_count,
        bucket_origin=behaviour.bucket_origin,
        bucket_secs=behaviour.bucket_secs,
        fitted_at=now,
        method=behaviour.method,
        n_events=behaviour.n_events,
    )


# --------------------------------------------------------------------------
# Engine: catalog-dependent state and live scoring
# --------------------------------------------------------------------------
def _sorted_catalog(catalog: Catalog) -> Catalog:
    """Return ``catalog`` with rows in ascending id order (ties break by id)."""
    ids = np.asarray(catalog.ids, dtype=np.int64)
    order = np.argsort(ids, kind="stable")
    if ids.size and np.any(np.diff(ids[order]) == 0):
        raise ValueError("Catalog.ids must be unique")
    return Catalog(
        ids=ids[order],
        titles=[catalog.titles[i] for i in order],
        category=np.asarray(catalog.category, dtype=np.int32)[order],
        category_names=list(catalog.category_names),
        tags=[list(catalog.tags[i]) for i in order],
        price=np.asarray(catalog.price, dtype=np.float32)[order],
        rating=np.asarray(catalog.rating, dtype=np.float32)[order],
        year=np.asarray(catalog.year, dtype=np.float32)[order],
        active=np.asarray(catalog.active, dtype=np.bool_)[order],
        created=np.asarray(catalog.created, dtype=np.float64)[order],
    )


def _gather_rows(
    matrix: sp.csr_matrix, rows: NDArray[np.int64]
) -> tuple[NDArray[np.int64], NDArray[np.int32], NDArray[np.float32]]:
    """Return the stored cells of ``rows`` of a CSR matrix, without scipy overhead.

    Fancy row indexing through scipy costs ~0.3 ms of validation per call;
    slicing ``indptr`` ranges directly keeps one user's scoring in numpy.

    Parameters
    ----------
    matrix : scipy.sparse.csr_matrix of shape (n_rows, n_cols)
    rows : ndarray of shape (m,), int64

    Returns
    -------
    position : ndarray of shape (nnz,), int64
        Index into ``rows`` of each cell.
    cols : ndarray of shape (nnz,), int32
    vals : ndarray of shape (nnz,), float32
    """
    starts = matrix.indptr[rows]
    lengths = matrix.indptr[rows + 1] - starts
    total = int(lengths.sum())
    position = np.repeat(np.arange(rows.shape[0], dtype=np.int64), lengths)
    # Cell index = start of its row + offset within the row.
    offsets = np.arange(total, dtype=np.int64) - np.repeat(
        np.cumsum(lengths) - lengths, lengths
    )
    cells = np.repeat(starts, lengths) + offsets
    return position, matrix.indices[cells], matrix.data[cells]


def _lookup(sorted_ids: NDArray[np.int64], ids: NDArray[np.int64]) -> NDArray[np.int64]:
    """Return the row of each id in ``sorted_ids``, -1 when absent.

    Parameters
    ----------
    sorted_ids : ndarray of shape (n,), int64, ascending
    ids : ndarray of shape (m,), int64

    Returns
    -------
    ndarray of shape (m,), int64
    """
    if sorted_ids.size == 0:
        return np.full(ids.shape, -1, dtype=np.int64)
    pos = np.searchsorted(sorted_ids, ids)
    pos_clipped = np.minimum(pos, sorted_ids.size - 1)
    found = sorted_ids[pos_clipped] == ids
    return np.where(found, pos_clipped, -1).astype(np.int64)


# Users scored together hold a few (users x items) dense arrays: at most this
# many cells per chunk. Larger chunks stop paying: at 10k items, chunks of ~30
# users scored fastest (~0.4 ms per user, against ~0.55 ms one by one); bigger
# arrays fall out of the CPU caches.
_SCORE_BATCH_CELLS = 300_000


def _check(history: History, k: int) -> None:
    if k < 0:
        raise ValueError(f"k must be non-negative, got {k}")
    if len(history.actions) != len(history.item_ids):
        raise ValueError("History.actions and History.item_ids differ in length")


@dataclass(frozen=True)
class _Signals:
    """One user's signals over the catalog rows, before blending.

    Attributes
    ----------
    behaviour, content : ndarray of shape (n_items,), float32, or None
        Neighbour score (max 1) and content similarity to the profile; None
        for an empty history.
    popularity, new : ndarray of shape (n_items,), float32
        Shared (cached) popularity now and new-arrival bonus, max 1.
    scale : tuple of 4 float
        Blend weights of behaviour, content, popularity and new.
    """

    behaviour: NDArray[np.float32] | None
    content: NDArray[np.float32] | None
    popularity: NDArray[np.float32]
    new: NDArray[np.float32]
    scale: tuple[float, float, float, float]

    def parts_at(self, best: NDArray[np.int64]) -> NDArray[np.float32]:
        """Return each weighted signal at rows ``best``: shape (4, k)."""
        zeros = np.zeros(best.shape[0], dtype=np.float32)
        raw = [
            self.behaviour[best] if self.behaviour is not None else zeros,
            self.content[best] if self.content is not None else zeros,
            self.popularity[best],
            self.new[best],
        ]
        return np.stack(
            [values * np.float32(w) for values, w in zip(raw, self.scale, strict=True)]
        )


class Engine:
    """Score one user's candidates from their history and the fitted model.

    Immutable: build a new one with :meth:`with_catalog` or
    :meth:`with_behaviour` and swap the reference. Per-process caches (the
    popularity vector at a given hour) are filled lazily under a lock.

    Parameters
    ----------
    catalog : Catalog
    behaviour : Behaviour
    params : ScoreParams, optional
    feature_weights : FeatureWeights, optional
    """

    _POP_CACHE_SIZE = 64

    def __init__(
        self,
        catalog: Catalog,
        behaviour: Behaviour,
        *,
        params: ScoreParams | None = None,
        feature_weights: FeatureWeights | None = None,
        features: sp.csr_matrix | None = None,
    ) -> None:
        self.params = params or ScoreParams()
        self.feature_weights = feature_weights or FeatureWeights()
        self.catalog = _sorted_catalog(catalog)
        self.behaviour = behaviour
        cat = self.catalog
        self.ids: NDArray[np.int64] = cat.ids
        self.n_items = int(cat.ids.shape[0])
        self.features = (
            features
            if features is not None
            else item_features_build(cat, weights=self.feature_weights)
        )
        self._available = cat.active.copy()
        self._created = cat.created
        finite = cat.created[np.isfinite(cat.created)]
        self._created_max = float(finite.max()) if finite.size else float("-inf")
        self._bind_behaviour()
        self._pop_cache: dict[int, NDArray[np.float32]] = {}
        self._new_cache: dict[int, NDArray[np.float32]] = {}
        self._base_cache: dict[tuple, NDArray[np.float32]] = {}
        self._lock = threading.Lock()

    def _bind_behaviour(self) -> None:
        """Re-index the behaviour model into catalog rows."""
        b = self.behaviour
        # behaviour index -> catalog row (-1: the item left the catalog)
        b2c = _lookup(self.ids, b.item_ids)
        self._b2c = b2c
        coo = b.neighbours.tocoo()
        src = b2c[coo.row]
        dst = b2c[coo.col]
        ok = (src >= 0) & (dst >= 0)
        self.neighbours = sp.csr_matrix(
            (coo.data[ok], (src[ok], dst[ok])),
            shape=(self.n_items, self.n_items),
            dtype=np.float32,
        )
        counts = np.zeros(self.n_items, dtype=np.float32)
        present = b2c >= 0
        counts[b2c[present]] = b.counts[present]
        self.counts = counts
        cell_ok = b2c[b.pop_item] >= 0 if b.pop_item.size else np.empty(0, dtype=bool)
        self._pop_row = b2c[b.pop_item][cell_ok] if b.pop_item.size else b.pop_item
        self._pop_bucket = b.pop_bucket[cell_ok]
        self._pop_count = b.pop_count[cell_ok]
        self._bucket_end = b.bucket_origin + (
            self._pop_bucket.astype(np.float64) + 1.0
        ) * (b.bucket_secs)

    def with_catalog(self, catalog: Catalog) -> Engine:
        """Return an engine for a new catalog version, keeping the behaviour."""
        return Engine(
            catalog,
            self.behaviour,
            params=self.params,
            feature_weights=self.feature_weights,
        )

    def with_behaviour(self, behaviour: Behaviour) -> Engine:
        """Return an engine with a newly fitted behaviour, keeping the catalog."""
        return Engine(
            self.catalog,
            behaviour,
            params=self.params,
            feature_weights=self.feature_weights,
            features=self.features,
        )

    def with_params(self, params: ScoreParams) -> Engine:
        """Return an engine that blends with ``params`` (shares everything else)."""
        clone = object.__new__(Engine)
        clone.__dict__.update(self.__dict__)
        clone.params = params
        clone._pop_cache = {}
        clone._new_cache = {}
        clone._base_cache = {}
        clone._lock = threading.Lock()
        return clone

    # -- signals ------------------------------------------------------------
    def _pop_edge(self, now: float) -> int:
        """Return the popularity bucket ``now`` falls in (the cache key)."""
        b = self.behaviour
        return math.floor((now - b.bucket_origin) / b.bucket_secs)

    @staticmethod
    def _hour(now: float) -> int:
        """Return the hour ``now`` falls in (the new-arrival cache key)."""
        return math.floor(now / _SECS_PER_HOUR)

    def popularity(self, now: float) -> NDArray[np.float32]:
        """Return each item's time-decayed popularity at ``now``, max 1.

        Only time buckets that ended by ``now`` count, so the value never
        depends on events after ``now``.

        Parameters
        ----------
        now : float
            Epoch seconds.

        Returns
        -------
        ndarray of shape (n_items,), float32
        """
        b = self.behaviour
        # Round down to a bucket boundary so the result is cacheable.
        edge = self._pop_edge(now)
        cached = self._pop_cache.get(edge)
        if cached is not None:
            return cached
        edge_secs = b.bucket_origin + edge * b.bucket_secs
        past = self._bucket_end <= edge_secs
        half_life = self.params.popularity_half_life_days * _SECS_PER_DAY
        ends = self._bucket_end[past]
        # Measure ages from the newest past bucket, not from `now`: only the
        # ratios matter after the max-normalisation, and a model months older
        # than `now` would otherwise underflow to all zeros.
        age = (ends.max() if ends.size else edge_secs) - ends
        weight = self._pop_count[past] * np.exp2(-age / half_life)
        pop = np.bincount(self._pop_row[past], weights=weight, minlength=self.n_items)
        pop = pop.astype(np.float32)
        top = float(pop.max()) if pop.size else 0.0
        if top > 0:
            pop /= top
        pop.flags.writeable = False
        with self._lock:
            if len(self._pop_cache) >= self._POP_CACHE_SIZE:
                self._pop_cache.pop(next(iter(self._pop_cache)))
            self._pop_cache[edge] = pop
        return pop

    def newness(self, now: float) -> NDArray[np.float32]:
        """Return each item's new-arrival bonus at ``now`` (1 = just created).

        Computed at hour granularity and cached; items created within the
        current hour (or later: those are barred elsewhere) get the full bonus.

        Returns
        -------
        ndarray of shape (n_items,), float32
            0 for unknown creation times.
        """
        hour = self._hour(now)
        cached = self._new_cache.get(hour)
        if cached is not None:
            return cached
        age_days = (hour * _SECS_PER_HOUR - self._created) / _SECS_PER_DAY
        with np.errstate(invalid="ignore", over="ignore"):
            bonus = np.exp2(-np.maximum(age_days, 0.0) / self.params.new_half_life_days)
        bonus[~np.isfinite(bonus)] = 0.0
        bonus = bonus.astype(np.float32)
        bonus.flags.writeable = False
        with self._lock:
            if len(self._new_cache) >= self._POP_CACHE_SIZE:
                self._new_cache.pop(next(iter(self._new_cache)))
            self._new_cache[hour] = bonus
        return bonus

    # -- scoring ------------------------------------------------------------
    def _profile(
        self, history: History
    ) -> tuple[NDArray[np.int64], NDArray[np.float32], NDArray[np.int64]]:
        """Return the user's distinct items, their profile weights and event rows.

        Returns
        -------
        rows : ndarray of shape (m,), int64
            Catalog rows of the distinct items in the history.
        weights : ndarray of shape (m,), float32
            Sum over the item's events of action weight x recency decay.
        event_rows : ndarray of shape (n_events,), int64
            Catalog row of every event, -1 when the item left the catalog.
        """
        ids = np.asarray(history.item_ids, dtype=np.int64)
        event_rows = _lookup(self.ids, ids)
        n = ids.shape[0]
        if n == 0:
            empty = np.empty(0, dtype=np.int64)
            return empty, np.empty(0, dtype=np.float32), event_rows
        p = self.params
        # Position from the newest event, not wall-clock age: sessions rate or
        # browse many items within seconds, and the order is what is reliable.
        back = np.arange(n - 1, -1, -1, dtype=np.float32)
        decay = np.exp2(-back / p.history_half_life_events)
        strength = np.maximum(np.asarray(history.weights, dtype=np.float32), EPSILON)
        w = decay * strength**p.action_power
        ok = event_rows >= 0
        rows, inverse = np.unique(event_rows[ok], return_inverse=True)
        weights = np.bincount(inverse, weights=w[ok], minlength=rows.shape[0])
        return rows, weights.astype(np.float32), event_rows

    def _signals(
        self, rows: NDArray[np.int64], weights: NDArray[np.float32], now: float
    ) -> tuple[_Signals, dict[str, NDArray]]:
        """Return one user's signals and links (see :meth:`_signals_many`)."""
        return self._signals_many([(rows, weights)], now)[0]

    def _signals_many(
        self,
        profiles: list[tuple[NDArray[np.int64], NDArray[np.float32]]],
        now: float,
    ) -> list[tuple[_Signals, dict[str, NDArray]]]:
        """Return each user's signals and the neighbour cells used for reasons.

        Every user's neighbour links and profile features are gathered at
        once, and the content scores of all of them come from one sparse x
        dense product: per-call overhead is paid once per batch of users, and
        the bulk work runs in numpy without the GIL.

        Parameters
        ----------
        profiles : list of (rows, weights)
            Per user, the catalog rows of their distinct items, shape (m,),
            int64, and profile weights, shape (m,), float32 (see
            :meth:`_profile`).
        now : float
            Epoch seconds.

        Returns
        -------
        list of (signals, links), one per user
            ``links`` holds ``position`` (into that user's ``rows``), ``col``
            and ``value`` of every neighbour link from the history (value
            weighted by the profile), and ``f_position``, ``f_col``,
            ``f_value`` of every feature cell of the history items.
        """
        p = self.params
        n = self.n_items
        n_features = self.features.shape[1]
        popularity, new = self.popularity(now), self.newness(now)
        # Cold start: nothing personal to go on, so what is popular right now
        # leads and new arrivals get a share of the list.
        cold = (0.0, 0.0, 1.0, p.cold_new_weight)
        warm = (p.behaviour_weight, p.content_weight, p.popularity_weight, p.new_weight)
        sizes = np.array([rows.shape[0] for rows, _ in profiles], dtype=np.int64)
        out: list[tuple[_Signals, dict[str, NDArray]]] = [
            (_Signals(None, None, popularity, new, cold), {}) for _ in profiles
        ]
        users = np.flatnonzero(sizes)
        if not users.size:
            return out
        rows_all = np.concatenate([profiles[u][0] for u in users.tolist()])
        weights_all = np.concatenate([profiles[u][1] for u in users.tolist()])
        owner = np.repeat(np.arange(users.shape[0], dtype=np.int64), sizes[users])
        first_row = np.concatenate([[0], np.cumsum(sizes[users])])
        pos, cols, vals = _gather_rows(self.neighbours, rows_all)
        contrib = vals * weights_all[pos]
        behaviour = (
            np.bincount(
                owner[pos] * n + cols, weights=contrib, minlength=users.shape[0] * n
            )
            .astype(np.float32)
            .reshape(users.shape[0], n)
        )
        top = behaviour.max(axis=1)
        scaled = top > 0
        behaviour[scaled] /= top[scaled, np.newaxis]
        fpos, fcols, fvals = _gather_rows(self.features, rows_all)
        profile = (
            np.bincount(
                owner[fpos] * n_features + fcols,
                weights=fvals * weights_all[fpos],
                minlength=users.shape[0] * n_features,
            )
            .astype(np.float32)
            .reshape(users.shape[0], n_features)
        )
        norms = np.sqrt(np.einsum("ij,ij->i", profile, profile))
        unit = norms > EPSILON
        profile[unit] /= norms[unit, np.newaxis]
        if users.shape[0] == 1:
            # One user (the live path's common case): a plain matvec, no
            # transposed copy of a catalog-sized result.
            content = np.asarray(self.features @ profile[0], dtype=np.float32)[
                np.newaxis, :
            ]
        else:
            # (n, F) sparse @ (F, users) dense: one pass over the feature matrix.
            content = np.ascontiguousarray(
                (self.features @ profile.T).T, dtype=np.float32
            )
        # Links and feature cells come out grouped by user, in row order.
        link_end = np.searchsorted(pos, first_row[1:], side="left")
        feature_end = np.searchsorted(fpos, first_row[1:], side="left")
        link_start = np.concatenate([[0], link_end[:-1]])
        feature_start = np.concatenate([[0], feature_end[:-1]])
        for j, u in enumerate(users.tolist()):
            ls, le = int(link_start[j]), int(link_end[j])
            fs, fe = int(feature_start[j]), int(feature_end[j])
            offset = first_row[j]
            links = {
                "position": pos[ls:le] - offset,
                "col": cols[ls:le],
                "value": contrib[ls:le],
                "f_position": fpos[fs:fe] - offset,
                "f_col": fcols[fs:fe],
                "f_value": fvals[fs:fe],
            }
            signals = _Signals(behaviour[j], content[j], popularity, new, warm)
            out[u] = (signals, links)
        return out

    def scores(
        self,
        history: History,
        *,
        now: float,
        exclude: NDArray[np.int64] | None = None,
    ) -> NDArray[np.float32]:
        """Return the blended score of every catalog row, ``-inf`` where barred.

        Parameters
        ----------
        history : History
        now : float
            Epoch seconds.
        exclude : ndarray of shape (n_excluded,), int64, optional
            Item ids never to recommend (besides the history and inactive).

        Returns
        -------
        ndarray of shape (n_items,), float32
            Row ``i`` scores item ``self.ids[i]``.
        """
        rows, weights, event_rows = self._profile(history)
        signals, _ = self._signals(rows, weights, now)
        return self._blend(signals, event_rows, now, exclude)

    def _blend(
        self,
        signals: _Signals,
        event_rows: NDArray[np.int64],
        now: float,
        exclude: NDArray[np.int64] | None,
    ) -> NDArray[np.float32]:
        """Return the weighted sum of the signals, ``-inf`` where barred."""
        total = self._base(signals, now)
        w_behaviour, w_content = signals.scale[:2]
        if signals.behaviour is not None:
            total += signals.behaviour * np.float32(w_behaviour)
        if signals.content is not None:
            total += signals.content * np.float32(w_content)
        total[event_rows[event_rows >= 0]] = -np.inf
        if exclude is not None and len(exclude):
            ex = _lookup(self.ids, np.asarray(exclude, dtype=np.int64))
            total[ex[ex >= 0]] = -np.inf
        return total

    def _base(self, signals: _Signals, now: float) -> NDArray[np.float32]:
        """Return a fresh copy of the shared part of every user's score.

        Popularity and newness weighted, ``-inf`` for inactive items and items
        created after ``now``. It changes only with the hour and the blend
        weights, so it is built once and copied per user, instead of four
        catalog-sized passes per user.
        """
        w_popularity, w_new = signals.scale[2:]
        future = self._created_max > now
        key = (
            self._pop_edge(now),
            self._hour(now),
            w_popularity,
            w_new,
        )
        base = None if future else self._base_cache.get(key)
        if base is None:
            base = signals.popularity * np.float32(w_popularity)
            base += signals.new * np.float32(w_new)
            base[~self._available] = -np.inf
            if future:
                base[self._created > now] = -np.inf
                return base
            base.flags.writeable = False
            with self._lock:
                if len(self._base_cache) >= self._POP_CACHE_SIZE:
                    self._base_cache.pop(next(iter(self._base_cache)))
                self._base_cache[key] = base
        return base.copy()

    def recommend(
        self,
        history: History,
        *,
        k: int,
        now: float,
        exclude: NDArray[np.int64] | None = None,
        with_reasons: bool = True,
    ) -> list[Recommendation]:
        """Return the ``k`` best items for a user, best first, with reasons.

        Never returns items in ``history``, inactive items, items created
        after ``now`` or ``exclude``. An empty history gets what is popular
        right now plus new arrivals.

        Parameters
        ----------
        history : History
            The user's recent events, oldest first.
        k : int
            Length of the list (shorter only if fewer items are eligible).
        now : float
            Epoch seconds of the request.
        exclude : ndarray of shape (n_excluded,), int64, optional
            More item ids to leave out.
        with_reasons : bool
            Compute the human-readable reasons (skip for bulk evaluation).

        Returns
        -------
        list of Recommendation
        """
        _check(history, k)
        rows, weights, event_rows = self._profile(history)
        signals, links = self._signals(rows, weights, now)
        return self._ranked(
            history, rows, event_rows, signals, links, k, now, exclude, with_reasons
        )

    def recommend_many(
        self,
        histories: list[History],
        *,
        k: int,
        now: float,
        with_reasons: bool = True,
    ) -> list[list[Recommendation]]:
        """Return :meth:`recommend` for each of many users at one moment.

        The same lists, computed together: the signals of a batch of users
        come from one gather and one sparse product (see
        :meth:`_signals_many`), in chunks of users that keep the dense
        intermediates under ~``_SCORE_BATCH_CELLS`` cells.

        Returns
        -------
        list of list of Recommendation
            One list per history, in order.
        """
        for history in histories:
            _check(history, k)
        out: list[list[Recommendation]] = []
        step = max(1, _SCORE_BATCH_CELLS // max(1, self.n_items))
        for start in range(0, len(histories), step):
            chunk = histories[start : start + step]
            profiles = [self._profile(history) for history in chunk]
            signals = self._signals_many([(r, w) for r, w, _ in profiles], now)
            for history, (rows, _, event_rows), (sig, links) in zip(
                chunk, profiles, signals, strict=True
            ):
                out.append(
                    self._ranked(
                        history,
                        rows,
                        event_rows,
                        sig,
                        links,
                        k,
                        now,
                        None,
                        with_reasons,
                    )
                )
        return out

    def _ranked(
        self,
        history: History,
        rows: NDArray[np.int64],
        event_rows: NDArray[np.int64],
        signals: _Signals,
        links: dict[str, NDArray],
        k: int,
        now: float,
        exclude: NDArray[np.int64] | None,
        with_reasons: bool,
    ) -> list[Recommendation]:
        """Blend one user's signals, take the top ``k`` and explain them."""
        total = self._blend(signals, event_rows, now, exclude)
        best = top_k(total, k)
        if not with_reasons:
            return [Recommendation(int(self.ids[i]), float(total[i]), []) for i in best]
        reasons = self._reasons(best, signals, links, rows, history, event_rows)
        return [
            Recommendation(int(self.ids[i]), float(total[i]), r)
            for i, r in zip(best, reasons, strict=True)
        ]

    # -- explanations -----------------------------------------------------------
    def _reasons(
        self,
        best: NDArray[np.int64],
        signals: _Signals,
        links: dict[str, NDArray],
        rows: NDArray[np.int64],
        history: History,
        event_rows: NDArray[np.int64],
    ) -> list[list[str]]:
        """Return up to two reasons per recommended row, strongest signal first.

        Everything is computed for the ``k`` recommended rows at once; the
        Python loop at the end only formats ``k`` short lists of strings.
        """
        k = best.shape[0]
        if k == 0:
            return []
        cat = self.catalog
        cf_src = np.full(k, -1, dtype=np.int64)
        content_src = np.full(k, -1, dtype=np.int64)
        if rows.size:
            # The history item that adds most to each recommended item:
            # a (k x m) table of link contributions, from the links gathered
            # while scoring.
            m = rows.shape[0]
            order = np.argsort(best)
            slot = np.minimum(np.searchsorted(best[order], links["col"]), k - 1)
            hit = best[order][slot] == links["col"]
            flat = order[slot[hit]] * m + links["position"][hit]
            contrib = np.bincount(
                flat, weights=links["value"][hit], minlength=k * m
            ).reshape(k, m)
            has_link = contrib.max(axis=1) > 0
            cf_src[has_link] = rows[np.argmax(contrib, axis=1)][has_link]
            # The history item most similar in content to each recommended
            # one; k dense feature rows are small.
            bpos, bcols, bvals = _gather_rows(self.features, best)
            dense = np.zeros((k, self.features.shape[1]), dtype=np.float32)
            dense[bpos, bcols] = bvals
            cell = dense[:, links["f_col"]] * links["f_value"]  # (k, n_cells)
            flat = (np.arange(k)[:, np.newaxis] * m + links["f_position"]).ravel()
            sims = np.bincount(flat, weights=cell.ravel(), minlength=k * m)
            content_src = rows[np.argmax(sims.reshape(k, m), axis=1)]
        # The user's strongest action on the explaining item names the verb.
        strength = np.asarray(history.weights, dtype=np.float32)
        same = event_rows[np.newaxis, :] == cf_src[:, np.newaxis]  # (k, n_events)
        strongest = (
            np.argmax(np.where(same, strength, -np.inf), axis=1)
            if event_rows.size
            else np.zeros(k, dtype=np.int64)
        )
        parts = signals.parts_at(best)
        ranked = np.argsort(-parts, axis=0, kind="stable").T.tolist()
        positive = (parts > 0).T.tolist()
        cf_list, content_list = cf_src.tolist(), content_src.tolist()
        out: list[list[str]] = []
        for col, item in enumerate(best.tolist()):
            cat_index = int(cat.category[item])
            category = cat.category_names[cat_index] if cat_index >= 0 else ""
            popular = f"Popular in {category}" if category else "Popular right now"
            texts: list[str] = []
            for kind in ranked[col]:
                if not positive[col][kind] or len(texts) == 2:
                    continue
                if kind == 0 and cf_list[col] >= 0:
                    action = history.actions[int(strongest[col])]
                    verb = ACTION_VERBS.get(action, "viewed")
                    texts.append(f"Because you {verb} {cat.titles[cf_list[col]]}")
                elif kind == 1 and content_list[col] >= 0:
                    texts.append(f"Similar to {cat.titles[content_list[col]]}")
                elif kind == 2:
                    texts.append(popular)
                elif kind == 3:
                    texts.append(f"New in {category}" if category else "New arrival")
            out.append(list(dict.fromkeys(texts)) or [popular])
        return out
