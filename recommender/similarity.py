"""Vectorised similarity maths: moved to :mod:`recommender.engine.similarity`.

Kept so that imports of the old path keep working.
"""

from recommender.engine.similarity import (
    EPSILON,
    cosine_similarity,
    euclidean_similarity,
    l2_normalize,
    top_k,
)

__all__ = [
    "EPSILON",
    "cosine_similarity",
    "euclidean_similarity",
    "l2_normalize",
    "top_k",
]
