"""Group commit for socket events: one batch in flight per process.

Every socket's event joins the process's pending batch. While one batch is
being ingested (:func:`~recommender.services.ingest.events_ingest`: stored,
scored, pushed) in a worker thread, new events queue up; when it finishes,
everything that queued goes next as one batch. Under light load a batch
holds a single event and starts at once (no added wait); under heavy load
the per-batch costs (the durable commit's fsync, the thread hop, the history
query, the snapshot INSERT, the push round trip) are shared by every event
in it.

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
from recommender.services.ingest import EventOutcome, events_ingest
from sync.wire import encode

BatchFn = Callable[..., list[EventOutcome]]


@dataclass(frozen=True)
class Scored:
    """A stored event and the user's new list, encoded once for every socket."""

    stored: StoredEvent
    message: messages.RecommendationsMessage | None
    text: str | None


def _ingest_socket_events(*, events: list[NewEvent]) -> list[EventOutcome]:
    return events_ingest(events=events, source="ws")


class EventBatcher:
    """Collects events from every socket of one event loop into batches.

    ``process`` ingests one batch (keyword ``events``); by default the socket
    source of :func:`events_ingest`, which also pushes the new lists to the
    users' other sockets (in this and other processes). The socket that sent
    an event sends its own list directly.
    """

    def __init__(self, process: BatchFn = _ingest_socket_events) -> None:
        # Any worker thread will do: each holds its own database connection.
        self._process = DatabaseSyncToAsync(process, thread_sensitive=False)
        self._pending: list[tuple[NewEvent, asyncio.Future]] = []
        self._task: asyncio.Task | None = None

    async def submit(self, event: NewEvent) -> Scored | UnknownItem:
        """Store and score ``event`` with the next batch; return its outcome.

        Raises whatever the batch raised (for example, the database is down);
        the event may then not be stored, and the client resends it.
        """
        future = asyncio.get_running_loop().create_future()
        self._pending.append((event, future))
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        while self._pending:
            size = settings.RECS_EVENT_BATCH_MAX
            batch, self._pending = self._pending[:size], self._pending[size:]
            try:
                outcomes = await self._process(events=[e for e, _ in batch])
            except Exception as exc:
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            texts: dict[int, str] = {}
            for (event, future), outcome in zip(batch, outcomes, strict=True):
                if not isinstance(outcome, UnknownItem):
                    stored, message = outcome
                    text = None
                    if message is not None:
                        text = texts.get(event.user_id)
                        if text is None:
                            text = texts[event.user_id] = encode(message)
                    outcome = Scored(stored, message, text)
                if not future.done():
                    future.set_result(outcome)


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
