"""Vectorised similarity maths for the recommender (pure numpy, no Django).

Public functions validate their input and cast it once to float32; the private
helpers assume checked input and do the computing, in row chunks so that the
memory of a query-by-item block stays bounded (as in scikit-learn's
``sklearn.metrics.pairwise``).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "EPSILON",
    "cosine_similarity",
    "euclidean_similarity",
    "l2_normalize",
    "top_k",
    "top_n_cells",
]

#: Replaces zero norms before dividing, so an all-zero row stays all zero.
EPSILON = 1e-8

#: Upper bound on the float32 cells of one query-by-item block (64 MiB).
_CHUNK_CELLS = 16 * 1024 * 1024


def _as_matrix(name: str, value: ArrayLike) -> NDArray[np.float32]:
    array = np.asarray(value, dtype=np.float32)
    if array.ndim == 1:
        array = array[np.newaxis, :]
    if array.ndim != 2:
        raise ValueError(f"{name} must be 1-D or 2-D, got {array.ndim}-D")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} contains NaN or infinite values")
    return array


def _check_pair(
    x: ArrayLike, y: ArrayLike | None
) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    xm = _as_matrix("x", x)
    ym = xm if y is None else _as_matrix("y", y)
    if xm.shape[1] != ym.shape[1]:
        raise ValueError(
            f"x and y must have the same number of features, "
            f"got {xm.shape[1]} and {ym.shape[1]}"
        )
    return xm, ym


def _row_norms(x: NDArray[np.float32]) -> NDArray[np.float32]:
    norms = np.sqrt(np.einsum("ij,ij->i", x, x, dtype=np.float32))
    norms[norms < EPSILON] = EPSILON
    return norms


def _chunk_rows(n_rows: int, n_cols: int) -> int:
    return max(1, min(n_rows, _CHUNK_CELLS // max(1, n_cols)))


def _cosine(x: NDArray[np.float32], y: NDArray[np.float32]) -> NDArray[np.float32]:
    yn = y / _row_norms(y)[:, np.newaxis]
    out = np.empty((x.shape[0], y.shape[0]), dtype=np.float32)
    step = _chunk_rows(x.shape[0], y.shape[0])
    for start in range(0, x.shape[0], step):
        block = x[start : start + step]
        xn = block / _row_norms(block)[:, np.newaxis]
        np.matmul(xn, yn.T, out=out[start : start + step])
    # Rounding can push identical vectors a hair past 1.
    np.clip(out, -1.0, 1.0, out=out)
    return out


def _euclidean_distances(
    x: NDArray[np.float32], y: NDArray[np.float32]
) -> NDArray[np.float32]:
    y_sq = np.einsum("ij,ij->i", y, y, dtype=np.float32)
    out = np.empty((x.shape[0], y.shape[0]), dtype=np.float32)
    step = _chunk_rows(x.shape[0], y.shape[0])
    for start in range(0, x.shape[0], step):
        block = x[start : start + step]
        x_sq = np.einsum("ij,ij->i", block, block, dtype=np.float32)
        # |x-y|^2 = |x|^2 - 2 x.y + |y|^2, one matrix product per chunk;
        # cancellation can make it slightly negative, hence the clamp.
        d2 = block @ y.T
        d2 *= -2.0
        d2 += x_sq[:, np.newaxis]
        d2 += y_sq[np.newaxis, :]
        np.maximum(d2, 0.0, out=d2)
        np.sqrt(d2, out=out[start : start + step])
    return out


def l2_normalize(x: ArrayLike) -> NDArray[np.float32]:
    """Return the rows of ``x`` scaled to unit L2 norm.

    Parameters
    ----------
    x : array_like of shape (n_rows, n_features) or (n_features,)
        Vectors to normalise; all-zero rows stay zero.

    Returns
    -------
    ndarray of shape (n_rows, n_features), float32
    """
    xm = _as_matrix("x", x)
    return xm / _row_norms(xm)[:, np.newaxis]


def cosine_similarity(x: ArrayLike, y: ArrayLike | None = None) -> NDArray[np.float32]:
    """Return the cosine similarity of every row of ``x`` with every row of ``y``.

    Parameters
    ----------
    x : array_like of shape (n_x, n_features) or (n_features,)
        Query vectors.
    y : array_like of shape (n_y, n_features), optional
        Candidate vectors; ``x`` itself when omitted.

    Returns
    -------
    ndarray of shape (n_x, n_y), float32
        Values in [-1, 1]; a zero vector has similarity 0 with everything.
    """
    xm, ym = _check_pair(x, y)
    return _cosine(xm, ym)


def euclidean_similarity(
    x: ArrayLike, y: ArrayLike | None = None
) -> NDArray[np.float32]:
    """Return ``1 / (1 + d)`` for the Euclidean distance ``d`` between rows.

    Parameters
    ----------
    x : array_like of shape (n_x, n_features) or (n_features,)
        Query vectors.
    y : array_like of shape (n_y, n_features), optional
        Candidate vectors; ``x`` itself when omitted.

    Returns
    -------
    ndarray of shape (n_x, n_y), float32
        Values in (0, 1]; 1 means identical vectors.
    """
    xm, ym = _check_pair(x, y)
    d = _euclidean_distances(xm, ym)
    d += 1.0
    np.reciprocal(d, out=d)
    return d


#: Above this many scores, :func:`_top_k` first narrows to a candidate set.
_PREFILTER_MIN = 4096

#: Sample every this-many-th score to find the candidates' threshold.
_SAMPLE_STRIDE = 16


def _top_k(scores: NDArray, k: int) -> NDArray[np.int64]:
    n = scores.shape[0]
    if n >= _PREFILTER_MIN and k * _SAMPLE_STRIDE * 4 <= n:
        # argpartition over a whole catalog costs ~100 µs at 10k items. The
        # k-th largest of a strided sample is a lower bound on the k-th
        # largest of all (the sample is a subset), so every score at or
        # above it -- all of the top k and every tie at the boundary -- is a
        # candidate: the same result from a few hundred rows.
        sample = scores[::_SAMPLE_STRIDE]
        bound = np.partition(sample, sample.shape[0] - k)[sample.shape[0] - k]
        if bound > -np.inf:
            rows = np.flatnonzero(scores >= bound)
            return rows[_top_k_small(scores[rows], k)]
    return _top_k_small(scores, k)


def _top_k_small(scores: NDArray, k: int) -> NDArray[np.int64]:
    n = scores.shape[0]
    if k >= n:
        candidates = np.arange(n, dtype=np.int64)
    else:
        # Partition on the negated scores so the k largest come first, then
        # sort only those k: O(n + k log k) instead of O(n log n).
        part = np.argpartition(-scores, k - 1)[:k]
        kth = scores[part].min()
        candidates = part[scores[part] > kth].astype(np.int64)
        # argpartition picks arbitrary members of a tie at the boundary; take
        # the lowest indices instead so equal scores rank the same every run.
        ties = np.flatnonzero(scores == kth)[: k - candidates.shape[0]]
        candidates = np.concatenate([candidates, ties.astype(np.int64)])
    # lexsort keys are applied last-first: score descending, then index
    # ascending, so ties resolve the same way on every run.
    order = np.lexsort((candidates, -scores[candidates]))
    return candidates[order]


def top_k(scores: ArrayLike, k: int) -> NDArray[np.int64]:
    """Return the indices of the ``k`` largest scores, best first.

    Ties are broken by ascending index, so the result is deterministic.
    ``-inf`` scores are never returned (use them to mask items out).

    Parameters
    ----------
    scores : array_like of shape (n,)
        One score per candidate.
    k : int
        How many indices to return; fewer when fewer finite scores exist.

    Returns
    -------
    ndarray of shape (min(k, n_finite),), int64
    """
    array = np.asarray(scores)
    if array.ndim != 1:
        raise ValueError(f"scores must be 1-D, got {array.ndim}-D")
    if k < 0:
        raise ValueError(f"k must be non-negative, got {k}")
    if np.isnan(array).any():
        raise ValueError("scores contain NaN")
    if k == 0 or array.shape[0] == 0:
        return np.empty(0, dtype=np.int64)
    result = _top_k(array, k)
    return result[np.isfinite(array[result]) | (array[result] > 0)]


def top_n_cells(
    block: NDArray[np.float32], n: int
) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.float32]]:
    """Return the ``n`` largest positive cells of each row of a dense block.

    How the fits keep their top-N links per item, a block of rows at a time.

    Parameters
    ----------
    block : ndarray of shape (n_rows, n_cols), float32
    n : int

    Returns
    -------
    rows, cols : ndarray of shape (n_kept,), int64
        Row (within the block) and column of each kept cell.
    vals : ndarray of shape (n_kept,), float32
    """
    n_rows, n_cols = block.shape
    if n < n_cols:
        cols = np.argpartition(-block, n - 1, axis=1)[:, :n]
    else:
        cols = np.broadcast_to(np.arange(n_cols), (n_rows, n_cols))
    rows = np.broadcast_to(np.arange(n_rows)[:, np.newaxis], cols.shape)
    vals = block[rows, cols]
    keep = vals > 0
    return rows[keep].astype(np.int64), cols[keep].astype(np.int64), vals[keep]
