"""The recommendation engine: moved to the package :mod:`recommender.engine`.

Kept so that imports of the old path keep working.
"""

from recommender.engine import (
    ACTION_VERBS,
    ACTION_WEIGHTS,
    Behaviour,
    Catalog,
    Engine,
    FitParams,
    History,
    Interactions,
    Recommendation,
    ScoreParams,
)

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
