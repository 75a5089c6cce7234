"""Staff rules and experiments as the live engine needs them, per process.

Rules and experiments are read from the database into engine specs
(:class:`~recommender.engine.rules.RuleSpec`,
:class:`~recommender.engine.experiments.ExperimentSpec`) and kept in one
per-process :class:`Merchandising` object. It re-reads them when a cheap stamp
query (row counts and last-change times) says they changed, at most every
``CHECK_SECS``, or at once after :meth:`Merchandising.invalidate` (called when
a staff save is broadcast). Compiled rules are cached per catalog, placement
and variant, so scoring a user adds no database work.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from django.db.models import Count, Max

from recommender.engine.experiments import ExperimentSpec, VariantSpec
from recommender.engine.indexing import catalog_take
from recommender.engine.rules import CompiledRules, RuleCatalog, RuleSpec, rules_compile
from recommender.models import Experiment, Item, Rule, Variant

if TYPE_CHECKING:
    from recommender.engine.types import Catalog

#: How often a process asks the database whether rules or experiments changed.
#: Half a second keeps "a saved rule reaches lists within a second" true even
#: when the broadcast that normally announces it is lost.
CHECK_SECS = 0.5

_SECS_PER_HOUR = 3600.0
_COMPILED_KEPT = 256
# Up to this many items, stock is read by id (an edit's few rows); beyond,
# every tracked row is read and matched.
_STOCK_READ_BY_ID_MAX = 1_000


@dataclass(frozen=True)
class StoredRule:
    """An active rule: where it applies and what it does.

    Attributes
    ----------
    id : int
    placement : str
        Empty for every placement.
    variant_id : int or None
        Only users in this variant; None for everyone.
    spec : RuleSpec
    """

    id: int
    placement: str
    variant_id: int | None
    spec: RuleSpec


@dataclass(frozen=True)
class MerchandisingSnapshot:
    """Every active rule and every experiment that has not ended, at one stamp."""

    stamp: tuple
    rules: tuple[StoredRule, ...]
    experiments: tuple[ExperimentSpec, ...]

    def rules_for(self, *, placement: str, variant_id: int | None) -> list[RuleSpec]:
        """Return the specs that apply to one list, in priority order."""
        return [
            rule.spec
            for rule in self.rules
            if rule.placement in ("", placement)
            and rule.variant_id in (None, variant_id)
        ]


def merchandising_stamp() -> tuple:
    """Return a value that changes whenever a rule, experiment or variant does.

    Counts catch deletions; last-change times catch edits and additions.
    """
    rules = Rule.objects.order_by().aggregate(n=Count("id"), last=Max("updated"))
    variants = Variant.objects.order_by().aggregate(
        n=Count("id"), last=Max("updated"), experiment=Max("experiment__updated")
    )
    return (
        rules["n"],
        rules["last"],
        variants["n"],
        variants["last"],
        variants["experiment"],
    )


def rules_load() -> list[StoredRule]:
    """Return every active rule as an engine spec, highest priority first.

    A rule whose target points at nothing (a deleted category, no chosen
    items) is left out instead of failing every list.
    """
    rules = list(Rule.objects.filter(active=True).select_related("category"))
    # A pin shows its items in the order staff added them.
    through = Rule.items.through
    chosen: dict[int, list[int]] = {}
    for rule_id, item_id in (
        through.objects.filter(rule_id__in=[r.pk for r in rules])
        .order_by("id")
        .values_list("rule_id", "item_id")
    ):
        chosen.setdefault(rule_id, []).append(item_id)
    out: list[StoredRule] = []
    for rule in rules:
        try:
            spec = RuleSpec(
                kind=rule.kind,
                target=rule.target,
                category=rule.category.name if rule.category else "",
                tag=rule.tag,
                price=float(rule.price) if rule.price is not None else 0.0,
                item_ids=tuple(chosen.get(rule.pk, ())),
                new_within_days=float(rule.new_within_days),
                factor=rule.factor,
                position=rule.position,
                cap=rule.cap,
                priority=rule.priority,
            )
        except ValueError:
            continue
        out.append(StoredRule(rule.pk, rule.placement, rule.variant_id, spec))
    return out


def experiments_load() -> list[ExperimentSpec]:
    """Return active experiments that have not ended, oldest start first.

    That order decides which experiment a user joins when several run (see
    :func:`~recommender.engine.experiments.experiments_assign`).
    """
    experiments = (
        Experiment.objects.filter(active=True)
        .prefetch_related("variants")
        .order_by("start", "created", "id")
    )
    now = time.time()
    out: list[ExperimentSpec] = []
    for experiment in experiments:
        end = experiment.end.timestamp() if experiment.end else None
        if end is not None and end <= now:
            continue
        variants = tuple(
            VariantSpec(
                id=v.pk,
                name=v.name,
                share=min(max(v.share, 0.0), 1.0),
                params=dict(v.params or {}),
            )
            for v in sorted(experiment.variants.all(), key=lambda v: v.pk)
        )
        if not variants:
            continue
        try:
            spec = ExperimentSpec(
                id=experiment.pk,
                name=experiment.name,
                salt=experiment_salt(experiment.pk),
                variants=variants,
                start=experiment.start.timestamp() if experiment.start else None,
                end=end,
            )
        except ValueError:
            continue  # shares over 1: the admin refuses it, a shell might not
        out.append(spec)
    return out


def experiment_salt(experiment_id: int) -> str:
    """Return the hash salt of an experiment (stable for its lifetime)."""
    return f"experiment-{experiment_id}"


def rule_catalog_build(
    *,
    ids: Sequence[int] | np.ndarray,
    category: np.ndarray,
    category_names: Sequence[str],
    tags: Sequence[Sequence[str]],
    price: np.ndarray,
    created: np.ndarray,
    stock: np.ndarray | None = None,
) -> RuleCatalog:
    """Return the rule view of a catalog, reading stock when not given.

    ``stock`` None reads it from the database for ``ids`` (-1 where not
    tracked).
    """
    ids = np.asarray(ids, dtype=np.int64)
    if stock is None:
        tracked = Item.objects.filter(stock__isnull=False)
        if ids.shape[0] <= _STOCK_READ_BY_ID_MAX:
            tracked = tracked.filter(pk__in=ids.tolist())
        known = dict(tracked.values_list("id", "stock"))
        stock = np.fromiter(
            (known.get(i, -1) for i in ids.tolist()), dtype=np.int64, count=len(ids)
        )
    return RuleCatalog.build(
        ids=ids,
        category=category,
        category_names=category_names,
        tags=tags,
        price=price,
        stock=stock,
        created=created,
    )


def rule_catalog_of(
    catalog: Catalog, *, stock: np.ndarray | None = None
) -> RuleCatalog:
    """Return the rule view of an engine catalog (see :func:`rule_catalog_build`)."""
    return rule_catalog_build(
        ids=catalog.ids,
        category=catalog.category,
        category_names=catalog.category_names,
        tags=catalog.tags,
        price=catalog.price,
        created=catalog.created,
        stock=stock,
    )


class Merchandising:
    """The process's rules and experiments, and rules compiled per list.

    One object with one lifetime; tests call :meth:`reset`.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        """Forget everything loaded or compiled."""
        with self._lock:
            self._snapshot: MerchandisingSnapshot | None = None
            self._checked_at = float("-inf")
            self._catalog: Catalog | RuleCatalog | None = None
            self._rule_catalog: RuleCatalog | None = None
            self._compiled: dict[tuple, CompiledRules] = {}

    def invalidate(self) -> None:
        """Make the next :meth:`current` ask the database (a staff save)."""
        self._checked_at = float("-inf")

    def current(self) -> MerchandisingSnapshot:
        """Return the rules and experiments, re-read if they changed."""
        now = time.monotonic()
        snapshot = self._snapshot
        if snapshot is not None and now - self._checked_at < CHECK_SECS:
            return snapshot
        stamp = merchandising_stamp()
        if snapshot is None or stamp != snapshot.stamp:
            snapshot = MerchandisingSnapshot(
                stamp=stamp,
                rules=tuple(rules_load()),
                experiments=tuple(experiments_load()),
            )
            with self._lock:
                self._snapshot = snapshot
                self._compiled = {}
        self._checked_at = now
        return snapshot

    def compiled(
        self,
        *,
        catalog: Catalog | RuleCatalog,
        placement: str,
        variant_id: int | None,
        now: float,
        edited_from: tuple[Catalog, np.ndarray] | None = None,
    ) -> CompiledRules:
        """Return the rules of one list compiled over ``catalog``'s rows.

        ``catalog`` is the engine's (sorted) catalog, or a ready
        :class:`RuleCatalog`. Cached until the catalog object, the rules or
        the hour change (the hour: "new items" depends on the time).
        ``edited_from`` (the engine's :attr:`~Engine.edited_from`) names the
        catalog this one was edited from and the rows edited: the rule view
        of that catalog, when cached, is patched rather than built again.
        """
        snapshot = self.current()
        key = (snapshot.stamp, placement, variant_id, math.floor(now / _SECS_PER_HOUR))
        with self._lock:
            base = None
            if self._catalog is not catalog:
                if edited_from is not None and edited_from[0] is self._catalog:
                    base = self._rule_catalog
                self._catalog = catalog
                self._rule_catalog = None
                self._compiled = {}
            compiled = self._compiled.get(key)
            rule_catalog = self._rule_catalog
        if compiled is not None:
            return compiled
        specs = snapshot.rules_for(placement=placement, variant_id=variant_id)
        if not specs:
            # Nothing to apply: no need to read stock or index tags.
            compiled = CompiledRules.none(len(catalog.ids), catalog.category)
            with self._lock:
                if self._catalog is catalog:
                    self._compiled[key] = compiled
            return compiled
        if rule_catalog is None:
            rule_catalog = _rule_catalog_of(catalog, base, edited_from)
        compiled = rules_compile(specs, rule_catalog, now=now)
        with self._lock:
            if self._catalog is catalog:
                self._rule_catalog = rule_catalog
                if len(self._compiled) >= _COMPILED_KEPT:
                    self._compiled = {}  # entries of past hours or stamps
                self._compiled[key] = compiled
        return compiled


def _rule_catalog_of(
    catalog: Catalog | RuleCatalog,
    base: RuleCatalog | None,
    edited_from: tuple[Catalog, np.ndarray] | None,
) -> RuleCatalog:
    """Return the rule view of ``catalog``, from ``base`` plus the edits if known."""
    if isinstance(catalog, RuleCatalog):
        return catalog
    if base is not None and edited_from is not None:
        rows = np.asarray(edited_from[1], dtype=np.int64)
        return base.with_rows(rows, rule_catalog_of(catalog_take(catalog, rows)))
    return rule_catalog_of(catalog)


#: The process-wide instance.
merchandising = Merchandising()
