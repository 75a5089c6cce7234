"""Item feature matrix: moved to :mod:`recommender.engine.features`.

Kept so that imports of the old path keep working.
"""

from recommender.engine.features import FeatureWeights, item_features_build

__all__ = ["FeatureWeights", "item_features_build"]
