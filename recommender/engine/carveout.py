"""The order-aware model chooses its own ridge on a carve-out of its training data.

The best ridge of :func:`~recommender.engine.sequence.sequence_neighbours`
depends on the data: how many users, how long their histories, how sparse
the items. A constant tuned on one data set would carry over badly to a
shop's own data, so :meth:`Behaviour.fit` carves the last ``fraction`` of
every user's events out of what it is given (the rule of the evaluation
split), fits each candidate ridge on the rest and keeps the one whose lists
best predict what was carved out. The candidates are multiples of the mean
Gram diagonal, so the chosen multiple means the same on the full data (20 %
more events) as on the carve-out.

The lists are judged as the engine would rank them from the behaviour model
alone: each user's kept events form a position-weighted profile (the newest
event weighs most), seen items are excluded, top ``k``; the ridge with the
best NDCG@k of all the carved-out items (what the user does later on) wins.
The NDCG@k of the first carved-out item (what the user does next) is
reported beside it.

Cost: one Cholesky factorisation of the n x n Gram matrix per candidate,
and solves for the profiles of the carved-out users only (no n x n inverse).

Pure numpy/scipy; no Django.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.linalg
import scipy.sparse as sp
from numpy.typing import NDArray

from recommender.engine.sequence import (
    gram_diagonal_mean,
    sequence_rows,
    sequence_system,
)
from recommender.engine.types import ProgressFn

__all__ = ["RidgeChoice", "carveout_split", "ridge_choose"]

#: Fewer carved-out users than this: too little evidence, keep the default.
MIN_USERS = 30


@dataclass(frozen=True)
class RidgeChoice:
    """The ridge a fit chose and what each candidate scored.

    Attributes
    ----------
    scale : float
        Chosen ridge as a multiple of the mean Gram diagonal.
    scores : dict of float to (float, float)
        Candidate multiple -> (NDCG@k of the carved-out items, NDCG@k of the
        next item), on the carve-out.
    users : int
        Users whose carved-out events were scored.
    """

    scale: float
    scores: dict[float, tuple[float, float]]
    users: int


def carveout_split(
    user_idx: NDArray[np.int64], *, fraction: float = 0.2, min_events: int = 5
) -> NDArray[np.bool_]:
    """Return which events are carved out: each user's last ``fraction``.

    Parameters
    ----------
    user_idx : ndarray of shape (n_events,), int64
        Dense user index of each event, sorted by user, then time, then item.
    fraction : float
    min_events : int
        Users with fewer events keep them all.

    Returns
    -------
    ndarray of shape (n_events,), bool
        True for the last ``max(1, floor(fraction * n))`` events of every user
        with at least ``min_events`` events.
    """
    n_users = int(user_idx.max()) + 1 if user_idx.size else 0
    length = np.bincount(user_idx, minlength=n_users)
    start = np.concatenate([[0], np.cumsum(length)[:-1]])
    pos = np.arange(user_idx.shape[0]) - start[user_idx]
    n_out = np.maximum(1, np.floor(fraction * length).astype(np.int64))
    n_out[length < min_events] = 0
    return pos >= (length - n_out)[user_idx]


def _profiles(
    user_idx: NDArray[np.int64],
    col: NDArray[np.int64],
    users: NDArray[np.int64],
    n_cols: int,
    *,
    half_life: float,
    window: int,
) -> sp.csr_matrix:
    """Return one position-weighted profile row per user in ``users``.

    Returns
    -------
    scipy.sparse.csr_matrix of shape (n_users_selected, n_cols), float32
        The user's latest ``window`` events weighted ``0.5 ** (back /
        half_life)``.
    """
    row_of = np.full(int(user_idx.max()) + 1, -1, dtype=np.int64)
    row_of[users] = np.arange(users.shape[0])
    length = np.bincount(user_idx, minlength=row_of.shape[0])
    end = np.cumsum(length)
    back = (end[user_idx] - 1 - np.arange(user_idx.shape[0])).astype(np.float64)
    keep = (row_of[user_idx] >= 0) & (back < window)
    weight = np.exp2(-back[keep] / half_life).astype(np.float32)
    return sp.csr_matrix(
        (weight, (row_of[user_idx[keep]], col[keep])),
        shape=(users.shape[0], n_cols),
        dtype=np.float32,
    )


def _ndcg(
    scores: NDArray[np.float32],
    relevant: sp.csr_matrix,
    n_relevant: NDArray[np.int64],
    k: int,
) -> NDArray[np.float64]:
    """Return each row's NDCG@k of its top ``k`` against ``relevant`` cells.

    Parameters
    ----------
    scores : ndarray of shape (n_rows, n_cols), float32
        ``-inf`` where barred.
    relevant : scipy.sparse.csr_matrix of shape (n_rows, n_cols)
        Nonzero where an item is relevant.
    n_relevant : ndarray of shape (n_rows,), int64
        Relevant items per row (0: the row scores 0).
    k : int

    Returns
    -------
    ndarray of shape (n_rows,), float64
    """
    n_rows, n_cols = scores.shape
    k = min(k, n_cols)
    top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    order = np.argsort(-np.take_along_axis(scores, top, axis=1), axis=1, kind="stable")
    top = np.take_along_axis(top, order, axis=1)
    hit = np.asarray(relevant[np.arange(n_rows)[:, np.newaxis], top].todense()) > 0
    discount = 1.0 / np.log2(np.arange(2, k + 2, dtype=np.float64))
    dcg = (hit * discount).sum(axis=1)
    ideal = np.cumsum(discount)[np.clip(n_relevant, 1, k) - 1]
    return np.where(n_relevant > 0, dcg / ideal, 0.0)


def ridge_choose(
    user_idx: NDArray[np.int64],
    col: NDArray[np.int64],
    n_cols: int,
    *,
    alpha: float,
    tau: float,
    tau_target: float | None,
    normalise: str,
    scales: tuple[float, ...],
    half_life: float,
    window: int = 200,
    k: int = 10,
    progress: ProgressFn,
) -> RidgeChoice | None:
    """Return the ridge multiple whose carve-out lists score best.

    Parameters
    ----------
    user_idx : ndarray of shape (n_events,), int64
        Dense user index of each event, sorted by user, then time, then item.
    col : ndarray of shape (n_events,), int64
        Column of each event, in ``[0, n_cols)``.
    n_cols : int
    alpha, tau, tau_target, normalise
        The model being fitted (see :func:`sequence_rows`,
        :func:`sequence_system`).
    scales : tuple of float
        Candidate ridges, as multiples of the mean Gram diagonal.
    half_life : float
        Profile half-life, in events (the engine's default).
    window : int
        Latest events per profile (the live history window).
    k : int
    progress : callable

    Returns
    -------
    RidgeChoice or None
        None when fewer than :data:`MIN_USERS` users have carved-out events
        or fewer than two candidates are given.
    """
    if len(scales) < 2 or not user_idx.size:
        return None
    out = carveout_split(user_idx)
    kept_users = np.unique(user_idx[~out])
    users = np.intersect1d(np.unique(user_idx[out]), kept_users)
    if users.shape[0] < MIN_USERS:
        return None
    # Users keep their index, so a user whose events are all carved out
    # (none here: min_events >= 2) would only leave an empty row.
    seq = sequence_rows(
        user_idx[~out], col[~out], n_cols, tau=tau, tau_target=tau_target
    )
    inputs, targets = sequence_system(seq, alpha=alpha, normalise=normalise)
    unit = gram_diagonal_mean(inputs)
    gram = (inputs.T @ inputs).toarray().astype(np.float32)
    cross = (inputs.T @ targets).toarray().astype(np.float32)
    del inputs, targets, seq
    profiles = _profiles(
        user_idx[~out], col[~out], users, n_cols, half_life=half_life, window=window
    )
    profile_t = np.ascontiguousarray(profiles.T.toarray())
    row_of = np.full(int(user_idx.max()) + 1, -1, dtype=np.int64)
    row_of[users] = np.arange(users.shape[0])
    n_users = users.shape[0]

    def cells(mask: NDArray[np.bool_]) -> sp.csr_matrix:
        mask = mask & (row_of[user_idx] >= 0)
        return sp.csr_matrix(
            (
                np.ones(int(mask.sum()), dtype=np.float32),
                (row_of[user_idx[mask]], col[mask]),
            ),
            shape=(n_users, n_cols),
        )

    seen = cells(~out)
    # Items seen before are never listed, so they cannot count as hits.
    later = cells(out)
    later = sp.csr_matrix(later - later.multiply(seen > 0))
    later.eliminate_zeros()
    later.data[:] = 1.0
    n_later = np.asarray(later.sum(axis=1)).ravel().astype(np.int64)
    # The next event: the first carved-out one of each user.
    first = np.flatnonzero(
        out & np.concatenate([[True], ~out[:-1] | (user_idx[1:] != user_idx[:-1])])
    )
    first_mask = np.zeros(out.shape[0], dtype=bool)
    first_mask[first] = True
    following = cells(first_mask)
    following = sp.csr_matrix(following - following.multiply(seen > 0))
    following.eliminate_zeros()
    n_following = np.asarray(following.sum(axis=1)).ravel().astype(np.int64)
    seen_rows, seen_cols = seen.nonzero()
    diagonal = np.diag_indices(n_cols)
    base_diag = gram[diagonal].copy()
    scores: dict[float, tuple[float, float]] = {}
    for scale in scales:
        progress(f"ridge {scale:g} x {unit:.3g} on the carve-out of {n_users} users")
        gram[diagonal] = base_diag + np.float32(scale * unit)
        factor = scipy.linalg.cho_factor(gram, overwrite_a=False, check_finite=False)
        # Scores = profiles @ B = ((G + lam I)^-1 profiles^T)^T @ cross.
        solved = scipy.linalg.cho_solve(factor, profile_t, check_finite=False)
        del factor
        ranked = np.ascontiguousarray((solved.T @ cross).astype(np.float32))
        ranked[seen_rows, seen_cols] = -np.inf
        scores[float(scale)] = (
            float(_ndcg(ranked, later, n_later, k).mean()),
            float(_ndcg(ranked, following, n_following, k).mean()),
        )
    # Chosen by the carved-out items as a whole: the next item alone is one
    # event per user, too few to tell neighbouring ridges apart.
    chosen = max(scores, key=lambda c: scores[c][0])
    return RidgeChoice(scale=chosen, scores=scores, users=int(n_users))
