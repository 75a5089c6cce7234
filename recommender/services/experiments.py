"""Experiments: which variant a user is in, and how each variant does online.

Assignment is a hash of the user's *assignment key* (see
:mod:`recommender.engine.experiments`). The key is ``"user-<id>"`` unless an
:class:`~recommender.models.AssignmentKey` row says otherwise; one is written
when an anonymous visitor logs in to an account that was never shown a list,
so the account keeps the visitor's key and with it every variant the visitor
was in. An account already shown lists keeps its own key: changing its
variant mid-experiment would mix two arms in one user's figures.

The per-variant report uses the online definitions of
:mod:`recommender.services.online` (an impression, CTR, online precision@k)
plus add-to-cart and purchase rates, and compares every variant with the
first one (the baseline) through a bootstrap confidence interval of the
difference that resamples users, the unit of randomisation. The same report
feeds ``online_report --experiment``, ``/metrics`` and the operator view
(:func:`experiments_report_running`: every running experiment over its run
so far).
"""

from __future__ import annotations

from bisect import bisect_right
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta

import numpy as np
from django.db.models import Q
from scipy import stats

from recommender.engine.experiments import (
    ExperimentSpec,
    VariantSpec,
    experiments_assign,
)
from recommender.models import (
    AssignmentKey,
    BrowsingEvent,
    Experiment,
    Impression,
)

#: Bootstrap resamples behind each interval; fixed seed: a report is repeatable.
_RESAMPLES = 2000
_SEED = 20240601


def assignment_keys(*, user_ids: Iterable[int]) -> dict[int, str]:
    """Return each user's assignment key (one query for all of them)."""
    ids = list(user_ids)
    stored = dict(
        AssignmentKey.objects.filter(user_id__in=ids).values_list("user_id", "key")
    )
    return {user_id: stored.get(user_id, f"user-{user_id}") for user_id in ids}


def variants_assign(
    *,
    user_ids: Iterable[int],
    experiments: Iterable[ExperimentSpec],
    now: float,
) -> dict[int, VariantSpec | None]:
    """Return the variant each user is in at ``now`` (None: default engine)."""
    experiments = list(experiments)
    ids = list(user_ids)
    if not experiments:
        return dict.fromkeys(ids)
    keys = assignment_keys(user_ids=ids)
    out: dict[int, VariantSpec | None] = {}
    for user_id in ids:
        found = experiments_assign(experiments, key=keys[user_id], now=now)
        out[user_id] = found[1] if found else None
    return out


def assignment_key_merge(*, visitor_id: int, user_id: int) -> bool:
    """Let an account inherit a visitor's assignment key on login.

    Call inside the visitor-merge transaction, before the visitor's
    impressions move to the account. Returns True if the account took the
    visitor's key: only when it has no key of its own and was never shown a
    list.
    """
    if visitor_id == user_id:
        return False
    if AssignmentKey.objects.filter(user_id=user_id).exists():
        return False
    if Impression.objects.filter(user_id=user_id).exists():
        return False
    key = assignment_keys(user_ids=[visitor_id])[visitor_id]
    AssignmentKey.objects.create(user_id=user_id, key=key)
    return True


# --------------------------------------------------------------------------
# Online report per variant
# --------------------------------------------------------------------------
@dataclass(frozen=True)
class Difference:
    """A variant's metric minus the baseline's, with its confidence interval.

    ``low``/``high`` are None when either side has fewer than two users.
    """

    difference: float
    low: float | None
    high: float | None


@dataclass(frozen=True)
class VariantReport:
    name: str
    share: float
    users: int
    lists: int
    impressions: int
    clicks: int
    carts: int
    purchases: int
    ctr: float
    precision_at_k: float
    cart_rate: float
    purchase_rate: float
    vs_baseline: dict[str, Difference] = field(default_factory=dict)


@dataclass(frozen=True)
class ExperimentReport:
    experiment: str
    since: str
    until: str
    window_secs: float
    k: int
    confidence: float
    baseline: str
    variants: list[VariantReport]

    def as_dict(self) -> dict:
        return asdict(self)


#: Report metric -> (numerator column, denominator column) of the per-user table.
_RATIOS = {
    "ctr": ("clicks", "impressions"),
    "precision_at_k": ("precision_sum", "lists"),
    "cart_rate": ("carts", "impressions"),
    "purchase_rate": ("purchases", "impressions"),
}
_COLUMNS = ("impressions", "lists", "clicks", "carts", "purchases", "precision_sum")


class UnknownExperiment(LookupError):
    """No experiment has the requested name."""


def _ratio_difference(
    treated: np.ndarray, baseline: np.ndarray, confidence: float
) -> Difference:
    """Return ratio-of-sums(treated) - ratio-of-sums(baseline) with a CI.

    Parameters
    ----------
    treated, baseline : ndarray of shape (2, n_users), float64
        Per user, the numerator (row 0) and denominator (row 1).
    """

    def ratio(sample: np.ndarray, axis: int = -1) -> np.ndarray:
        den = sample[1].sum(axis=axis)
        return np.divide(
            sample[0].sum(axis=axis), den, out=np.zeros_like(den), where=den > 0
        )

    def statistic(x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
        return ratio(x, axis) - ratio(y, axis)

    point = float(statistic(treated, baseline))
    if treated.shape[1] < 2 or baseline.shape[1] < 2:
        return Difference(point, None, None)
    # Users, not impressions, are resampled: one user's impressions are not
    # independent of each other, and users are what the hash randomised.
    result = stats.bootstrap(
        (treated, baseline),
        statistic,
        vectorized=True,
        axis=-1,
        n_resamples=_RESAMPLES,
        confidence_level=confidence,
        method="percentile",
        rng=np.random.default_rng(_SEED),
    )
    low, high = result.confidence_interval
    return Difference(point, float(low), float(high))


def _per_user_outcomes(
    *, shown: list[tuple], since: datetime, until: datetime, window: timedelta, k: int
) -> dict[int, dict[int, np.ndarray]]:
    """Return per variant, per user: the sums of :data:`_COLUMNS`.

    ``shown`` rows are (user, item, version, position, shown_at, placement,
    variant).
    """
    users = {row[0] for row in shown}
    # (user, item) -> times and actions of that user's events on that item
    acted: dict[tuple[int, int], list[tuple[datetime, str]]] = defaultdict(list)
    for user_id, item_id, action, created in (
        BrowsingEvent.objects.filter(
            user_id__in=users, created__gt=since, created__lt=until + window
        )
        .order_by("created", "id")
        .values_list("user_id", "item_id", "action", "created")
    ):
        acted[(user_id, item_id)].append((created, action))

    def actions_after(user_id: int, item_id: int, at: datetime) -> set[str]:
        events = acted.get((user_id, item_id))
        if not events:
            return set()
        start = bisect_right(events, (at, "\uffff"))
        return {action for created, action in events[start:] if created <= at + window}

    # One list: one placement's list at one version, shown at one moment.
    lists: dict[tuple, list[tuple]] = defaultdict(list)
    for row in shown:
        user_id, _, version, _, shown_at, placement, variant_id = row
        lists[(variant_id, user_id, placement, version, shown_at)].append(row)

    table: dict[int, dict[int, np.ndarray]] = defaultdict(dict)
    for (variant_id, user_id, *_), rows in lists.items():
        sums = table[variant_id].setdefault(user_id, np.zeros(len(_COLUMNS)))
        # As in the overall online report: the window starts when the list
        # was first shown.
        list_start = min(row[4] for row in rows)
        hits = 0
        for _, item_id, _, position, _, _, _ in rows:
            done = actions_after(user_id, item_id, list_start)
            sums[0] += 1
            sums[2] += "click" in done
            sums[3] += "cart" in done
            sums[4] += "purchase" in done
            hits += bool(done) and position <= k
        sums[1] += 1
        sums[5] += hits / k
    return table


def experiment_report(
    *,
    name: str,
    since: datetime,
    until: datetime,
    window: timedelta,
    k: int,
    confidence: float = 0.95,
) -> ExperimentReport:
    """Return each variant's online figures and its difference to the baseline.

    Parameters
    ----------
    name : str
        The experiment's name.
    since, until : datetime
        Lists shown in ``[since, until)`` count.
    window : timedelta
        How long after a list was shown an action counts for it.
    k : int
        Cut-off of online precision@k.
    confidence : float
        Level of the intervals on the differences.

    Raises
    ------
    UnknownExperiment
    """
    experiment = Experiment.objects.filter(name=name).first()
    if experiment is None:
        raise UnknownExperiment(name)
    variants = list(experiment.variants.order_by("id"))
    shown = list(
        Impression.objects.filter(
            variant__experiment=experiment, shown_at__gte=since, shown_at__lt=until
        ).values_list(
            "user_id",
            "item_id",
            "version",
            "position",
            "shown_at",
            "placement",
            "variant_id",
        )
    )
    table = _per_user_outcomes(
        shown=shown, since=since, until=until, window=window, k=k
    )

    def matrix(variant_id: int) -> np.ndarray:
        rows = list(table.get(variant_id, {}).values())
        return np.array(rows, dtype=np.float64).reshape(len(rows), len(_COLUMNS)).T

    baseline = matrix(variants[0].pk) if variants else np.zeros((len(_COLUMNS), 0))
    out: list[VariantReport] = []
    for index, variant in enumerate(variants):
        data = matrix(variant.pk)
        sums = dict(zip(_COLUMNS, data.sum(axis=1).tolist(), strict=True))
        rates = {
            metric: sums[num] / sums[den] if sums[den] else 0.0
            for metric, (num, den) in _RATIOS.items()
        }
        differences = {}
        if index:
            for metric, (num, den) in _RATIOS.items():
                pick = [_COLUMNS.index(num), _COLUMNS.index(den)]
                differences[metric] = _ratio_difference(
                    data[pick], baseline[pick], confidence
                )
        out.append(
            VariantReport(
                name=variant.name,
                share=variant.share,
                users=data.shape[1],
                lists=int(sums["lists"]),
                impressions=int(sums["impressions"]),
                clicks=int(sums["clicks"]),
                carts=int(sums["carts"]),
                purchases=int(sums["purchases"]),
                ctr=rates["ctr"],
                precision_at_k=rates["precision_at_k"],
                cart_rate=rates["cart_rate"],
                purchase_rate=rates["purchase_rate"],
                vs_baseline=differences,
            )
        )
    return ExperimentReport(
        experiment=experiment.name,
        since=since.isoformat(),
        until=until.isoformat(),
        window_secs=window.total_seconds(),
        k=k,
        confidence=confidence,
        baseline=variants[0].name if variants else "",
        variants=out,
    )


# --------------------------------------------------------------------------
# Running experiments, for the live figures
# --------------------------------------------------------------------------
def experiments_running(*, now: datetime) -> list[Experiment]:
    """Return the active experiments whose period holds ``now``, oldest first.

    The order is the one users are enrolled in (oldest start first).
    """
    return list(
        Experiment.objects.filter(active=True)
        .filter(Q(start__isnull=True) | Q(start__lte=now))
        .filter(Q(end__isnull=True) | Q(end__gt=now))
        .order_by("start", "created", "id")
    )


def experiment_period(
    experiment: Experiment, *, now: datetime
) -> tuple[datetime, datetime]:
    """Return the period an experiment's figures cover: its run up to ``now``.

    From its start (its creation when it has none) to its end, or ``now``
    while it runs.
    """
    since = experiment.start or experiment.created
    until = min(experiment.end, now) if experiment.end else now
    return since, max(since, until)


def experiments_report_running(
    *, now: datetime, window: timedelta, k: int, confidence: float = 0.95
) -> list[ExperimentReport]:
    """Return :func:`experiment_report` of every running experiment with variants.

    Each covers the experiment's run so far (:func:`experiment_period`).
    """
    out: list[ExperimentReport] = []
    for experiment in experiments_running(now=now):
        since, until = experiment_period(experiment, now=now)
        report = experiment_report(
            name=experiment.name,
            since=since,
            until=until,
            window=window,
            k=k,
            confidence=confidence,
        )
        if report.variants:
            out.append(report)
    return out
