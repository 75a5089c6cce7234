"""Order-aware item-to-item weights: what a user does next, given what they did.

Each user's events, in time order, are read as one long session. Two views of
that sequence are learned together in closed form, as in SLIST (Choi et al.,
"Session-aware Linear Item-Item Models for Session-based Recommendation",
WWW 2021):

* **similarity** (SLIS): every item of a user's history should predict every
  other one -- an EASE-like model over user rows;
* **transition** (SLIT): the items a user had met up to position ``t``,
  weighted ``exp(-(t - s) / tau)`` by how far back position ``s`` is, should
  predict the items that follow, weighted ``exp(-(s - t - 1) / tau_target)``
  by how soon they come (SLIST uses one scale for both; a long input scale
  with a short target one reads a long context to predict the next event).

Minimising ``alpha * |X - X B|^2 + (1 - alpha) * |Y - Z B|^2 + lam * |B|^2``
over the stacked rows gives ``B = (S^T S + lam I)^{-1} S^T T`` with ``S`` the
stacked inputs and ``T`` the stacked targets. The rows are not normalised
(the reference code's ``l1`` row scaling is an option) and ``lam`` may be
given as a multiple of the mean Gram diagonal, so one value means the same
on data of any size (:mod:`recommender.engine.carveout` chooses it on a
carve-out of the data being fitted). Only the top ``N`` positive
weights per source item are kept, as a CSR matrix, so the live scoring path
reads it exactly like the EASE neighbours and costs the same per event.

A dense inverse is only possible up to a few tens of thousands of items.
Beyond that, :func:`sequence_knn_neighbours` blends the same two views as
cosines computed in row chunks (memory stays one chunk x n_items), which
scales to 100k+ items.

Pure numpy/scipy; no Django.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from recommender.engine.linalg import spd_inverse
from recommender.engine.similarity import EPSILON, top_n_cells
from recommender.engine.types import ProgressFn

__all__ = [
    "SequenceRows",
    "gram_diagonal_mean",
    "sequence_knn_neighbours",
    "sequence_neighbours",
    "sequence_rows",
    "sequence_system",
]

#: Position weights below this are dropped (``exp(-7) ~ 0.001``): the window
#: of a transition row is ``ceil(7 * tau)`` events each way.
_WINDOW_TAUS = 7.0


class SequenceRows:
    """The stacked training rows of the two views, over ``n_cols`` items.

    Attributes
    ----------
    x : scipy.sparse.csr_matrix of shape (n_users, n_cols), float32
        One binary row per user (similarity view; input and target).
    z, y : scipy.sparse.csr_matrix of shape (n_prefixes, n_cols), float32
        Transition view: one row per (user, position ``t``) with the items up
        to ``t`` (``z``) and after ``t`` (``y``), position-weighted.
    """

    __slots__ = ("x", "y", "z")

    def __init__(self, x: sp.csr_matrix, z: sp.csr_matrix, y: sp.csr_matrix) -> None:
        self.x, self.z, self.y = x, z, y


def sequence_rows(
    user_idx: NDArray[np.int64],
    col: NDArray[np.int64],
    n_cols: int,
    *,
    tau: float,
    tau_target: float | None = None,
) -> SequenceRows:
    """Return the similarity and transition rows of time-ordered events.

    Parameters
    ----------
    user_idx : ndarray of shape (n_events,), int64
        Dense user index of each event; events sorted by user, then time
        (then item id, so ties are deterministic).
    col : ndarray of shape (n_events,), int64
        Column (item) of each event, in ``[0, n_cols)``.
    n_cols : int
    tau : float
        Position scale of the inputs (the items up to position ``t``), in
        events: an item ``d`` events back weighs ``exp(-d / tau)``.
    tau_target : float, optional
        Position scale of the targets (the items after ``t``); ``tau`` when
        omitted, as in SLIST. A short one teaches "what comes next" from a
        long context.

    Returns
    -------
    SequenceRows
    """
    n_events = col.shape[0]
    n_users = int(user_idx.max()) + 1 if n_events else 0
    length = np.bincount(user_idx, minlength=n_users)
    start = np.concatenate([[0], np.cumsum(length)[:-1]])
    pos = np.arange(n_events, dtype=np.int64) - start[user_idx]
    length_e = length[user_idx]
    # Prefix rows: positions t = 0 .. L-2 of every user.
    prefixes = np.maximum(length - 1, 0)
    row_base = np.concatenate([[0], np.cumsum(prefixes)[:-1]])[user_idx]
    n_rows = int(prefixes.sum())
    x = sp.csr_matrix(
        (np.ones(n_events, dtype=np.float32), (user_idx, col)),
        shape=(n_users, n_cols),
        dtype=np.float32,
    )
    x.data[:] = 1.0
    tau_out = tau if tau_target is None else tau_target
    z_parts: list[tuple[NDArray, NDArray, NDArray]] = []
    y_parts: list[tuple[NDArray, NDArray, NDArray]] = []
    for d in range(max(1, int(np.ceil(_WINDOW_TAUS * tau)))):
        # Event at position s is input d steps back of prefix t = s + d ...
        ok = pos + d <= length_e - 2
        z_parts.append((row_base[ok] + pos[ok] + d, col[ok], np.exp(-d / tau)))
    for d in range(max(1, int(np.ceil(_WINDOW_TAUS * tau_out)))):
        # ... and target d steps after the first one of prefix t = s - 1 - d.
        ok = pos - 1 - d >= 0
        y_parts.append((row_base[ok] + pos[ok] - 1 - d, col[ok], np.exp(-d / tau_out)))

    def _stack(parts: list[tuple[NDArray, NDArray, NDArray]]) -> sp.csr_matrix:
        rows = np.concatenate([r for r, _, _ in parts])
        cols = np.concatenate([c for _, c, _ in parts])
        vals = np.concatenate(
            [np.full(r.shape[0], w, dtype=np.float32) for r, _, w in parts]
        )
        return sp.csr_matrix(
            (vals, (rows, cols)), shape=(n_rows, n_cols), dtype=np.float32
        )

    return SequenceRows(x, _stack(z_parts), _stack(y_parts))


def _l1_rows(m: sp.csr_matrix) -> sp.csr_matrix:
    """Return ``m`` with every row scaled to sum 1 (empty rows stay empty)."""
    sums = np.asarray(m.sum(axis=1), dtype=np.float32).ravel()
    sums[sums < EPSILON] = 1.0
    return sp.csr_matrix(sp.diags(1.0 / sums) @ m, dtype=np.float32)


def _top_n(block: NDArray[np.float32], n: int, offset: int) -> tuple:
    """Return (rows, cols, vals) of the ``n`` largest positive cells per row.

    ``rows`` are shifted by ``offset``: the block's first row in the matrix.
    """
    rows, cols, vals = top_n_cells(block, n)
    return rows + offset, cols, vals


def _csr(parts: list[tuple], n: int) -> sp.csr_matrix:
    if parts:
        rows = np.concatenate([r for r, _, _ in parts])
        cols = np.concatenate([c for _, c, _ in parts])
        vals = np.concatenate([v for _, _, v in parts]).astype(np.float32)
    else:
        rows = cols = np.empty(0, dtype=np.int64)
        vals = np.empty(0, dtype=np.float32)
    out = sp.csr_matrix((vals, (rows, cols)), shape=(n, n), dtype=np.float32)
    out.sort_indices()
    return out


def sequence_system(
    seq: SequenceRows, *, alpha: float, normalise: str
) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """Return the stacked (inputs, targets) rows of the SLIST regression.

    Parameters
    ----------
    seq : SequenceRows
    alpha : float
        Share of the similarity view.
    normalise : {"none", "l1"}
        ``l1`` scales every input row to sum 1 (the reference code's
        default); ``none`` keeps the binary and position-weighted rows.

    Returns
    -------
    inputs, targets : scipy.sparse.csr_matrix of shape (n_users + n_prefixes, n), float32
    """
    if normalise not in {"none", "l1"}:
        raise ValueError(f"unknown normalisation {normalise!r}")
    a, b = np.float32(np.sqrt(alpha)), np.float32(np.sqrt(1.0 - alpha))
    x, z = (_l1_rows(seq.x), _l1_rows(seq.z)) if normalise == "l1" else (seq.x, seq.z)
    inputs = sp.vstack([x * a, z * b]).tocsr()
    targets = sp.vstack([seq.x * a, seq.y * b]).tocsr()
    return inputs, targets


def gram_diagonal_mean(inputs: sp.csr_matrix) -> float:
    """Return the mean diagonal of ``inputs^T inputs`` (the ridge's unit).

    A ridge given as a multiple of it means the same on a small and a large
    data set: the diagonal grows with the number of users and events.
    """
    squares = np.asarray(inputs.multiply(inputs).sum(axis=0), dtype=np.float64)
    return max(float(squares.mean()), EPSILON)


def sequence_neighbours(
    seq: SequenceRows,
    *,
    alpha: float,
    lam: float,
    n_keep: int,
    progress: ProgressFn,
    normalise: str = "none",
    lam_relative: bool = False,
) -> sp.csr_matrix:
    """Return SLIST weights pruned to the top ``n_keep`` per source item.

    Parameters
    ----------
    seq : SequenceRows
        Training rows over ``n`` items (see :func:`sequence_rows`).
    alpha : float
        Share of the similarity view (1: similarity only, 0: transitions only).
    lam : float
        L2 regularisation added to the Gram diagonal.
    n_keep : int
        Links kept per source item.
    progress : callable
    normalise : {"none", "l1"}
        Input row scaling (see :func:`sequence_system`).
    lam_relative : bool
        ``lam`` is a multiple of the mean Gram diagonal, not an absolute value.

    Returns
    -------
    scipy.sparse.csr_matrix of shape (n, n), float32
        Row ``j``: how much item ``j`` in a profile adds to each target; zero
        diagonal (an item never recommends itself).
    """
    n = seq.x.shape[1]
    # Unnormalised rows by default: l1 rows make a long history spread one
    # unit of evidence, which on user-long "sessions" drowns every Gram entry
    # under the ridge and leaves little more than co-occurrence counts
    # (docs/evaluation.md: -0.010 NDCG@10 for the reported SLIST).
    inputs, targets = sequence_system(seq, alpha=alpha, normalise=normalise)
    if lam_relative:
        lam = lam * gram_diagonal_mean(inputs)
    gram = (inputs.T @ inputs).toarray().astype(np.float32)
    gram[np.diag_indices(n)] += np.float32(lam)
    # Dense, so B = P @ cross runs in BLAS: with position windows of tens of
    # events the cross products are far from sparse. Peak memory stays at
    # two n x n float32 arrays, as for EASE.
    cross = (inputs.T @ targets).toarray().astype(np.float32)
    del inputs, targets
    progress(f"inverting the {n}x{n} sequence Gram matrix")
    inv = spd_inverse(gram)
    # B = P @ cross, one block of source rows at a time, pruned as it goes.
    parts = []
    step = max(1, min(n, 4_000_000 // max(1, n)))
    for lo in range(0, n, step):
        hi = min(n, lo + step)
        block = inv[lo:hi] @ cross
        block[np.arange(hi - lo), np.arange(lo, hi)] = 0.0
        parts.append(_top_n(block, n_keep, lo))
    return _csr(parts, n)


def sequence_knn_neighbours(
    seq: SequenceRows,
    *,
    alpha: float,
    n_keep: int,
    progress: ProgressFn,
) -> sp.csr_matrix:
    """Return blended similarity and transition cosines, top ``n_keep`` per item.

    The scalable counterpart of :func:`sequence_neighbours` for catalogs too
    large for a dense inverse: ``alpha`` x the item-item cosine of the user
    rows plus ``1 - alpha`` x the cosine between an item's "came before"
    column (``z``) and another's "came after" column (``y``). Computed in row
    chunks, so memory stays at one chunk x n_items block.

    Parameters
    ----------
    seq : SequenceRows
    alpha : float
    n_keep : int
    progress : callable

    Returns
    -------
    scipy.sparse.csr_matrix of shape (n, n), float32
    """
    n = seq.x.shape[1]

    def _unit_columns(m: sp.csr_matrix) -> sp.csr_matrix:
        norms = np.sqrt(np.asarray(m.multiply(m).sum(axis=0), dtype=np.float32))
        norms = norms.ravel()
        norms[norms < EPSILON] = EPSILON
        return sp.csr_matrix(m @ sp.diags(1.0 / norms), dtype=np.float32)

    xn = _unit_columns(seq.x)
    zn = _unit_columns(seq.z)
    yn = _unit_columns(seq.y)
    xt = sp.csr_matrix(xn.T) * np.float32(alpha)
    zt = sp.csr_matrix(zn.T) * np.float32(1.0 - alpha)
    parts = []
    step = max(1, min(n, 8_000_000 // max(1, n)))
    for lo in range(0, n, step):
        hi = min(n, lo + step)
        block = (xt[lo:hi] @ xn).toarray() + (zt[lo:hi] @ yn).toarray()
        block[np.arange(hi - lo), np.arange(lo, hi)] = 0.0
        parts.append(_top_n(block.astype(np.float32), n_keep, lo))
        if lo // step % 20 == 0:
            progress(f"sequence neighbours {hi}/{n}")
    return _csr(parts, n)
