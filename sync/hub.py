"""One channel-layer subscription per process, fanned out to local sockets.

Channels' usual pattern gives every socket its own layer channel: a Redis
SUBSCRIBE per handshake, a queue, a receive task, and one msgpack decode per
recipient for every broadcast. Catalog changes go to *every* socket, so this
process instead receives each change once and hands it to its listeners
in-line. A listener's ``deliver`` is the fast path (send the pre-encoded frame
now, without waiting on anything); when it cannot (a gap to fill from the
change log, a resume in progress) it returns False and ``sync_change`` runs in
a task of its own, ordered by the listener's lock and seq bookkeeping.

The hub also drives the heartbeat of every listener from one timer, reading
the latest seq once per period for the whole process.
"""

import asyncio
import logging
import time
from typing import Any, Protocol

from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings

from sync import messages, selectors

logger = logging.getLogger(__name__)

_seq_latest = database_sync_to_async(selectors.seq_latest)


class Listener(Protocol):
    """What a socket registered with the hub implements."""

    async def deliver(self, event: dict[str, Any]) -> bool:
        """Send ``event`` now if possible (never suspends on I/O); else False."""

    async def sync_change(self, event: dict[str, Any]) -> None:
        """Handle ``event`` the slow way (may query the change log)."""

    async def heartbeat(self, latest_seq: int) -> None:
        """Catch up to ``latest_seq`` if behind, then send a heartbeat."""


class ChangeHub:
    """The process's single subscriber to the change stream."""

    def __init__(self) -> None:
        self.listeners: set[Listener] = set()
        self.loop: asyncio.AbstractEventLoop | None = None
        self.channel: str | None = None
        self.pump_task: asyncio.Task | None = None
        self.heartbeat_task: asyncio.Task | None = None
        self.starting: asyncio.Lock | None = None
        self.latest_seq = 0
        self.seq_read_at = float("-inf")  # time.monotonic() of the last DB read
        self.seq_reading: asyncio.Future | None = None
        # Strong references: the loop keeps only weak ones to running tasks.
        self.tasks: set[asyncio.Task] = set()

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task) -> None:
        self.tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.warning("sync listener task failed", exc_info=task.exception())

    async def join(self, listener: Listener) -> None:
        """Start delivering changes to ``listener`` (subscribing on first use)."""
        await self._ensure_running()
        self.listeners.add(listener)

    def leave(self, listener: Listener) -> None:
        """Stop delivering to ``listener``."""
        self.listeners.discard(listener)

    def note_seq(self, seq: int) -> None:
        """Record a seq known to be committed (hello, replay, broadcast)."""
        if seq > self.latest_seq:
            self.latest_seq = seq

    def seq_forget(self) -> None:
        """Forget the known seq (tests swap databases under a live process)."""
        self.latest_seq = 0
        self.seq_read_at = float("-inf")
        self.seq_reading = None

    async def seq_current(self) -> int:
        """Return the latest committed seq, reading the database at most once a second.

        Every broadcast this process receives raises :attr:`latest_seq`, so
        between reads it is as current as the change stream; the read (shared
        by every handshake that needs it meanwhile) covers a lost broadcast.
        A connection storm of thousands of sockets therefore costs a few seq
        reads instead of one per socket. Call after :meth:`join`, so a change
        committed after the value was taken is certain to be delivered.
        """
        max_age = settings.SYNC_SEQ_CACHE_SECS
        if time.monotonic() - self.seq_read_at <= max_age:
            return self.latest_seq
        if self.seq_reading is None or self.seq_reading.done():
            self.seq_reading = asyncio.ensure_future(self._seq_read())
        await asyncio.shield(self.seq_reading)
        return self.latest_seq

    async def _seq_read(self) -> None:
        started = time.monotonic()
        self.note_seq(await _seq_latest())
        self.seq_read_at = started

    async def _ensure_running(self) -> None:
        loop = asyncio.get_running_loop()
        if self.loop is not loop:
            # A new event loop (tests run one per test): start from scratch.
            self.loop = loop
            self.channel = None
            self.pump_task = self.heartbeat_task = None
            self.starting = asyncio.Lock()
            self.listeners = set()
            self.tasks = set()
            self.seq_forget()
        if self.pump_task is not None and not self.pump_task.done():
            return
        async with self.starting:
            if self.pump_task is not None and not self.pump_task.done():
                return
            layer = get_channel_layer()
            self.channel = await layer.new_channel(prefix="sync-hub.")
            await layer.group_add(messages.CHANGES_GROUP, self.channel)
            self.pump_task = loop.create_task(self._pump(layer, self.channel))
            self.heartbeat_task = loop.create_task(self._heartbeat())

    def _moved_on(self, loop: asyncio.AbstractEventLoop) -> bool:
        """Return True once the hub serves another event loop than ``loop``.

        A production process has one loop. Tests run one per test, and a task
        left on a loop that is still running must not reach the listeners of
        the next one: their locks and queues belong to that other loop.
        """
        return self.loop is not loop

    async def _pump(self, layer: Any, channel: str) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                event = await layer.receive(channel)
            except asyncio.CancelledError:
                raise
            except Exception:
                if self._moved_on(loop):
                    return
                logger.warning("change stream receive failed; retrying", exc_info=True)
                await asyncio.sleep(0.5)
                continue
            if self._moved_on(loop):
                return
            self.note_seq(event["seq"])
            for listener in list(self.listeners):
                try:
                    if not await listener.deliver(event):
                        self._spawn(listener.sync_change(event))
                except Exception:
                    logger.warning(
                        "delivering change %s failed", event["seq"], exc_info=True
                    )

    async def _heartbeat(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(settings.SYNC_HEARTBEAT_SECS)
            if self._moved_on(loop):
                return
            try:
                await self._seq_read()
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.warning("heartbeat could not read the latest seq", exc_info=True)
                continue
            if self._moved_on(loop):
                return
            for listener in list(self.listeners):
                self._spawn(listener.heartbeat(self.latest_seq))


hub = ChangeHub()
