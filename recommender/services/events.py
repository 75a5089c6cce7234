"""Storing browsing events durably, one at a time or as one group commit.

Each call reports the events it stored through :data:`recommender.signals.events_stored`.
"""

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from django.db import IntegrityError, connection
from django.utils import timezone

from recommender import signals
from recommender.db import rows_insert, savepoint_if_in_transaction
from recommender.engine import ACTION_WEIGHTS
from recommender.models import BrowsingEvent, Item


class UnknownItem(Exception):
    """The event names an item that does not exist or is not active."""


@dataclass(frozen=True)
class NewEvent:
    """One browsing event as a client sent it.

    ``origin`` names the socket channel that sent it, if any: that socket
    sends the new list itself, so the push to the user's sockets skips it.
    """

    user_id: int
    item_id: int
    action: str
    client_id: str = ""
    origin: str | None = None


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
    stored = _event_insert(
        user_id=user_id,
        item_id=item_id,
        action=action,
        client_id=client_id,
        created=created,
        check_item=check_item,
    )
    if stored.created:
        signals.events_stored.send(sender=StoredEvent, actions=[action], source=source)
    return stored


def _event_insert(
    *,
    user_id: int,
    item_id: int,
    action: str,
    client_id: str,
    created: datetime | None,
    check_item: bool,
) -> StoredEvent:
    """Store one event (see :func:`event_record`) without reporting it."""
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
    return StoredEvent(event_id=event.pk, created=True)


def events_record(
    *, events: list[NewEvent], active_ids: Collection[int], source: str = "ws"
) -> list[StoredEvent | UnknownItem]:
    """Store many users' events with one INSERT and one durable commit.

    This is the group commit of the socket path: every event that arrived
    while the previous batch was being written shares one WAL flush, so the
    disk's fsync time is paid once per batch rather than once per event.
    Resends (a client id already stored for that user) are answered with the
    stored event, ``created=False``. Items missing from ``active_ids`` (the
    live catalog in memory) are checked in the database first.

    Must run in autocommit mode: the commit of the INSERT is what makes the
    events durable before the caller acks them.

    Returns
    -------
    list of StoredEvent or UnknownItem
        One outcome per event, in the order given.
    """
    if not events:
        return []
    outcomes = _events_insert(events, active_ids)
    actions = [
        event.action
        for event, outcome in zip(events, outcomes, strict=True)
        if isinstance(outcome, StoredEvent) and outcome.created
    ]
    if actions:
        signals.events_stored.send(sender=StoredEvent, actions=actions, source=source)
    return outcomes


def _events_insert(
    events: list[NewEvent], active_ids: Collection[int]
) -> list[StoredEvent | UnknownItem]:
    """Store the events (see :func:`events_record`) without reporting them."""
    outcomes: list[StoredEvent | UnknownItem | None] = [None] * len(events)
    unknown = {e.item_id for e in events if e.item_id not in active_ids}
    if unknown:
        unknown -= set(
            Item.objects.filter(pk__in=unknown, active=True).values_list(
                "pk", flat=True
            )
        )
    todo: list[int] = []
    for index, event in enumerate(events):
        if event.item_id in unknown:
            outcomes[index] = UnknownItem(
                f"item {event.item_id} does not exist or is not active"
            )
        else:
            todo.append(index)
    try:
        rows = _insert_many([events[i] for i in todo])
    except IntegrityError:
        # An item or user deleted since the check: store the rest one by one,
        # so one bad event cannot fail its neighbours.
        for index in todo:
            event = events[index]
            try:
                outcomes[index] = _event_insert(
                    user_id=event.user_id,
                    item_id=event.item_id,
                    action=event.action,
                    client_id=event.client_id,
                    created=None,
                    check_item=False,
                )
            except UnknownItem as exc:
                outcomes[index] = exc
        return outcomes  # type: ignore[return-value]
    inserted: dict[tuple[int, str], list[int]] = {}
    for event_id, user_id, client_id in rows:
        inserted.setdefault((user_id, client_id), []).append(event_id)
    resent: list[int] = []
    for index in todo:
        event = events[index]
        ids = inserted.get((event.user_id, event.client_id))
        if ids:
            outcomes[index] = StoredEvent(event_id=ids.pop(0), created=True)
        else:
            resent.append(index)
    if resent:
        existing = _ids_by_client_id([events[i] for i in resent])
        for index in resent:
            event = events[index]
            event_id = existing.get((event.user_id, event.client_id))
            outcomes[index] = (
                StoredEvent(event_id=event_id, created=False)
                if event_id is not None
                else UnknownItem(f"item {event.item_id} does not exist")
            )
    return outcomes  # type: ignore[return-value]


def _insert_many(events: list[NewEvent]) -> list[tuple[int, int, str]]:
    """INSERT the events in one statement; return (id, user_id, client_id) rows.

    ``ON CONFLICT DO NOTHING`` skips resends (including two copies of one
    client id in the same batch), which therefore return no row.
    """
    if not events:
        return []
    meta = BrowsingEvent._meta
    created = meta.get_field("created").get_db_prep_save(timezone.now(), connection)
    return rows_insert(
        table=meta.db_table,
        columns=_EVENT_COLUMNS,
        rows=[
            [
                e.user_id,
                e.item_id,
                e.action,
                ACTION_WEIGHTS[e.action],
                e.client_id,
                created,
            ]
            for e in events
        ],
        ignore_conflicts=True,
        returning="id, user_id, client_id",
    )


_EVENT_COLUMNS = [
    ("user_id", "bigint"),
    ("item_id", "bigint"),
    ("action", "text"),
    ("weight", "float8"),
    ("client_id", "text"),
    ("created", "timestamptz"),
]


def _ids_by_client_id(events: list[NewEvent]) -> dict[tuple[int, str], int]:
    """Return the stored ids of resent events, by (user id, client id)."""
    wanted = {(e.user_id, e.client_id) for e in events if e.client_id}
    if not wanted:
        return {}
    rows = BrowsingEvent.objects.filter(
        user_id__in={user for user, _ in wanted},
        client_id__in={client for _, client in wanted},
    ).values_list("user_id", "client_id", "id")
    return {
        (user_id, client_id): event_id
        for user_id, client_id, event_id in rows
        if (user_id, client_id) in wanted
    }
