"""Per-variant figures of the running experiments: ``/metrics`` and the operator view.

The figures are those of ``online_report --experiment`` — users, lists,
impressions, clicks, carts and purchases per variant, CTR, online
precision@k, cart and purchase rates, and each variant's difference to the
baseline with its bootstrap interval — computed by
:func:`recommender.services.experiments.experiments_report_running` over
each running experiment's run so far. Nothing is counted here.

They come from the database, so every server process reports the same
values: in Prometheus, aggregate them across processes with ``max`` (or pick
one instance), never ``sum``. A report reads every impression of the
experiment (about 1 s per 100,000 impressions on PostgreSQL), so a process
keeps the latest figures for ``KEEP_SECS`` (10 s), or ten times as long as
they took to compute when that is longer: scrapes and pages within that time
get the same ones, and a large experiment costs a process at most a tenth of
one thread.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.utils import timezone
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from recommender.services.experiments import (
    ExperimentReport,
    experiments_report_running,
)

logger = logging.getLogger(__name__)

#: How long after a list was shown an action counts for it (as the operator
#: view's overall online figures).
WINDOW = timedelta(minutes=30)
#: Level of the intervals on the differences.
CONFIDENCE = 0.95

#: Report field -> (metric name suffix, help) of the per-variant gauges.
_VARIANT_GAUGES = {
    "share": ("share", "Traffic share of the variant."),
    "users": ("users", "Users shown at least one list of the variant."),
    "lists": ("lists", "Lists of the variant shown."),
    "impressions": ("impressions", "Items of the variant's lists shown."),
    "clicks": ("clicks", "Impressions clicked within the window."),
    "carts": ("carts", "Impressions added to the cart within the window."),
    "purchases": ("purchases", "Impressions bought within the window."),
    "ctr": ("ctr", "Clicks / impressions."),
    "precision_at_k": (
        "precision_at_k",
        "Mean over lists of the top-k items acted on within the window / k.",
    ),
    "cart_rate": ("cart_rate", "Carts / impressions."),
    "purchase_rate": ("purchase_rate", "Purchases / impressions."),
}
_PREFIX = "recsite_experiment_"
_NOTE = (
    " Over the running experiment's run so far, from the database: every "
    "process reports the same value (aggregate with max, not sum)."
)


#: How long a process keeps the figures at least: about a scrape interval.
KEEP_SECS = 10.0
#: ... and at least this many times as long as they took to compute.
_KEEP_PER_COMPUTE = 10.0


class ExperimentFigures:
    """The running experiments' reports, recomputed at most every TTL.

    One object per process with one :meth:`reset`.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        """Forget the kept reports."""
        with self._lock:
            self._reports: list[ExperimentReport] = []
            self._at = float("-inf")
            self._keep_secs = 0.0

    def current(self) -> list[ExperimentReport]:
        """Return every running experiment's report (reads the database)."""
        with self._lock:
            # One computation at a time: concurrent scrapes wait for it
            # instead of each reading every impression again.
            if time.monotonic() - self._at < self._keep_secs:
                return self._reports
            started = time.monotonic()
            self._reports = experiments_report_running(
                now=timezone.now(),
                window=WINDOW,
                k=settings.RECS_LIST_LENGTH,
                confidence=CONFIDENCE,
            )
            self._at = time.monotonic()
            self._keep_secs = max(KEEP_SECS, (self._at - started) * _KEEP_PER_COMPUTE)
            return self._reports

    def as_dict(self) -> dict[str, Any]:
        """Return the reports as the operator view's JSON."""
        return {
            "window_secs": WINDOW.total_seconds(),
            "confidence": CONFIDENCE,
            "experiments": [report.as_dict() for report in self.current()],
        }


#: The process-wide instance.
figures = ExperimentFigures()


class ExperimentCollector(Collector):
    """Prometheus gauges of :data:`figures`, labelled by experiment and variant."""

    def describe(self) -> list:
        # Nothing up front: registering must not read the database.
        return []

    def collect(self) -> Iterator[GaugeMetricFamily]:
        """Called on every scrape of ``/metrics``."""
        try:
            reports = figures.current()
        except Exception:
            # A database hiccup must not take the process's other metrics down.
            logger.warning("experiment figures failed", exc_info=True)
            return
        labels = ["experiment", "variant"]
        gauges = {
            field: GaugeMetricFamily(_PREFIX + name, text + _NOTE, labels=labels)
            for field, (name, text) in _VARIANT_GAUGES.items()
        }
        diff_labels = ["experiment", "variant", "baseline", "metric"]
        difference = GaugeMetricFamily(
            _PREFIX + "difference",
            "Variant minus baseline of a rate (ctr, precision_at_k, cart_rate, "
            "purchase_rate)." + _NOTE,
            labels=diff_labels,
        )
        low = GaugeMetricFamily(
            _PREFIX + "difference_low",
            f"Lower end of the {CONFIDENCE:.0%} bootstrap interval of the "
            "difference (absent with fewer than two users a side)." + _NOTE,
            labels=diff_labels,
        )
        high = GaugeMetricFamily(
            _PREFIX + "difference_high",
            f"Upper end of the {CONFIDENCE:.0%} bootstrap interval of the "
            "difference (absent with fewer than two users a side)." + _NOTE,
            labels=diff_labels,
        )
        for report in reports:
            for variant in report.variants:
                key = [report.experiment, variant.name]
                for field, gauge in gauges.items():
                    gauge.add_metric(key, float(getattr(variant, field)))
                for metric, diff in variant.vs_baseline.items():
                    at = [*key, report.baseline, metric]
                    difference.add_metric(at, diff.difference)
                    if diff.low is not None and diff.high is not None:
                        low.add_metric(at, diff.low)
                        high.add_metric(at, diff.high)
        yield from gauges.values()
        yield from (difference, low, high)
