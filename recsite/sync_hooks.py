"""The project's live figures and Prometheus metrics for sync's signals.

Imported by ``RecsiteConfig.ready()``; the sync app sends, this module counts
(``sync`` never imports the project package). The metric names are those of
``recsite.metrics``.
"""

from typing import Any

from django.dispatch import receiver

from recsite import live_stats, metrics
from sync import signals


@receiver(signals.socket_opened, dispatch_uid="recsite-socket-opened")
def socket_opened(
    sender: Any, endpoint: str, user_id: int | None, **kwargs: Any
) -> None:
    """Count an accepted socket (and its user) and keep the publisher running."""
    metrics.WS_CONNECTIONS.labels(endpoint=endpoint).inc()
    live_stats.stats.socket_opened(endpoint, user_id)
    live_stats.ensure_publishing()


@receiver(signals.socket_closed, dispatch_uid="recsite-socket-closed")
def socket_closed(
    sender: Any, endpoint: str, user_id: int | None, **kwargs: Any
) -> None:
    """Remove a closed socket from the counts."""
    metrics.WS_CONNECTIONS.labels(endpoint=endpoint).dec()
    live_stats.stats.socket_closed(endpoint, user_id)


@receiver(signals.frame_rejected, dispatch_uid="recsite-frame-rejected")
def frame_rejected(sender: Any, code: str, **kwargs: Any) -> None:
    """Count a client frame answered with an error, by its code."""
    metrics.WS_FRAMES_REJECTED.labels(code=code).inc()


@receiver(signals.changes_recorded, dispatch_uid="recsite-changes-recorded")
def changes_recorded(sender: Any, model: str, count: int, **kwargs: Any) -> None:
    """Count changes written to the change log, by model."""
    metrics.CHANGES.labels(model=model).inc(count)


@receiver(signals.broadcast_failed, dispatch_uid="recsite-broadcast-failed")
def broadcast_failed(sender: Any, kind: str, **kwargs: Any) -> None:
    """Count a failed broadcast of changes."""
    metrics.BROADCAST_FAILURES.labels(kind=kind).inc()
    live_stats.stats.broadcast_failures += 1


@receiver(signals.seq_observed, dispatch_uid="recsite-seq-observed")
def seq_observed(sender: Any, seq: int, lag: int | None, **kwargs: Any) -> None:
    """Show the latest seq (and a socket's lag behind it) to operators."""
    live_stats.stats.seq = max(live_stats.stats.seq, seq)
    metrics.CHANGELOG_SEQ.set(max(seq, live_stats.stats.seq))
    if lag is not None:
        metrics.CHANGELOG_LAG.set(lag)
