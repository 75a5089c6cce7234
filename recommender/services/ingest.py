"""The one way a browsing event enters: store durably, score, push on commit.

The socket batcher (:mod:`recommender.services.event_batches`) and
``POST /api/events/`` both call :func:`events_ingest`; nothing else stores,
rescores and pushes for an event.
"""

from dataclasses import dataclass
from functools import partial
from typing import Literal

from django.contrib.auth import get_user_model
from django.db import transaction

from recommender import messages
from recommender.services.events import (
    NewEvent,
    StoredEvent,
    UnknownItem,
    events_record,
)
from recommender.services.live import live
from recommender.services.push import Push, push_of, pushes_send
from recommender.services.recommendations import (
    recommendations_compute_many,
    recommendations_current,
)

Source = Literal["ws", "api"]
EventOutcome = tuple[StoredEvent, messages.RecommendationsMessage | None] | UnknownItem


@dataclass(frozen=True)
class _SourcePolicy:
    """How events from one source are answered."""

    # The new list goes straight to the socket that sent the event: record
    # it as impressions for the online metrics.
    shown: bool
    # Rescore a user whose events in the batch are all resends. The socket
    # protocol answers every acked event with a newer list (a client resends
    # when it lost the ack, and waits for the list that follows it); a server
    # resending over HTTP wants its duplicate to change nothing.
    rescore_resends: bool


_POLICIES: dict[str, _SourcePolicy] = {
    "ws": _SourcePolicy(shown=True, rescore_resends=True),
    "api": _SourcePolicy(shown=False, rescore_resends=False),
}


@dataclass(frozen=True)
class Ingested:
    """A batch's outcomes and the pushes of its new lists, not sent yet."""

    outcomes: list[EventOutcome]
    pushes: list[Push]


def events_ingest(*, events: list[NewEvent], source: Source) -> list[EventOutcome]:
    """Store events durably, rescore their users, push the new lists on commit.

    One durable commit covers the whole batch (group commit), and each user
    is scored once however many of their events it holds, after all of them
    are stored. Items are checked against the live catalog in memory; an id
    the engine does not know yet (created a moment ago) is checked in the
    database. Each new list goes to every socket of its user in every
    process, except the socket that sent the event (``NewEvent.origin``),
    once the surrounding transaction (if any) commits.

    Must run in autocommit mode or inside the caller's transaction; the
    events are durable before this returns in autocommit mode.

    Parameters
    ----------
    events : list of NewEvent
        In arrival order; a user's later event is stored and scored after
        their earlier one.
    source : {"ws", "api"}
        Where they came from: a metrics label, and whether lists count as
        shown and resends are rescored.

    Returns
    -------
    list of (StoredEvent, message or None) or UnknownItem
        One outcome per event, in order. The message is the user's list after
        the event: a new one, or for an HTTP resend the current one. None when
        it could not be stored (the user was deleted meanwhile).
    """
    ingested = events_ingest_unsent(events=events, source=source)
    transaction.on_commit(partial(_pushes_send, ingested.pushes))
    return ingested.outcomes


def events_ingest_unsent(*, events: list[NewEvent], source: Source) -> Ingested:
    """Do what :func:`events_ingest` does, but return the pushes unsent.

    Each push's text is the encoding the sending socket reuses.
    """
    return events_score(
        events=events,
        recorded=events_store(events=events, source=source),
        source=source,
    )


def events_store(
    *, events: list[NewEvent], source: Source
) -> list[StoredEvent | UnknownItem]:
    """Store events durably (one group commit): the first half of an ingest.

    Items are checked against the live catalog in memory; an id the engine
    does not know yet (created a moment ago) is checked in the database. In
    autocommit mode the events are durable when this returns, so the socket
    batcher acks them before it scores (:func:`events_score`).
    """
    state = live.engine.current()
    return events_record(events=events, active_ids=state.active_ids, source=source)


def events_score(
    *,
    events: list[NewEvent],
    recorded: list[StoredEvent | UnknownItem],
    source: Source,
) -> Ingested:
    """Rescore the users of stored events and store their lists: the second half.

    ``recorded`` is what :func:`events_store` returned for ``events``. Each
    user is scored once however many of their events the batch holds.
    Returns the outcomes and the pushes of the new lists, not sent.
    """
    policy = _POLICIES[source]
    rescored: dict[int, None] = {}
    unchanged: dict[int, None] = {}
    for event, outcome in zip(events, recorded, strict=True):
        if isinstance(outcome, StoredEvent):
            if outcome.created or policy.rescore_resends:
                rescored[event.user_id] = None
            else:
                unchanged[event.user_id] = None
    lists = recommendations_compute_many(user_ids=list(rescored), shown=policy.shown)
    origins: dict[int, str | None] = {}
    for event in events:
        origins.setdefault(event.user_id, event.origin)
    pushes = [
        push_of(user_id=user_id, message=message, origin=origins[user_id])
        for user_id, message in lists.items()
    ]
    for user_id in unchanged.keys() - rescored.keys():
        lists[user_id] = recommendations_current(user_id=user_id)
    outcomes: list[EventOutcome] = [
        outcome
        if isinstance(outcome, UnknownItem)
        else (outcome, lists.get(event.user_id))
        for event, outcome in zip(events, recorded, strict=True)
    ]
    return Ingested(outcomes, pushes)


def _pushes_send(pushes: list[Push]) -> None:
    pushes_send(pushes=pushes)


def ingest_user_id(*, user: int | str) -> int | None:
    """Return the id of the active account a calling service names, or None.

    ``user`` is the account's username (a string: the name the calling
    service knows its customer by) or its database id (an integer, as older
    clients send). Visitors (inactive rows) are not accepted.
    """
    accounts = get_user_model().objects.filter(is_active=True)
    if isinstance(user, str):
        accounts = accounts.filter(username=user)
    else:
        accounts = accounts.filter(pk=user)
    return accounts.values_list("pk", flat=True).first()
