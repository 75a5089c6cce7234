"""Group commit for socket events: one batch in flight per process.

Every socket's event joins the process's pending batch. While one batch is
being written and scored in a worker thread, new events queue up; when it
finishes, everything that queued goes next as one batch. Under light load a
batch holds a single event and starts at once (no added wait); under heavy
load the per-batch costs (the durable commit's fsync, the thread hop, the
history query, the snapshot INSERT) are shared by every event in it.

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
from recommender.services.recommendations import (
    EventOutcome,
    Push,
    events_process,
    recommendations_push_async,
)
from recsite.wire import encode

BatchFn = Callable[..., list[EventOutcome]]


@dataclass(frozen=True)
class Scored:
    """A stored event and the user's new list, encoded once for every socket."""

    stored: StoredEvent
    message: messages.RecommendationsMessage | None
    text: str | None


class EventBatcher:
    """Collects events from every socket of one event loop into batches.

    After each batch, the new lists go to the users' other sockets (in this
    and other processes) in one channel-layer round trip; the socket that
    sent an event sends its own list directly.
    """

    def __init__(self, process: BatchFn = events_process) -> None:
        # Any worker thread will do: each holds its own database connection.
        self._process = DatabaseSyncToAsync(process, thread_sensitive=False)
        self._pending: list[tuple[NewEvent, str | None, asyncio.Future]] = []
        self._task: asyncio.Task | None = None

    async def submit(
        self, event: NewEvent, *, origin: str | None = None
    ) -> Scored | UnknownItem:
        """Store and score ``event`` with the next batch; return its outcome.

        ``origin`` is the channel of the socket that sent it (it is left out of
        the layer push). Raises whatever the batch raised (for example, the
        database is down); the event may then not be stored, and the client
        resends it.
        """
        future = asyncio.get_running_loop().create_future()
        self._pending.append((event, origin, future))
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        while self._pending:
            size = settings.RECS_EVENT_BATCH_MAX
            batch, self._pending = self._pending[:size], self._pending[size:]
            try:
                outcomes = await self._process(events=[e for e, _, _ in batch])
            except Exception as exc:
                for _, _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            pushes: dict[int, Push] = {}
            for (event, origin, future), outcome in zip(batch, outcomes, strict=True):
                if not isinstance(outcome, UnknownItem):
                    stored, message = outcome
                    push = pushes.get(event.user_id)
                    if push is None and message is not None:
                        push = Push(
                            event.user_id, encode(message), message["version"], origin
                        )
                        pushes[event.user_id] = push
                    outcome = Scored(stored, message, push.text if push else None)
                if not future.done():
                    future.set_result(outcome)
            await recommendations_push_async(pushes=list(pushes.values()))


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
