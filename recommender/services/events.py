"""Storing browsing events."""

from dataclasses import dataclass
from datetime import datetime

from django.db import IntegrityError
from django.utils import timezone

from recommender.models import BrowsingEvent, Item
from recommender.services.engine import ACTION_WEIGHTS
from recsite import metrics
from recsite.db import savepoint_if_in_transaction


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
    check_item: bool = True,
) -> StoredEvent:
    """Store one browsing event durably; a resend with the same client id is a no-op.

    The INSERT comes first and the unique (user, client id) constraint
    catches resends, so a new event costs one round trip. ``check_item=False``
    skips the active check when the caller already knows the item is active;
    a missing item is still refused by the foreign key.

    Raises
    ------
    UnknownItem
        When the item does not exist or is inactive.
    """
    if check_item and not Item.objects.filter(pk=item_id, active=True).exists():
        raise UnknownItem(f"item {item_id} does not exist or is not active")
    try:
        with savepoint_if_in_transaction():
            event = BrowsingEvent.objects.create(
                user_id=user_id,
                item_id=item_id,
                action=action,
                weight=ACTION_WEIGHTS[action],
                client_id=client_id,
                created=created or timezone.now(),
            )
    except IntegrityError:
        existing = (
            BrowsingEvent.objects.filter(user_id=user_id, client_id=client_id)
            .values_list("id", flat=True)
            .first()
            if client_id
            else None
        )
        if existing is None:
            raise UnknownItem(f"item {item_id} does not exist") from None
        return StoredEvent(event_id=existing, created=False)
    metrics.EVENTS.labels(action=action, source=source).inc()
    return StoredEvent(event_id=event.pk, created=True)
