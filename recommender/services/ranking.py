"""Ranking under merchandising: the user's variant, the placement's rules.

Every list a user sees goes through here: their experiment variant is
looked up (a hash of their assignment key), the engine scores with the
variant's parameters, and the rules of the placement and variant apply
inside the ranking. ``for_you`` lists are scored in batches by the engine;
the other placements by :func:`~recommender.services.placements.placement_score`.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections import defaultdict
from dataclasses import dataclass

from recommender.engine.experiments import VariantSpec
from recommender.engine.placements import DEFAULT_PLACEMENT
from recommender.engine.scoring import Engine
from recommender.engine.types import History, Recommendation
from recommender.services.experiments import variants_assign
from recommender.services.placements import (
    PlacementList,
    placement_data,
    placement_score,
)
from recommender.services.rules import merchandising


@dataclass(frozen=True)
class RankedList:
    """One user's ``for_you`` list and the variant that shaped it."""

    recommendations: list[Recommendation]
    variant_id: int | None


class VariantEngines:
    """Engines with each variant's parameters, sharing the live engine's parts.

    :meth:`Engine.with_params` shares the catalog, features and neighbours,
    so a variant costs a small object, rebuilt when the live engine changes.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        """Forget every variant engine."""
        with self._lock:
            self._base: Engine | None = None
            self._engines: dict[tuple, Engine] = {}

    def engine_for(self, engine: Engine, variant: VariantSpec | None) -> Engine:
        """Return ``engine`` with ``variant``'s parameters (itself when none)."""
        if variant is None or not variant.params:
            return engine
        key = (variant.id, tuple(sorted(variant.params.items())))
        with self._lock:
            if self._base is not engine:
                self._base = engine
                self._engines = {}
            found = self._engines.get(key)
        if found is not None:
            return found
        clone = engine.with_params(dataclasses.replace(engine.params, **variant.params))
        with self._lock:
            if self._base is engine:
                self._engines[key] = clone
        return clone


#: The process-wide instance.
variant_engines = VariantEngines()


class SharedLists:
    """Placement lists that are the same for every user of a variant.

    ``similar`` (of an item), ``trending`` and ``complements`` of a given
    item depend on the catalog, the rules and the shared placement data, not
    on the user: a rule change or catalog edit re-ranks them once per process
    however many sockets watch them. An entry is valid while the objects it
    was computed from are the current ones.
    """

    _KEPT = 1024

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        """Forget every shared list."""
        with self._lock:
            self._lists: dict[tuple, tuple[tuple, PlacementList]] = {}

    def get(self, key: tuple, deps: tuple) -> PlacementList | None:
        """Return the list stored under ``key`` if computed from ``deps``."""
        entry = self._lists.get(key)
        if entry is None or len(entry[0]) != len(deps):
            return None
        if all(a is b for a, b in zip(entry[0], deps, strict=True)):
            return entry[1]
        return None

    def put(self, key: tuple, deps: tuple, value: PlacementList) -> None:
        """Store ``value`` computed from ``deps`` (the oldest entries go first)."""
        with self._lock:
            if len(self._lists) >= self._KEPT:
                self._lists.pop(next(iter(self._lists)))
            self._lists.pop(key, None)
            self._lists[key] = (deps, value)


#: The process-wide instance.
shared_lists = SharedLists()


def user_variants(*, user_ids: list[int], now: float) -> dict[int, VariantSpec | None]:
    """Return the variant each user is in now (None: the default engine)."""
    experiments = merchandising.current().experiments
    return variants_assign(user_ids=user_ids, experiments=experiments, now=now)


def for_you_rank(
    *,
    engine: Engine,
    histories: dict[int, History],
    k: int,
    now: float | None = None,
) -> dict[int, RankedList]:
    """Return each user's ``for_you`` list under their variant and the rules.

    Users of one variant are scored together in one engine batch.

    Parameters
    ----------
    engine : Engine
        The live engine.
    histories : dict of int to History
        Per user, their recent events.
    k : int
    now : float, optional
        Epoch seconds (default: the current time).
    """
    now = time.time() if now is None else now
    user_ids = list(histories)
    variants = user_variants(user_ids=user_ids, now=now)
    groups: dict[int | None, list[int]] = defaultdict(list)
    by_id: dict[int | None, VariantSpec | None] = {None: None}
    for user_id in user_ids:
        variant = variants[user_id]
        key = variant.id if variant is not None else None
        groups[key].append(user_id)
        by_id[key] = variant
    out: dict[int, RankedList] = {}
    for variant_id, members in groups.items():
        scorer = variant_engines.engine_for(engine, by_id[variant_id])
        rules = merchandising.compiled(
            catalog=engine.catalog,
            placement=DEFAULT_PLACEMENT,
            variant_id=variant_id,
            now=now,
            edited_from=engine.edited_from,
        )
        ranked = scorer.recommend_many(
            [histories[user_id] for user_id in members], k=k, now=now, rules=rules
        )
        for user_id, recommendations in zip(members, ranked, strict=True):
            out[user_id] = RankedList(recommendations, variant_id)
    return out


def placement_rank(
    *,
    engine: Engine,
    user_id: int | None,
    placement: str,
    item: int | None,
    history: History | None,
    k: int,
    now: float | None = None,
) -> PlacementList:
    """Return a ``similar`` / ``complements`` / ``trending`` list for a user.

    ``user_id`` None (an anonymous API call) gets the default variant.

    Raises
    ------
    UnknownPlacementItem
    """
    now = time.time() if now is None else now
    variant = (
        user_variants(user_ids=[user_id], now=now)[user_id]
        if user_id is not None
        else None
    )
    variant_id = variant.id if variant is not None else None
    rules = merchandising.compiled(
        catalog=engine.catalog,
        placement=placement,
        variant_id=variant_id,
        now=now,
        edited_from=engine.edited_from,
    )
    shared = placement != "complements" or item is not None
    key = (placement, item, variant_id, k)
    deps: tuple = ()
    if shared:
        data = (
            placement_data.trending(ids=engine.ids)
            if placement == "trending"
            else placement_data.complements(ids=engine.ids)
            if placement == "complements"
            else None
        )
        deps = (engine, rules, data)
        found = shared_lists.get(key, deps)
        if found is not None:
            return found
    ranked = placement_score(
        engine=engine,
        placement=placement,
        item=item,
        history=history,
        rules=rules,
        variant_id=variant_id,
        k=k,
        now=now,
    )
    if shared:
        shared_lists.put(key, deps, ranked)
    return ranked


def merchandising_reset() -> None:
    """Forget the process's rules, experiments, variant engines and shared lists.

    Part of the live process's one reset (tests swap databases under it).
    """
    merchandising.reset()
    variant_engines.reset()
    shared_lists.reset()
    placement_data.reset()
