"""``/ws/sync/``: the catalog change stream with resume."""

import asyncio
import contextlib
import logging
from typing import Any

from channels.db import database_sync_to_async
from django.conf import settings
from pydantic import TypeAdapter

from recsite import live_stats, metrics
from recsite.consumers import ProtocolConsumer
from recsite.wire import encode
from sync import messages, selectors
from sync.services import change_message

logger = logging.getLogger(__name__)

_changes_after = database_sync_to_async(selectors.changes_after)
_seq_latest = database_sync_to_async(selectors.seq_latest)


class _SharedSeq:
    """The latest seq read at most once per interval for all sockets of a process.

    Thousands of sockets heartbeat on the same period; one query serves them.
    """

    def __init__(self) -> None:
        self.value = 0
        self.read_at = float("-inf")
        self.pending: asyncio.Future | None = None

    async def get(self, max_age_secs: float) -> int:
        loop = asyncio.get_running_loop()
        if loop.time() - self.read_at <= max_age_secs:
            return self.value
        if self.pending is None or self.pending.get_loop() is not loop:
            self.pending = asyncio.ensure_future(self._read())
        return await asyncio.shield(self.pending)

    async def _read(self) -> int:
        try:
            self.value = await _seq_latest()
            self.read_at = asyncio.get_running_loop().time()
            return self.value
        finally:
            self.pending = None


_shared_seq = _SharedSeq()


class SyncConsumer(ProtocolConsumer):
    """Send every committed change exactly once and in order, per connection.

    The consumer remembers the last seq it sent. A live change at or below it
    is a duplicate (the replay already sent it) and is skipped; a live change
    beyond the next one means broadcasts were lost, and the gap is filled from
    the change log before it goes out. A heartbeat task does the same check
    against the database, so a lost *last* change is found too.
    """

    endpoint = "sync"
    adapter = TypeAdapter(messages.ResumeRequest)
    groups = [messages.CHANGES_GROUP]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.last_seq = 0
        self.lock = asyncio.Lock()
        self.heartbeat_task: asyncio.Task | None = None

    async def connect(self) -> None:
        """Called on the handshake: accept, greet with the latest seq."""
        await self.accept()
        self.track_open()
        self.last_seq = await _seq_latest()
        live_stats.stats.seq = max(live_stats.stats.seq, self.last_seq)
        await self.send_text(messages.hello(seq=self.last_seq))
        self.heartbeat_task = asyncio.create_task(self._heartbeat())

    async def disconnect(self, code: int) -> None:
        """Called when the socket closes: stop the heartbeat."""
        if self.heartbeat_task is not None:
            self.heartbeat_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.heartbeat_task

    async def handle(self, request: messages.ResumeRequest) -> None:
        """Replay every change after ``request.after``, then ``resumed``."""
        async with self.lock:
            plan = await _changes_after(
                after=request.after, limit=settings.SYNC_RESUME_MAX_CHANGES
            )
            if plan.reset:
                self.last_seq = max(self.last_seq, plan.seq)
                await self.send_text(messages.reset(seq=plan.seq))
                return
            for change in plan.changes:
                await self.send(text_data=encode(change_message(change)))
            self.last_seq = max(plan.seq, request.after)
            await self.send_text(messages.resumed(seq=self.last_seq))

    async def sync_change(self, event: dict[str, Any]) -> None:
        """Called for each broadcast change: forward it, filling gaps first."""
        seq = event["seq"]
        async with self.lock:
            if seq <= self.last_seq:
                return
            if seq > self.last_seq + 1 or event.get("text") is None:
                await self._catch_up()
                return
            await self.send(text_data=event["text"])
            self.last_seq = seq

    async def _catch_up(self) -> None:
        """Send what the log holds beyond ``last_seq`` (call with the lock held)."""
        plan = await _changes_after(
            after=self.last_seq, limit=settings.SYNC_RESUME_MAX_CHANGES
        )
        if plan.reset:
            self.last_seq = plan.seq
            await self.send_text(messages.reset(seq=plan.seq))
            return
        for change in plan.changes:
            await self.send(text_data=encode(change_message(change)))
        self.last_seq = max(self.last_seq, plan.seq)

    async def _heartbeat(self) -> None:
        while True:
            await asyncio.sleep(settings.SYNC_HEARTBEAT_SECS)
            try:
                latest = await _shared_seq.get(settings.SYNC_HEARTBEAT_SECS / 2)
                metrics.CHANGELOG_SEQ.set(latest)
                live_stats.stats.seq = max(live_stats.stats.seq, latest)
                async with self.lock:
                    metrics.CHANGELOG_LAG.set(max(0, latest - self.last_seq))
                    if latest > self.last_seq:
                        await self._catch_up()
                    await self.send_text(messages.heartbeat(seq=self.last_seq))
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.warning("sync heartbeat failed", exc_info=True)
