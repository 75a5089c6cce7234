"""The project's live figures and Prometheus metrics for recommender's signals.

Imported by ``RecsiteConfig.ready()``; the recommender app sends, this
module counts (``recommender`` never imports the project package).
"""

from typing import Any

from django.dispatch import receiver

from recommender import signals
from recsite import live_stats, metrics


@receiver(signals.events_stored, dispatch_uid="recsite-events-stored")
def events_stored(sender: Any, actions: list[str], source: str, **kwargs: Any) -> None:
    """Count stored events by action and source."""
    for action in actions:
        metrics.EVENTS.labels(action=action, source=source).inc()


@receiver(signals.lists_scored, dispatch_uid="recsite-lists-scored")
def lists_scored(sender: Any, count: int, computed_ms: float, **kwargs: Any) -> None:
    """Observe each list's scoring time."""
    for _ in range(count):
        metrics.RECOMPUTE_SECS.observe(computed_ms / 1000)


@receiver(signals.list_sent, dispatch_uid="recsite-list-sent")
def list_sent(sender: Any, path: str, **kwargs: Any) -> None:
    """Count lists sent down sockets by path (direct or through the layer)."""
    metrics.PUSHES.labels(path=path).inc()


@receiver(signals.event_pushed, dispatch_uid="recsite-event-pushed")
def event_pushed(
    sender: Any, push_secs: float, computed_ms: float, **kwargs: Any
) -> None:
    """Record an event's time to its pushed list, for /metrics and the ops view."""
    metrics.EVENT_TO_PUSH_SECS.observe(push_secs)
    live_stats.stats.event_pushed(push_secs * 1000, computed_ms)


@receiver(signals.push_failed, dispatch_uid="recsite-push-failed")
def push_failed(sender: Any, user_ids: list[int], **kwargs: Any) -> None:
    """Count a failed push of recommendation lists."""
    metrics.BROADCAST_FAILURES.labels(kind="recommendations").inc()
    live_stats.stats.broadcast_failures += 1
