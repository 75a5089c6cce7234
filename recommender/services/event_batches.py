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
from recommender.services.ingest import Ingested, events_ingest_unsent
from recommender.services.push import recommendations_push_async
from sync.wire import encode

BatchFn = Callable[..., Ingested]


@dataclass(frozen=True)
class Scored:
    """A stored event and the user's new list, encoded once for every socket."""

    stored: StoredEvent
    message: messages.RecommendationsMessage | None
    text: str | None


def _ingest_socket_events(*, events: list[NewEvent]) -> Ingested:
    return events_ingest_unsent(events=events, source="ws")


class EventBatcher:
    """Collects events from every socket of one event loop into batches.

    ``process`` ingests one batch (keyword ``events``) and returns its
    outcomes and unsent pushes; by default the socket source of
    :func:`~recommender.services.ingest.events_ingest_unsent`. The socket
    that sent an event sends its own list directly; once every socket of the
    batch has its outcome, the pushes go to the users' other sockets (in
    this and other processes) in one round trip, off the path of the acks.
    """

    def __init__(self, process: BatchFn = _ingest_socket_events) -> None:
        # Any worker thread will do: each holds its own database connection.
        self._process = DatabaseSyncToAsync(process, thread_sensitive=False)
        self._pending: list[tuple[NewEvent, asyncio.Future]] = []
        self._task: asyncio.Task | None = None
        self._sending: set[asyncio.Task] = set()

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
                ingested = await self._process(events=[e for e, _ in batch])
            except Exception as exc:
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            # Each user's list is encoded once, for the push and the socket.
            texts = {push.user_id: push.text for push in ingested.pushes}
            for (event, future), outcome in zip(batch, ingested.outcomes, strict=True):
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
            if ingested.pushes:
                # Never raises (a failed push is reported); kept referenced
                # until done so it is not collected mid-send.
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
