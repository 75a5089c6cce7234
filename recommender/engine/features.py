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

__all__ = ["FeatureSpace", "FeatureWeights", "item_features_build"]


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


def _unit_range(values: NDArray[np.float32]) -> tuple[float, float]:
    """Return the (low, span) that scales the finite ``values`` to [0, 1]."""
    known = values[np.isfinite(values)]
    if not known.size:
        return 0.0, 1.0
    lo = float(known.min())
    hi = float(known.max())
    return lo, hi - lo if hi - lo > EPSILON else 1.0


def _scaled(
    values: NDArray[np.float32], low_span: tuple[float, float]
) -> NDArray[np.float32]:
    """Scale finite values by ``low_span`` into [0, 1]; unknown (NaN) become 0.5."""
    lo, span = low_span
    out = np.full(values.shape, 0.5, dtype=np.float32)
    known = np.isfinite(values)
    out[known] = np.clip((values[known] - lo) / span, 0.0, 1.0)
    return out


def _log_price(catalog: Catalog) -> NDArray[np.float32]:
    return np.log1p(np.maximum(np.asarray(catalog.price, dtype=np.float32), 0.0))


def _tag_cells(catalog: Catalog) -> tuple[NDArray[np.int64], NDArray[np.str_]]:
    """Return the row and the tag of every (item, tag) cell of ``catalog``."""
    n = len(catalog.ids)
    lengths = np.fromiter((len(t) for t in catalog.tags), dtype=np.int64, count=n)
    flat = [tag for tags in catalog.tags for tag in tags]
    rows = np.repeat(np.arange(n, dtype=np.int64), lengths)
    return rows, np.asarray(flat, dtype=object).astype(str)


def _normalise_rows(block: sp.csr_matrix) -> sp.csr_matrix:
    sq = np.asarray(block.multiply(block).sum(axis=1), dtype=np.float32).ravel()
    norms = np.sqrt(sq)
    norms[norms < EPSILON] = EPSILON
    return sp.csr_matrix(sp.diags(1.0 / norms) @ block, dtype=np.float32)


@dataclass(frozen=True)
class FeatureSpace:
    """The columns of the feature matrix and the scales fitted to one catalog.

    :meth:`fit_encode` learns them from a whole catalog (the tag vocabulary and its
    IDF, the price and year ranges); :meth:`encode` turns any items into rows
    of that space. Items edited after the fit are encoded in the old space, so
    one edit changes one row: a tag or a category first seen since the fit
    adds nothing until the next fit, and prices or years beyond the fitted
    range count as its ends.

    Attributes
    ----------
    weights : FeatureWeights
    n_categories : int
        Width of the category one-hot block (at least 1).
    vocabulary : ndarray of shape (n_tags,), str
        Known tags, sorted (a tag's column is its position).
    idf : ndarray of shape (n_tags,), float32
        Weight of each known tag: rare tags say more about taste.
    price_range, year_range : tuple of (float, float)
        The (low, span) that scales log-price and year to [0, 1].
    """

    weights: FeatureWeights
    n_categories: int
    vocabulary: NDArray[np.str_]
    idf: NDArray[np.float32]
    price_range: tuple[float, float]
    year_range: tuple[float, float]

    @classmethod
    def fit_encode(
        cls, catalog: Catalog, *, weights: FeatureWeights | None = None
    ) -> tuple[FeatureSpace, sp.csr_matrix]:
        """Return the space of ``catalog`` and the rows of its items, in one pass.

        Returns
        -------
        space : FeatureSpace
        features : scipy.sparse.csr_matrix of shape (n_items, n_features), float32
            What :meth:`encode` returns for ``catalog``.
        """
        n = len(catalog.ids)
        rows, tags = _tag_cells(catalog)
        vocabulary, codes = np.unique(tags, return_inverse=True)
        presence = _presence(rows, codes, n, vocabulary.shape[0])
        # IDF: a tag every item carries says nothing about taste.
        df = np.asarray((presence > 0).sum(axis=0), dtype=np.float32).ravel()
        idf = np.log((1.0 + n) / (1.0 + df)).astype(np.float32) + 1.0
        space = cls(
            weights=weights or FeatureWeights(),
            n_categories=max(1, len(catalog.category_names)),
            vocabulary=vocabulary,
            idf=idf.astype(np.float32),
            price_range=_unit_range(_log_price(catalog)),
            year_range=_unit_range(np.asarray(catalog.year, dtype=np.float32)),
        )
        return space, space._encode(catalog, presence)

    def encode(self, catalog: Catalog) -> sp.csr_matrix:
        """Return the L2-normalised feature rows of ``catalog``'s items.

        Returns
        -------
        scipy.sparse.csr_matrix of shape (n_items, n_features), float32
            Unit-norm rows (an item with no features at all has a zero row).
            Columns: category one-hot, IDF-weighted tags, price (log, scaled),
            rating (/5) and year (scaled; unknown years sit in the middle).
        """
        return self._encode(catalog, self._presence(catalog))

    def _encode(self, catalog: Catalog, presence: sp.csr_matrix) -> sp.csr_matrix:
        """Return :meth:`encode` given which known tags each item carries."""
        w = self.weights
        n = len(catalog.ids)
        rating = np.clip(np.asarray(catalog.rating, dtype=np.float32) / 5.0, 0.0, 1.0)
        numeric = np.stack(
            [
                w.price * _scaled(_log_price(catalog), self.price_range),
                w.rating * rating,
                w.year
                * _scaled(np.asarray(catalog.year, dtype=np.float32), self.year_range),
            ],
            axis=1,
        ).astype(np.float32)
        blocks = [
            w.category * _normalise_rows(self._category_block(catalog)),
            w.tags * _normalise_rows(self._tag_block(presence)),
            sp.csr_matrix(numeric.reshape(n, 3), dtype=np.float32),
        ]
        matrix = sp.hstack(blocks, format="csr", dtype=np.float32)
        matrix.eliminate_zeros()
        return _normalise_rows(matrix)

    def _category_block(self, catalog: Catalog) -> sp.csr_matrix:
        n = len(catalog.ids)
        cat = np.asarray(catalog.category, dtype=np.int64)
        rows = np.flatnonzero((cat >= 0) & (cat < self.n_categories))
        return sp.csr_matrix(
            (np.ones(rows.shape[0], dtype=np.float32), (rows, cat[rows])),
            shape=(n, self.n_categories),
            dtype=np.float32,
        )

    def _presence(self, catalog: Catalog) -> sp.csr_matrix:
        """Return which known tags each item carries: (n_items, n_tags), 0/1."""
        width = self.vocabulary.shape[0]
        rows, tags = _tag_cells(catalog)
        if not width:
            return _presence(rows[:0], rows[:0], len(catalog.ids), 0)
        slot = np.minimum(np.searchsorted(self.vocabulary, tags), width - 1)
        known = self.vocabulary[slot] == tags
        return _presence(rows[known], slot[known], len(catalog.ids), width)

    def _tag_block(self, presence: sp.csr_matrix) -> sp.csr_matrix:
        if not self.vocabulary.shape[0]:
            return sp.csr_matrix((presence.shape[0], 1), dtype=np.float32)
        return sp.csr_matrix(presence @ sp.diags(self.idf), dtype=np.float32)


def _presence(
    rows: NDArray[np.int64], codes: NDArray[np.int64], n: int, width: int
) -> sp.csr_matrix:
    """Return the 0/1 (n, width) matrix with a one at each (row, code) cell."""
    block = sp.csr_matrix(
        (np.ones(codes.shape[0], dtype=np.float32), (rows, codes)),
        shape=(n, width),
        dtype=np.float32,
    )
    block.data[:] = 1.0  # a tag listed twice on one item still counts once
    return block


def item_features_build(
    catalog: Catalog, *, weights: FeatureWeights | None = None
) -> sp.csr_matrix:
    """Return the L2-normalised item feature matrix of ``catalog``.

    The space fitted to ``catalog`` itself (see :class:`FeatureSpace`).

    Parameters
    ----------
    catalog : Catalog
        The items, in the order the rows should have.
    weights : FeatureWeights, optional
        Relative weight of each block; the defaults favour genre and tags.

    Returns
    -------
    scipy.sparse.csr_matrix of shape (n_items, n_features), float32
    """
    return FeatureSpace.fit_encode(catalog, weights=weights)[1]
