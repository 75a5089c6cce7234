"""The batch-fitted half of the engine: item neighbours and popularity over time.

:meth:`Behaviour.fit` learns, from every user's events in time order, sparse
item-to-item neighbours (the order-aware SLIST closed form on catalogs small
enough for a dense inverse, an order-aware cosine kNN beyond; see
:mod:`recommender.engine.sequence`; EASE and plain kNN on request) pruned to
the top ``N`` per item, and a time-bucketed
popularity table so "popular right now" can be read at any moment. It is run
by ``recompute_recommendations`` and ``evaluate``, stored as ``.npz`` (see
:mod:`recommender.engine.serialisation`) and shared by every server process.
"""

from __future__ import annotations

import time

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from recommender.engine.carveout import ridge_choose
from recommender.engine.linalg import spd_inverse
from recommender.engine.sequence import (
    sequence_knn_neighbours,
    sequence_neighbours,
    sequence_rows,
)
from recommender.engine.serialisation import behaviour_pack, behaviour_unpack
from recommender.engine.similarity import EPSILON, top_n_cells
from recommender.engine.types import FitParams, Interactions, ProgressFn, ScoreParams

__all__ = ["Behaviour"]


def _noop(_: str) -> None:
    return None


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
    inv = spd_inverse(gram)
    diag = np.diag(inv).copy()
    diag[np.abs(diag) < EPSILON] = EPSILON
    # B = I - P diag(1/diag(P)) with a zero diagonal: B_ij = -P_ij / P_jj.
    inv /= -diag[np.newaxis, :]
    inv[np.diag_indices(n)] = 0.0
    rows_all, cols_all, vals_all = [], [], []
    step = max(1, min(n, 4_000_000 // max(1, n)))
    for start in range(0, n, step):
        block = inv[start : start + step]
        rows, cols, _ = top_n_cells(block, n_keep)
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
        rows, cols, _ = top_n_cells(block, n_keep)
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
        ``"slist"``, ``"sequence-knn"``, ``"ease"``, ``"knn"`` or ``"empty"``.
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
        if p.method not in {"auto", "slist", "sequence-knn", "ease", "knn"}:
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
            method = "slist" if n_linked <= p.dense_max_items else "sequence-knn"
        say(f"fitting {method} neighbours for {n_linked} of {n_items} items")
        x_linked = sp.csr_matrix(x[:, linked])
        if n_linked == 0:
            sub = sp.csr_matrix((0, 0), dtype=np.float32)
        elif method in {"slist", "sequence-knn"}:
            sub = _sequence_fit(
                user_idx, item_idx, items, stamps, linked, n_items, p, method, say
            )
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
        return behaviour_pack({name: getattr(self, name) for name in self.__slots__})

    @classmethod
    def from_bytes(cls, data: bytes) -> Behaviour:
        """Return the model stored by :meth:`to_bytes`."""
        return cls(**behaviour_unpack(data))


def _sequence_fit(
    user_idx: NDArray[np.int64],
    item_idx: NDArray[np.int64],
    items: NDArray[np.int64],
    stamps: NDArray[np.float64],
    linked: NDArray[np.int64],
    n_items: int,
    p: FitParams,
    method: str,
    say: ProgressFn,
) -> sp.csr_matrix:
    """Return order-aware neighbours among the ``linked`` items.

    Each user's events on linked items, in (time, item id) order, form one
    sequence (see :mod:`recommender.engine.sequence`).
    """
    column = np.full(n_items, -1, dtype=np.int64)
    column[linked] = np.arange(linked.shape[0])
    keep = column[item_idx] >= 0
    order = np.lexsort((items[keep], stamps[keep], user_idx[keep]))
    _, users = np.unique(user_idx[keep][order], return_inverse=True)
    users = users.astype(np.int64)
    cols = column[item_idx[keep][order]]
    if method == "slist":
        lam = p.sequence_lambda
        choice = ridge_choose(
            users,
            cols,
            linked.shape[0],
            alpha=p.sequence_alpha,
            tau=p.sequence_tau,
            tau_target=p.sequence_tau_target,
            normalise=p.sequence_normalise,
            scales=p.sequence_lambda_scales if p.sequence_lambda_relative else (),
            half_life=ScoreParams().history_half_life_events,
            progress=say,
        )
        if choice is not None:
            lam = choice.scale
            say(
                "carve-out ridge choice: "
                + ", ".join(
                    f"{scale:g} -> {later:.4f}/{following:.4f}"
                    for scale, (later, following) in choice.scores.items()
                )
                + f"; chose {lam:g}"
            )
    seq = sequence_rows(
        users,
        cols,
        linked.shape[0],
        tau=p.sequence_tau,
        tau_target=p.sequence_tau_target,
    )
    if method == "slist":
        return sequence_neighbours(
            seq,
            alpha=p.sequence_alpha,
            lam=lam,
            n_keep=p.neighbours,
            progress=say,
            normalise=p.sequence_normalise,
            lam_relative=p.sequence_lambda_relative,
        )
    return sequence_knn_neighbours(
        seq, alpha=p.sequence_alpha, n_keep=p.neighbours, progress=say
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
