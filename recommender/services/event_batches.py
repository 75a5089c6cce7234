"""Group commit for socket events: one batch in flight per process.

Every socket's event joins the process's pending batch. While one batch is
being ingested in worker threads, new events queue up; when it finishes,
everything that queued goes next as one batch. Under light load a batch
holds a single event and starts at once (no added wait); under heavy load
the per-batch costs (the durable commit's fsync, the thread hops, the
history query, the snapshot INSERT, the push round trip) are shared by every
event in it.

A batch is ingested in two steps: its events are stored
(:func:`~recommender.services.ingest.events_store`, one durable commit) and
every socket is told at once, so acks never wait for scoring; then its users
are scored (:func:`~recommender.services.ingest.events_score`) and each
socket gets its list, and the pushes to the users' other sockets leave.

One batch at a time also keeps each user's events in order: a user's later
event is always stored and scored after their earlier one.
"""

import asyncio
import weakref
from collections.abc import Callable
from dataclasses import dataclass

from channels.db import DatabaseSyncToAsync
from django.conf import settings

from recommender import messages
from recommender.services.events import NewEvent, StoredEvent, UnknownItem
from recommender.services.ingest import Ingested, events_score, events_store
from recommender.services.push import recommendations_push_async
from sync.wire import encode

StoreFn = Callable[..., list[StoredEvent | UnknownItem]]
ScoreFn = Callable[..., Ingested]


@dataclass(frozen=True)
class Scored:
    """A stored event and the user's new list, encoded once for every socket."""

    stored: StoredEvent
    message: messages.RecommendationsMessage | None
    text: str | None


@dataclass(frozen=True)
class Accepted:
    """A durably stored event; ``listed`` resolves to its :class:`Scored` list.

    ``listed`` raises what scoring raised (for example, the database went
    away after the commit): the event is stored, and the socket shows the
    list it gets next.
    """

    stored: StoredEvent
    listed: asyncio.Future[Scored]


def _store_socket_events(*, events: list[NewEvent]) -> list[StoredEvent | UnknownItem]:
    return events_store(events=events, source="ws")


def _score_socket_events(
    *, events: list[NewEvent], recorded: list[StoredEvent | UnknownItem]
) -> Ingested:
    return events_score(events=events, recorded=recorded, source="ws")


def _retrieved(future: asyncio.Future) -> None:
    # A socket that closed before its list was scored never awaits it.
    if not future.cancelled():
        future.exception()


class EventBatcher:
    """Collects events from every socket of one event loop into batches.

    ``store`` stores one batch (keyword ``events``) and returns an outcome
    per event; ``score`` (keywords ``events`` and ``recorded``) scores the
    users of the stored ones and returns their lists and unsent pushes. By
    default the socket source of
    :func:`~recommender.services.ingest.events_store` and
    :func:`~recommender.services.ingest.events_score`. The socket that sent
    an event sends its own ack and list directly; once every socket of the
    batch has its list, the pushes go to the users' other sockets (in this
    and other processes) in one round trip.
    """

    def __init__(
        self,
        store: StoreFn = _store_socket_events,
        score: ScoreFn = _score_socket_events,
    ) -> None:
        # Any worker thread will do: each holds its own database connection.
        self._store = DatabaseSyncToAsync(store, thread_sensitive=False)
        self._score = DatabaseSyncToAsync(score, thread_sensitive=False)
        self._pending: list[tuple[NewEvent, asyncio.Future]] = []
        self._task: asyncio.Task | None = None
        self._sending: set[asyncio.Task] = set()

    async def submit(self, event: NewEvent) -> Accepted | UnknownItem:
        """Store ``event`` with the next batch; return once it is durable.

        Raises whatever storing the batch raised (for example, the database
        is down); the event may then not be stored, and the client resends it.
        """
        future = asyncio.get_running_loop().create_future()
        self._pending.append((event, future))
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        while self._pending:
            size = settings.RECS_EVENT_BATCH_MAX
            batch, self._pending = self._pending[:size], self._pending[size:]
            events = [event for event, _ in batch]
            try:
                recorded = await self._store(events=events)
            except Exception as exc:
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            listed: list[asyncio.Future[Scored] | None] = []
            for (_, future), outcome in zip(batch, recorded, strict=True):
                if isinstance(outcome, UnknownItem):
                    listed.append(None)
                    if not future.done():
                        future.set_result(outcome)
                    continue
                later: asyncio.Future[Scored] = loop.create_future()
                later.add_done_callback(_retrieved)
                listed.append(later)
                if not future.done():
                    future.set_result(Accepted(outcome, later))
            if all(later is None for later in listed):
                continue
            try:
                ingested = await self._score(events=events, recorded=recorded)
            except Exception as exc:
                for later in listed:
                    # A socket that closed meanwhile cancelled its wait.
                    if later is not None and not later.done():
                        later.set_exception(exc)
                continue
            self._listed(batch, listed, ingested)

    def _listed(
        self,
        batch: list[tuple[NewEvent, asyncio.Future]],
        listed: list[asyncio.Future[Scored] | None],
        ingested: Ingested,
    ) -> None:
        """Give each socket its list, then send the pushes."""
        # Each user's list is encoded once, for the push and the socket.
        texts = {push.user_id: push.text for push in ingested.pushes}
        for (event, _), later, outcome in zip(
            batch, listed, ingested.outcomes, strict=True
        ):
            if later is None or later.done() or isinstance(outcome, UnknownItem):
                continue  # done: its socket closed and stopped waiting
            stored, message = outcome
            text = None
            if message is not None:
                text = texts.get(event.user_id)
                if text is None:
                    text = texts[event.user_id] = encode(message)
            later.set_result(Scored(stored, message, text))
        if ingested.pushes:
            # Never raises (a failed push is reported); kept referenced until
            # done so it is not collected mid-send.
            task = asyncio.create_task(
                recommendations_push_async(pushes=ingested.pushes)
            )
            self._sending.add(task)
            task.add_done_callback(self._sending.discard)


_batchers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, EventBatcher] = (
    weakref.WeakKeyDictionary()
)


def event_batcher() -> EventBatcher:
    """Return the batcher of the running event loop (one per server process)."""
    loop = asyncio.get_running_loop()
    batcher = _batchers.get(loop)
    if batcher is None:
        batcher = _batchers[loop] = EventBatcher()
    return batcher
