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
the latest seq once per period for the whole process, and watches the stream
itself: when the channel layer stops answering (a Redis restart), the
broadcasts of that time are lost, so as soon as it answers again every
listener catches up from the change log at once rather than at its next
heartbeat.

Two kinds of subscriber:

- *listeners* (:class:`Listener`, ``join``/``leave``) are ``/ws/sync/``
  sockets: they get every change, catch-ups and heartbeats;
- *watchers* (:class:`Watcher`, ``watch``/``unwatch``) are other parts of the
  project that want to see the stream go by without speaking the sync
  protocol, e.g. a socket that drops deleted rows from what it shows. They get
  every change envelope and, after an outage, one envelope without ``text``
  (``{"seq": S, "text": None}``: "changes up to S happened that you did not
  see; check your state"). :attr:`ChangeHub.latest_seq` is the latest seq
  this process knows of.
"""

import asyncio
import logging
import time
from typing import Any, Protocol

from channels.db import database_sync_to_async
from channels.layers import get_channel_layer

from sync import messages, selectors, signals
from sync.conf import sync_settings
from sync.layer import bounded
from sync.tasks import stop_with_loop

logger = logging.getLogger(__name__)

_seq_latest = database_sync_to_async(selectors.seq_latest)

# While the stream is quiet the hub sends itself a probe this often; a probe
# that cannot be sent, or none coming back for PROBE_LOST_SECS, means the
# stream is down, and the next message through it triggers the catch-up.
PROBE_SECS = 0.5
PROBE_LOST_SECS = 3.0


class Listener(Protocol):
    """What a socket registered with the hub implements."""

    async def deliver(self, event: dict[str, Any]) -> bool:
        """Send ``event`` now if possible (never suspends on I/O); else False."""

    async def sync_change(self, event: dict[str, Any]) -> None:
        """Handle ``event`` the slow way (may query the change log)."""

    async def heartbeat(self, latest_seq: int) -> None:
        """Catch up to ``latest_seq`` if behind, then send a heartbeat."""

    async def catch_up(self, latest_seq: int) -> None:
        """Send what the change log holds up to ``latest_seq`` if behind."""


class Watcher(Protocol):
    """What a non-sync subscriber registered with :meth:`ChangeHub.watch` implements."""

    async def change_seen(self, event: dict[str, Any]) -> None:
        """Take a change envelope ``{"seq", "text"}`` (``text`` None: check state).

        Called inline by the hub for every change, in seq order: return
        quickly and never block on I/O (start a task for slow work).
        """


class ChangeHub:
    """The process's single subscriber to the change stream."""

    def __init__(self) -> None:
        self.listeners: set[Listener] = set()
        self.watchers: set[Watcher] = set()
        self.loop: asyncio.AbstractEventLoop | None = None
        self.channel: str | None = None
        self.pump_task: asyncio.Task | None = None
        self.heartbeat_task: asyncio.Task | None = None
        self.probe_task: asyncio.Task | None = None
        self.received_at = time.monotonic()  # the last message through the stream
        self.stream_down = False
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

    async def watch(self, watcher: Watcher) -> None:
        """Show ``watcher`` every change from now on (subscribing on first use)."""
        await self._ensure_running()
        self.watchers.add(watcher)

    def unwatch(self, watcher: Watcher) -> None:
        """Stop showing changes to ``watcher``."""
        self.watchers.discard(watcher)

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
        max_age = sync_settings.SYNC_SEQ_CACHE_SECS
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
            self.pump_task = self.heartbeat_task = self.probe_task = None
            self.starting = asyncio.Lock()
            self.listeners = set()
            self.watchers = set()
            self.stream_down = False
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
            self.received_at = time.monotonic()
            self.pump_task = loop.create_task(self._pump(layer, self.channel))
            self.heartbeat_task = loop.create_task(self._heartbeat())
            self.probe_task = loop.create_task(self._probe(layer, self.channel))
            for task in (self.pump_task, self.heartbeat_task, self.probe_task):
                stop_with_loop(task)

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
                self.stream_down = True
                logger.warning("change stream receive failed; retrying", exc_info=True)
                await asyncio.sleep(0.5)
                continue
            if self._moved_on(loop):
                return
            self.received_at = time.monotonic()
            if self.stream_down:
                # Broadcasts sent while it was down are lost: fetch them now.
                self.stream_down = False
                logger.info("change stream answers again; catching up")
                self._spawn(self._recover())
            if event.get("type") == messages.LAYER_PROBE:
                continue
            self.note_seq(event["seq"])
            for listener in list(self.listeners):
                try:
                    if not await listener.deliver(event):
                        self._spawn(listener.sync_change(event))
                except Exception:
                    logger.warning(
                        "delivering change %s failed", event["seq"], exc_info=True
                    )
            await self._show_watchers(event)

    async def _show_watchers(self, event: dict[str, Any]) -> None:
        for watcher in list(self.watchers):
            try:
                await watcher.change_seen(event)
            except Exception:
                logger.warning("a change watcher failed", exc_info=True)

    async def _probe(self, layer: Any, channel: str) -> None:
        """Send a probe through the stream whenever it is quiet; note an outage.

        Channels' Redis layer reconnects by itself and never raises from
        ``receive`` during an outage, so the pump alone cannot tell a quiet
        stream from a dead one. A probe that cannot be sent, or none coming
        back, marks the stream down; the next message through it (usually the
        next probe) then triggers :meth:`_recover`.
        """
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(PROBE_SECS)
            if self._moved_on(loop):
                return
            quiet_secs = time.monotonic() - self.received_at
            if quiet_secs < PROBE_SECS:
                continue
            if quiet_secs > PROBE_LOST_SECS and not self.stream_down:
                self.stream_down = True
                logger.warning("change stream silent for %.1f s", quiet_secs)
            try:
                await bounded(
                    layer.send(channel, messages.layer_probe()),
                    timeout_secs=sync_settings.BROADCAST_TIMEOUT_SECS,
                )
            except asyncio.CancelledError:
                raise
            except Exception:
                if not self.stream_down:
                    logger.warning("change stream unreachable", exc_info=True)
                self.stream_down = True

    async def _recover(self) -> None:
        """Bring every listener and watcher up to the latest committed seq."""
        for attempt in range(20):
            try:
                await self._seq_read()
                break
            except Exception:
                logger.warning("catch-up could not read the seq", exc_info=True)
                await asyncio.sleep(min(0.1 * 2**attempt, 2.0))
        else:
            return  # the heartbeat takes over
        signals.seq_observed.send(sender=ChangeHub, seq=self.latest_seq, lag=None)
        for listener in list(self.listeners):
            try:
                self._spawn(listener.catch_up(self.latest_seq))
            except Exception:
                logger.warning("catch-up of a listener failed", exc_info=True)
        await self._show_watchers(messages.layer_change(text=None, seq=self.latest_seq))

    async def _heartbeat(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(sync_settings.SYNC_HEARTBEAT_SECS)
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
            signals.seq_observed.send(sender=ChangeHub, seq=self.latest_seq, lag=None)
            for listener in list(self.listeners):
                self._spawn(listener.heartbeat(self.latest_seq))


hub = ChangeHub()
