"""The recommendation engine as a pure-numpy package (no Django import).

Modules, each one concern:

* :mod:`~recommender.engine.actions` -- the action vocabulary (names,
  weights, verbs), the one definition everything else reads;
* :mod:`~recommender.engine.types` -- inputs, outputs and parameters;
* :mod:`~recommender.engine.similarity` -- vectorised cosine / Euclidean,
  top-k;
* :mod:`~recommender.engine.features` -- the item feature matrix;
* :mod:`~recommender.engine.behaviour` -- the batch fit (EASE / item-kNN
  neighbours, popularity over time);
* :mod:`~recommender.engine.serialisation` -- the fitted model as ``.npz``;
* :mod:`~recommender.engine.signals` -- the blend of scorers;
* :mod:`~recommender.engine.trends` -- popularity over time and newness;
* :mod:`~recommender.engine.indexing` -- id <-> row lookups, CSR row gathers;
* :mod:`~recommender.engine.scoring` -- :class:`Engine`, live scoring;
* :mod:`~recommender.engine.reasons` -- reasons and ``because`` ids;
* merchandising over the engine's rows: :mod:`~recommender.engine.rules`,
  :mod:`~recommender.engine.placements`, :mod:`~recommender.engine.experiments`.

The services that read the database build :class:`Catalog`,
:class:`Interactions` and :class:`History` and call :class:`Engine`.
"""

from recommender.engine.actions import ACTION_VERBS, ACTION_WEIGHTS
from recommender.engine.behaviour import Behaviour
from recommender.engine.scoring import Engine
from recommender.engine.types import (
    Catalog,
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
