"""Experiment assignment: a stable variant per user from a hash (pure Python).

Every server process computes the same variant for the same user and
experiment with no shared state: the user's assignment key and the
experiment's salt go through SHA-256, whose first 8 bytes give a point in
``[0, 1)``; the variants' traffic shares cut that interval in their order.
Shares may sum to less than 1: users falling past the last variant are not in
the experiment and get the default engine.

The key is not the user id (which changes when an anonymous visitor logs
in): the service layer keeps a key per user that survives the visitor merge.

No Django imports; :class:`VariantParams` validates a variant's engine
parameters with pydantic.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "ExperimentSpec",
    "VariantParams",
    "VariantSpec",
    "assignment_point",
    "experiments_assign",
    "variant_assign",
]

_SCALE = float(1 << 64)


class VariantParams(BaseModel):
    """Engine scoring parameters a variant overrides (the rest keep defaults).

    Names and meanings are those of the engine's ``ScoreParams``; unknown
    names are refused so a typo cannot silently run the default engine.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    history_half_life_events: float | None = Field(default=None, gt=0)
    action_power: float | None = Field(default=None, ge=0, le=4)
    behaviour_weight: float | None = Field(default=None, ge=0)
    content_weight: float | None = Field(default=None, ge=0)
    popularity_weight: float | None = Field(default=None, ge=0)
    new_weight: float | None = Field(default=None, ge=0)
    popularity_half_life_days: float | None = Field(default=None, gt=0)
    new_half_life_days: float | None = Field(default=None, gt=0)
    cold_new_weight: float | None = Field(default=None, ge=0)

    def overrides(self) -> dict[str, float]:
        """Return only the parameters this variant sets."""
        return self.model_dump(exclude_none=True)


@dataclass(frozen=True)
class VariantSpec:
    """One arm of an experiment.

    Attributes
    ----------
    id : int
        Database id (recorded on snapshots and impressions).
    name : str
    share : float
        Fraction of all users, in ``[0, 1]``.
    params : dict of str to float
        Engine parameters this arm overrides (validated :class:`VariantParams`).
    """

    id: int
    name: str
    share: float
    params: dict[str, float]

    def __post_init__(self) -> None:
        if not 0.0 <= self.share <= 1.0:
            raise ValueError(f"variant share must be in [0, 1], got {self.share}")


@dataclass(frozen=True)
class ExperimentSpec:
    """An experiment: variants in a fixed order and the period it runs.

    Attributes
    ----------
    id : int
    name : str
    salt : str
        Mixed into the hash so concurrent experiments assign independently.
    variants : tuple of VariantSpec
        In assignment order (the first is the baseline of comparisons).
    start, end : float or None
        Epoch seconds; None = open-ended. Runs while ``start <= now < end``.
    """

    id: int
    name: str
    salt: str
    variants: tuple[VariantSpec, ...]
    start: float | None = None
    end: float | None = None

    def __post_init__(self) -> None:
        total = sum(v.share for v in self.variants)
        if total > 1.0 + 1e-9:
            raise ValueError(f"variant shares of {self.name!r} sum to {total} > 1")

    def running(self, now: float) -> bool:
        """Return True if the experiment assigns users at ``now``."""
        if self.start is not None and now < self.start:
            return False
        return self.end is None or now < self.end


def assignment_point(key: str, salt: str) -> float:
    """Return a uniform point in ``[0, 1)`` fixed by ``key`` and ``salt``.

    SHA-256 rather than Python's ``hash()``: the latter is salted per
    process, and every process must agree.
    """
    digest = hashlib.sha256(f"{salt}\x1f{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / _SCALE


def variant_assign(
    experiment: ExperimentSpec, *, key: str, now: float
) -> VariantSpec | None:
    """Return the variant ``key`` falls in, or None (not running, not enrolled).

    Parameters
    ----------
    experiment : ExperimentSpec
    key : str
        The user's stable assignment key.
    now : float
        Epoch seconds.
    """
    if not experiment.running(now):
        return None
    point = assignment_point(key, experiment.salt)
    edge = 0.0
    for variant in experiment.variants:
        edge += variant.share
        if point < edge:
            return variant
    return None


def experiments_assign(
    experiments: Sequence[ExperimentSpec], *, key: str, now: float
) -> tuple[ExperimentSpec, VariantSpec] | None:
    """Return the first experiment (in the given order) that enrols ``key``.

    A user takes part in at most one experiment at a time, so two
    experiments never blend their parameters; a later experiment sees the
    users the earlier ones left out (a random subset, by independent salts).
    """
    for experiment in experiments:
        variant = variant_assign(experiment, key=key, now=now)
        if variant is not None:
            return experiment, variant
    return None
