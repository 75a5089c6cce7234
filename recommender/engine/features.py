"""Item feature matrix: what the content part of the engine knows about items.

Built once per catalog version and kept in memory. Rows are items, columns are
category one-hot, tag multi-hot (IDF-weighted) and a few normalised numeric
attributes; every row is L2-normalised so a dot product is a cosine. The
matrix is ``scipy.sparse`` CSR because tag vocabularies grow with the catalog
while each item carries only a handful of tags: a 100k-item catalog costs a
few MB instead of a dense items x vocabulary block.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from recommender.engine.similarity import EPSILON
from recommender.engine.types import Catalog

__all__ = ["FeatureWeights", "item_features_build"]


@dataclass(frozen=True)
class FeatureWeights:
    """Relative weight of each feature block before the row normalisation.

    The blocks are scaled to unit norm each, then multiplied by these
    weights, so the numbers say how much of an item's identity each block is.
    """

    category: float = 1.0
    tags: float = 1.0
    price: float = 0.2
    rating: float = 0.2
    year: float = 0.3


def _min_max(values: NDArray[np.float32]) -> NDArray[np.float32]:
    """Scale finite values to [0, 1]; unknown (NaN) values become 0.5."""
    out = np.full(values.shape, 0.5, dtype=np.float32)
    known = np.isfinite(values)
    if known.any():
        lo = float(values[known].min())
        hi = float(values[known].max())
        span = hi - lo if hi - lo > EPSILON else 1.0
        out[known] = (values[known] - lo) / span
    return out


def _category_block(catalog: Catalog) -> sp.csr_matrix:
    n = len(catalog.ids)
    n_cat = max(1, len(catalog.category_names))
    cat = np.asarray(catalog.category, dtype=np.int64)
    rows = np.flatnonzero(cat >= 0)
    return sp.csr_matrix(
        (np.ones(rows.shape[0], dtype=np.float32), (rows, cat[rows])),
        shape=(n, n_cat),
        dtype=np.float32,
    )


def _tag_block(catalog: Catalog) -> sp.csr_matrix:
    n = len(catalog.ids)
    lengths = np.fromiter((len(t) for t in catalog.tags), dtype=np.int64, count=n)
    flat = [tag for tags in catalog.tags for tag in tags]
    if not flat:
        return sp.csr_matrix((n, 1), dtype=np.float32)
    vocab, codes = np.unique(
        np.asarray(flat, dtype=object).astype(str), return_inverse=True
    )
    rows = np.repeat(np.arange(n, dtype=np.int64), lengths)
    block = sp.csr_matrix(
        (np.ones(codes.shape[0], dtype=np.float32), (rows, codes)),
        shape=(n, vocab.shape[0]),
        dtype=np.float32,
    )
    block.data[:] = 1.0  # a tag listed twice on one item still counts once
    # IDF: a tag every item carries says nothing about taste.
    df = np.asarray((block > 0).sum(axis=0), dtype=np.float32).ravel()
    idf = np.log((1.0 + n) / (1.0 + df)).astype(np.float32) + 1.0
    return sp.csr_matrix(block @ sp.diags(idf.astype(np.float32)), dtype=np.float32)


def _normalise_rows(block: sp.csr_matrix) -> sp.csr_matrix:
    sq = np.asarray(block.multiply(block).sum(axis=1), dtype=np.float32).ravel()
    norms = np.sqrt(sq)
    norms[norms < EPSILON] = EPSILON
    return sp.csr_matrix(sp.diags(1.0 / norms) @ block, dtype=np.float32)


def item_features_build(
    catalog: Catalog, *, weights: FeatureWeights | None = None
) -> sp.csr_matrix:
    """Return the L2-normalised item feature matrix of ``catalog``.

    Parameters
    ----------
    catalog : Catalog
        The items, in the order the rows should have.
    weights : FeatureWeights, optional
        Relative weight of each block; the defaults favour genre and tags.

    Returns
    -------
    scipy.sparse.csr_matrix of shape (n_items, n_features), float32
        Unit-norm rows (an item with no features at all has a zero row).
        Columns: category one-hot, IDF-weighted tags, price (log, min-max),
        rating (/5) and year (min-max; unknown years sit in the middle).
    """
    w = weights or FeatureWeights()
    n = len(catalog.ids)
    price = np.log1p(np.maximum(np.asarray(catalog.price, dtype=np.float32), 0.0))
    rating = np.clip(np.asarray(catalog.rating, dtype=np.float32) / 5.0, 0.0, 1.0)
    year = np.asarray(catalog.year, dtype=np.float32)
    numeric = np.stack(
        [
            w.price * _min_max(price),
            w.rating * rating,
            w.year * _min_max(year),
        ],
        axis=1,
    ).astype(np.float32)
    blocks = [
        w.category * _normalise_rows(_category_block(catalog)),
        w.tags * _normalise_rows(_tag_block(catalog)),
        sp.csr_matrix(numeric.reshape(n, 3), dtype=np.float32),
    ]
    matrix = sp.hstack(blocks, format="csr", dtype=np.float32)
    matrix.eliminate_zeros()
    return _normalise_rows(matrix)
