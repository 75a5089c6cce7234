"""The engine's inputs, outputs and parameters (plain data, no Django).

The services that read the database build :class:`Catalog`,
:class:`Interactions` and :class:`History`; the engine answers with
:class:`Recommendation` lists. :class:`FitParams` and :class:`ScoreParams`
hold the tunable numbers (defaults chosen on a validation split carved from
train; see docs/evaluation.md).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "Catalog",
    "FitParams",
    "History",
    "Interactions",
    "ProgressFn",
    "Recommendation",
    "ScoreParams",
]

ProgressFn = Callable[[str], None]


@dataclass(frozen=True)
class Catalog:
    """Every item the engine may score, as parallel arrays (any order)."""

    ids: NDArray[np.int64]
    titles: list[str]
    category: NDArray[np.int32]
    category_names: list[str]
    tags: list[list[str]]
    price: NDArray[np.float32]
    rating: NDArray[np.float32]
    year: NDArray[np.float32]
    active: NDArray[np.bool_]
    created: NDArray[np.float64]

    def __post_init__(self) -> None:
        n = len(self.ids)
        for name in ("titles", "category", "tags", "price", "rating", "year"):
            if len(getattr(self, name)) != n:
                raise ValueError(
                    f"Catalog.{name} has {len(getattr(self, name))} rows, ids {n}"
                )
        for name in ("active", "created"):
            if len(getattr(self, name)) != n:
                raise ValueError(
                    f"Catalog.{name} has {len(getattr(self, name))} rows, ids {n}"
                )


@dataclass(frozen=True)
class Interactions:
    """All users' events, for the batch fit (parallel arrays, any order)."""

    user_ids: NDArray[np.int64]
    item_ids: NDArray[np.int64]
    weights: NDArray[np.float32]
    timestamps: NDArray[np.float64]


@dataclass(frozen=True)
class History:
    """One user's recent events, oldest first (parallel arrays)."""

    item_ids: NDArray[np.int64]
    actions: list[str]
    weights: NDArray[np.float32]
    timestamps: NDArray[np.float64]

    @classmethod
    def empty(cls) -> History:
        """Return the history of a user who has done nothing yet."""
        return cls(
            item_ids=np.empty(0, dtype=np.int64),
            actions=[],
            weights=np.empty(0, dtype=np.float32),
            timestamps=np.empty(0, dtype=np.float64),
        )


@dataclass(frozen=True)
class Recommendation:
    """One recommended item with its blended score and why it was chosen.

    Attributes
    ----------
    item_id : int
    score : float
        The blended score (higher is better; comparable within one list).
    reasons : list of str
        Up to two distinct human sentences, strongest signal first.
    because : list of int
        Ids of the user's own items that contributed most to this item,
        strongest first; empty when it comes from popularity or newness.
    """

    item_id: int
    score: float
    reasons: list[str] = field(default_factory=list)
    because: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class FitParams:
    """How :meth:`Behaviour.fit` learns item neighbours and popularity.

    Attributes
    ----------
    method : {"auto", "slist", "sequence-knn", "ease", "knn"}
        ``auto`` uses the order-aware SLIST closed form up to
        ``dense_max_items`` items, the order-aware cosine kNN beyond (see
        :mod:`recommender.engine.sequence`); ``ease`` and ``knn`` ignore order.
    ease_lambda : float
        L2 regularisation of EASE (added to the Gram diagonal).
    sequence_alpha : float
        Share of the similarity view in the order-aware models (1: no
        transitions, 0: transitions only).
    sequence_lambda : float
        L2 regularisation of SLIST: a multiple of the mean Gram diagonal when
        ``sequence_lambda_relative`` (so it means the same on data of any
        size), else the value added to the diagonal.
    sequence_lambda_relative : bool
    sequence_lambda_scales : tuple of float
        Candidate multiples of the mean Gram diagonal; when two or more are
        given, the fit chooses among them on a carve-out of its own data (the
        last 20 % of each user's events; see :mod:`recommender.engine.carveout`)
        and ``sequence_lambda`` is only the fallback for data too small to
        judge.
    sequence_tau : float
        Position scale of the transition inputs, in events: an item ``d``
        events before a position weighs ``exp(-d / tau)``.
    sequence_tau_target : float or None
        Position scale of the transition targets: an item ``d`` events after
        the next one weighs ``exp(-d / tau_target)`` (None: ``sequence_tau``,
        as in SLIST).
    sequence_normalise : {"none", "l1"}
        Row scaling of the inputs (``l1``: the SLIST reference code's).
    dense_max_items : int
        Largest item count for a dense inverse (memory ~ 8 n^2 bytes).
    neighbours : int
        Neighbours kept per item; bounds memory and per-user scoring time.
    min_item_events : int
        Items with fewer events get no neighbours (they still get popularity
        and content scores); shrinks the cubic EASE cost.
    bucket_secs : float
        Width of the popularity time buckets, in seconds.
    """

    method: str = "auto"
    ease_lambda: float = 200.0
    sequence_alpha: float = 0.2
    sequence_lambda: float = 5.0
    sequence_lambda_relative: bool = True
    sequence_lambda_scales: tuple[float, ...] = (1.0, 2.0, 4.0, 8.0, 16.0)
    sequence_tau: float = 7.0
    sequence_tau_target: float | None = 0.5
    sequence_normalise: str = "none"
    dense_max_items: int = 20_000
    neighbours: int = 200
    min_item_events: int = 3
    bucket_secs: float = 3600.0


@dataclass(frozen=True)
class ScoreParams:
    """How :meth:`Engine.recommend` blends its signals.

    Attributes
    ----------
    history_half_life_events : float
        An event this many events back counts half as much as the newest.
    action_power : float
        Exponent on the action weight (0 ignores the action, 1 is linear).
    behaviour_weight, content_weight, popularity_weight, new_weight : float
        Blend weights of the normalised signals.
    popularity_half_life_days : float
        Half-life of an event's contribution to "popular right now".
    new_half_life_days : float
        Half-life of the new-item bonus after an item is created.
    cold_new_weight : float
        Weight of the new-item bonus, relative to popularity, for a user
        with no history (cold start ranks by popularity first).
    """

    history_half_life_events: float = 3.0
    action_power: float = 0.5
    behaviour_weight: float = 1.0
    content_weight: float = 0.2
    popularity_weight: float = 0.02
    new_weight: float = 0.01
    popularity_half_life_days: float = 30.0
    new_half_life_days: float = 180.0
    cold_new_weight: float = 0.1
