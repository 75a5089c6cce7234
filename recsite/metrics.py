"""Prometheus metrics of this server process (prometheus-client).

Each daphne process exposes its own figures at ``/metrics``; Prometheus sums
them across processes. Names end in their unit, as the exposition format asks.
"""

from prometheus_client import REGISTRY, Counter, Gauge, Histogram

from recsite.experiment_figures import ExperimentCollector

_LATENCY_BUCKETS_SECS = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
)

WS_CONNECTIONS = Gauge(
    "recsite_ws_connections",
    "Open WebSocket connections in this process.",
    ["endpoint"],
)
WS_FRAMES_REJECTED = Counter(
    "recsite_ws_frames_rejected_total",
    "Client frames answered with an error.",
    ["code"],
)
EVENTS = Counter(
    "recsite_events_total", "Browsing events stored.", ["action", "source"]
)
PUSHES = Counter("recsite_pushes_total", "Recommendation lists pushed.", ["path"])
EVENT_TO_PUSH_SECS = Histogram(
    "recsite_event_to_push_seconds",
    "Time from receiving an event to sending its new recommendations.",
    buckets=_LATENCY_BUCKETS_SECS,
)
RECOMPUTE_SECS = Histogram(
    "recsite_recompute_seconds",
    "Time to score one user and store the snapshot.",
    buckets=_LATENCY_BUCKETS_SECS,
)
CHANGES = Counter(
    "recsite_changes_total", "Changes written to the change log.", ["model"]
)
BROADCAST_FAILURES = Counter(
    "recsite_broadcast_failures_total",
    "Channel-layer sends that failed; clients recover through heartbeat and resume.",
    ["kind"],
)
CHANGELOG_SEQ = Gauge("recsite_changelog_seq", "Latest change sequence number seen.")
CHANGELOG_LAG = Gauge(
    "recsite_changelog_lag", "Changes committed but not yet delivered to this process."
)
# Per-variant figures of the running experiments, read from the database at
# scrape time (recsite/experiment_figures.py).
REGISTRY.register(ExperimentCollector())
