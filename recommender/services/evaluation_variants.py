"""Offline scores of every variant of an experiment, on one split.

``evaluate --experiment NAME`` fits the engine once on the train split and
scores each variant of the experiment on the same users, the way the live
socket ranks a user of that variant (:func:`~recommender.services.ranking.for_you_rank`):

* the variant's engine parameters, through
  :meth:`~recommender.services.ranking.VariantEngines.engine_for`;
* the active rules that apply to its users' ``for_you`` lists (rules for
  every variant and the variant's own, for every placement or ``for_you``),
  read by :func:`~recommender.services.rules.rules_load`, chosen by
  :meth:`~recommender.services.rules.MerchandisingSnapshot.rules_for` and
  compiled by :func:`~recommender.engine.rules.rules_compile` over the
  offline catalog, applied inside ``Engine.recommend`` /
  ``recommend_many`` before the top-k is taken;
* the static protocol of :func:`~recommender.services.evaluation.evaluation_run`
  or, with ``replay``, :func:`~recommender.services.replay.replay_run`.

Every variant sees every evaluated user (not the hash's share of them): the
comparison is paired, and the first variant (lowest id) is the baseline, as
online. The online figures of the same experiment
(:func:`~recommender.services.experiments.experiment_report` over its run so
far) come alongside, so offline and online read side by side.

Offline the catalog is the data set's. Rules name categories, tags and
prices, which match it directly (a MovieLens movie's category is its first
genre, every genre is a tag); chosen items and stock are the database's
items, matched to the data set through the external id ``ml:<movieId>`` that
``import_movielens`` gives them. A rule that selects no item of the offline
catalog is listed as such.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from typing import Any

import numpy as np
from django.utils import timezone

from recommender.engine.experiments import VariantSpec
from recommender.engine.placements import DEFAULT_PLACEMENT
from recommender.engine.rules import CompiledRules, RuleCatalog, RuleSpec, rules_compile
from recommender.engine.scoring import Engine
from recommender.engine.types import Catalog
from recommender.models import Experiment, Item, Rule
from recommender.services.evaluation import (
    METRIC_NAMES,
    EvalData,
    EvaluationResult,
    evaluation_prepare,
    evaluation_run,
)
from recommender.services.experiments import (
    ExperimentReport,
    UnknownExperiment,
    experiment_period,
    experiment_report,
)
from recommender.services.ranking import VariantEngines
from recommender.services.replay import REPLAY_METRICS, ReplayResult, replay_run
from recommender.services.rules import (
    MerchandisingSnapshot,
    rule_catalog_of,
    rules_load,
)

__all__ = [
    "ExperimentEvaluation",
    "VariantScore",
    "evaluation_variants_run",
]

ProgressFn = Callable[[str], None]

#: External id prefix of items imported from MovieLens (``import_movielens``).
_MOVIELENS_PREFIX = "ml:"
#: Online figures beside the offline ones: the operator view's window.
_ONLINE_WINDOW = timedelta(minutes=30)


@dataclass(frozen=True)
class VariantScore:
    """One variant's offline metrics.

    Attributes
    ----------
    name : str
    share : float
        Traffic share online (offline every variant sees every user).
    params : dict of str to float
        Engine parameters the variant overrides.
    rules : list of str
        Names of the rules applied to its ``for_you`` lists.
    rules_unmatched : list of str
        Those of ``rules`` that select no item of the offline catalog.
    metrics : dict of str to float
        As ``evaluate`` prints them (``users`` / ``steps`` included).
    vs_baseline : dict of str to float
        Metric minus the baseline's (empty for the baseline).
    """

    name: str
    share: float
    params: dict[str, float]
    rules: list[str]
    rules_unmatched: list[str]
    metrics: dict[str, float]
    vs_baseline: dict[str, float] = field(default_factory=dict)


@dataclass
class ExperimentEvaluation:
    """Every variant's offline metrics on one split, and the online report.

    ``runs`` holds each variant's full result (its lists), by name; it is
    left out of :meth:`as_dict`.
    """

    experiment: str
    baseline: str
    protocol: str
    split: str
    k: int
    history_events: int
    metric_names: list[str]
    variants: list[VariantScore]
    seconds: dict[str, float]
    online: ExperimentReport | None
    runs: dict[str, EvaluationResult | ReplayResult] = field(
        default_factory=dict, repr=False
    )

    def as_dict(self) -> dict[str, Any]:
        out = {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)
            if f.name not in ("runs", "variants", "online")
        }
        out["variants"] = [asdict(v) for v in self.variants]
        out["online"] = self.online.as_dict() if self.online else None
        return out


class _RuledEngine(Engine):
    """An engine whose every list is ranked under one variant's rules.

    The evaluation runners call ``recommend`` / ``recommend_many`` without
    rules; this passes the variant's compiled rules on, so the lists come
    from the very ranking code the live socket runs.
    """

    rules: CompiledRules | None

    def recommend(self, history, *, rules=None, **kwargs):  # type: ignore[override]
        rules = self.rules if rules is None else rules
        return super().recommend(history, rules=rules, **kwargs)

    def recommend_many(self, histories, *, rules=None, **kwargs):  # type: ignore[override]
        rules = self.rules if rules is None else rules
        return super().recommend_many(histories, rules=rules, **kwargs)


def _with_rules(engine: Engine, rules: CompiledRules | None) -> Engine:
    """Return ``engine`` ranking under ``rules`` (itself when there are none)."""
    if rules is None or rules.is_identity:
        return engine
    clone = object.__new__(_RuledEngine)
    clone.__dict__.update(engine.__dict__)
    clone.rules = rules
    return clone


def _movielens_ids(item_ids: list[int]) -> dict[int, int]:
    """Return database item id -> MovieLens movie id, for imported items only."""
    out: dict[int, int] = {}
    for pk, external in Item.objects.filter(
        pk__in=item_ids, external_id__startswith=_MOVIELENS_PREFIX
    ).values_list("pk", "external_id"):
        try:
            out[pk] = int(external[len(_MOVIELENS_PREFIX) :])
        except ValueError:
            continue
    return out


def _offline_rule_catalog(catalog: Catalog) -> RuleCatalog:
    """Return the rule view of the offline catalog, stock read from imported items.

    Returns
    -------
    RuleCatalog
        One row per row of ``catalog``; stock -1 (not tracked) where no
        imported item tracks it.
    """
    tracked = dict(
        Item.objects.filter(
            external_id__startswith=_MOVIELENS_PREFIX, stock__isnull=False
        ).values_list("external_id", "stock")
    )
    stock = np.fromiter(
        (
            tracked.get(f"{_MOVIELENS_PREFIX}{movie}", -1)
            for movie in catalog.ids.tolist()
        ),
        dtype=np.int64,
        count=len(catalog.ids),
    )
    return rule_catalog_of(catalog, stock=stock)


def _offline_specs(
    rules: list[tuple[str, RuleSpec]], catalog: RuleCatalog, *, now: float
) -> tuple[list[RuleSpec], list[str]]:
    """Return the specs to compile offline and the names of those matching nothing.

    Chosen items are translated to the data set's ids; a rule left with none
    matches nothing and is not compiled.
    """
    wanted = [i for _, spec in rules for i in spec.item_ids]
    movie_of = _movielens_ids(wanted) if wanted else {}
    specs: list[RuleSpec] = []
    unmatched: list[str] = []
    for name, spec in rules:
        if spec.item_ids:
            movies = tuple(movie_of[i] for i in spec.item_ids if i in movie_of)
            if not movies:
                unmatched.append(name)
                continue
            spec = dataclasses.replace(spec, item_ids=movies)
        if not catalog.matches(spec, now=now).any():
            unmatched.append(name)
        specs.append(spec)
    return specs, unmatched


def evaluation_variants_run(
    ev: EvalData,
    *,
    experiment: str,
    k: int = 10,
    history_events: int = 200,
    validation: bool = False,
    replay: bool = False,
    progress: ProgressFn | None = None,
) -> ExperimentEvaluation:
    """Score every variant of ``experiment`` offline on one split.

    Parameters
    ----------
    ev : EvalData
    experiment : str
        The experiment's name (running or not).
    k : int
        List length.
    history_events : int
        History window (the live ``RECS_HISTORY_EVENTS``).
    validation : bool
        Score the last 20 % of each user's train events instead of the test
        file (see :func:`~recommender.services.evaluation.evaluation_run`).
    replay : bool
        The replay protocol instead of the static one.
    progress : callable, optional

    Returns
    -------
    ExperimentEvaluation

    Raises
    ------
    UnknownExperiment
    ValueError
        The experiment has no variant.
    """
    say = progress or (lambda _: None)
    started = time.perf_counter()
    found = Experiment.objects.filter(name=experiment).first()
    if found is None:
        raise UnknownExperiment(experiment)
    variants = list(found.variants.order_by("id"))
    if not variants:
        raise ValueError(f"experiment {experiment!r} has no variant")
    stored = rules_load()
    names = dict(
        Rule.objects.filter(pk__in=[r.id for r in stored]).values_list("pk", "name")
    )
    snapshot = MerchandisingSnapshot(stamp=(), rules=tuple(stored), experiments=())

    # One fit for every variant: the same split, the same behaviour model.
    train, _, _, engine, fit_secs = evaluation_prepare(
        ev,
        validation=validation,
        engine=None,
        fit_params=None,
        score_params=None,
        progress=say,
    )
    now = float(train.timestamps.max()) if train.timestamps.size else time.time()
    rule_catalog = _offline_rule_catalog(engine.catalog)
    engines = VariantEngines()
    scores: list[VariantScore] = []
    runs: dict[str, EvaluationResult | ReplayResult] = {}
    for variant in variants:
        spec = VariantSpec(
            id=variant.pk,
            name=variant.name,
            share=min(max(variant.share, 0.0), 1.0),
            params=dict(variant.params or {}),
        )
        applied = [
            (names.get(rule.id, f"rule {rule.id}"), rule.spec)
            for rule in snapshot.rules
            if rule.placement in ("", DEFAULT_PLACEMENT)
            and rule.variant_id in (None, variant.pk)
        ]
        specs, unmatched = _offline_specs(applied, rule_catalog, now=now)
        compiled = rules_compile(specs, rule_catalog, now=now) if specs else None
        scorer = _with_rules(engines.engine_for(engine, spec), compiled)
        say(f"variant {variant.name}: {len(applied)} rules, params {spec.params}")
        runner = replay_run if replay else evaluation_run
        result = runner(
            ev,
            k=k,
            history_events=history_events,
            validation=validation,
            engine=scorer,
            progress=say,
        )
        runs[variant.name] = result
        scores.append(
            VariantScore(
                name=variant.name,
                share=spec.share,
                params=spec.params,
                rules=[name for name, _ in applied],
                rules_unmatched=unmatched,
                metrics=dict(result.metrics),
            )
        )
    names_scored = list(REPLAY_METRICS if replay else METRIC_NAMES)
    base = scores[0].metrics
    scores = [scores[0]] + [
        dataclasses.replace(
            score,
            vs_baseline={m: score.metrics[m] - base[m] for m in names_scored},
        )
        for score in scores[1:]
    ]
    online = None
    if found.start is None or found.start <= timezone.now():
        since, until = experiment_period(found, now=timezone.now())
        online = experiment_report(
            name=found.name, since=since, until=until, window=_ONLINE_WINDOW, k=k
        )
    return ExperimentEvaluation(
        experiment=found.name,
        baseline=scores[0].name,
        protocol="replay" if replay else "static",
        split="validation" if validation else "test",
        k=k,
        history_events=history_events,
        metric_names=names_scored,
        variants=scores,
        seconds={"fit": fit_secs, "total": time.perf_counter() - started},
        online=online,
        runs=runs,
    )
