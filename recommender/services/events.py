"""Storing browsing events."""

from dataclasses import dataclass
from datetime import datetime

from django.db import IntegrityError, transaction
from django.utils import timezone

from recommender.models import BrowsingEvent, Item
from recommender.services.engine import ACTION_WEIGHTS
from recsite import metrics


class UnknownItem(Exception):
    """The event names an item that does not exist or is not active."""


@dataclass(frozen=True)
class StoredEvent:
    event_id: int
    created: bool  # False when the client id had been seen: a resend


def event_record(
    *,
    user_id: int,
    item_id: int,
    action: str,
    client_id: str = "",
    created: datetime | None = None,
    source: str = "ws",
) -> StoredEvent:
    """Store one browsing event durably; a resend with the same client id is a no-op.

    Raises
    ------
    UnknownItem
        When the item does not exist or is inactive.
    """
    if not Item.objects.filter(pk=item_id, active=True).exists():
        raise UnknownItem(f"item {item_id} does not exist or is not active")
    if client_id:
        existing = (
            BrowsingEvent.objects.filter(user_id=user_id, client_id=client_id)
            .values_list("id", flat=True)
            .first()
        )
        if existing is not None:
            return StoredEvent(event_id=existing, created=False)
    try:
        with transaction.atomic():
            event = BrowsingEvent.objects.create(
                user_id=user_id,
                item_id=item_id,
                action=action,
                weight=ACTION_WEIGHTS[action],
                client_id=client_id,
                created=created or timezone.now(),
            )
    except IntegrityError:
        # Two sockets raced with the same client id; the other one stored it.
        existing = BrowsingEvent.objects.get(user_id=user_id, client_id=client_id)
        return StoredEvent(event_id=existing.pk, created=False)
    metrics.EVENTS.labels(action=action, source=source).inc()
    return StoredEvent(event_id=event.pk, created=True)
