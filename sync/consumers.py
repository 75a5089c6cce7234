"""``/ws/sync/``: the catalog change stream with resume."""

import asyncio
import logging
from typing import Any

from channels.db import database_sync_to_async
from pydantic import TypeAdapter

from sync import messages, selectors, signals
from sync.conf import sync_settings
from sync.hub import hub
from sync.protocol import ProtocolConsumer
from sync.services import change_message
from sync.wire import encode

logger = logging.getLogger(__name__)

_changes_after = database_sync_to_async(selectors.changes_after)

# No channel-layer channel per socket: the process's hub (sync.hub) receives
# each change once and hands it to every socket here.
NO_LAYER = "sync.no-layer"


class SyncConsumer(ProtocolConsumer):
    """Send every committed change exactly once and in order, per connection.

    The consumer remembers the last seq it sent. A live change at or below it
    is a duplicate (the replay already sent it) and is skipped; a live change
    beyond the next one means broadcasts were lost, and the gap is filled from
    the change log before it goes out. The hub's heartbeat does the same
    check against the database, so a lost *last* change is found too.
    """

    endpoint = "sync"
    adapter = TypeAdapter(messages.ResumeRequest)
    channel_layer_alias = NO_LAYER

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.last_seq = 0
        self.lock = asyncio.Lock()

    async def connect(self) -> None:
        """Called on the handshake: accept, join the hub, greet with the seq."""
        await self.accept()
        self.track_open()
        async with self.lock:
            # Join before reading the seq: a change committed after the read
            # is then certain to arrive, and one before it is skipped as seen.
            await hub.join(self)
            self.last_seq = await hub.seq_current()
            signals.seq_observed.send(sender=SyncConsumer, seq=self.last_seq, lag=None)
            await self.send_text(messages.hello(seq=self.last_seq))

    async def disconnect(self, code: int) -> None:
        """Called when the socket closes: leave the hub."""
        hub.leave(self)

    async def handle(self, request: messages.ResumeRequest) -> None:
        """Replay every change after ``request.after``, then ``resumed``."""
        async with self.lock:
            plan = await _changes_after(
                after=request.after, limit=sync_settings.SYNC_RESUME_MAX_CHANGES
            )
            if plan.reset:
                self.last_seq = max(self.last_seq, plan.seq)
                await self.send_text(messages.reset(seq=plan.seq))
                return
            for change in plan.changes:
                await self.send(text_data=encode(change_message(change)))
            self.last_seq = max(plan.seq, request.after)
            await self.send_text(messages.resumed(seq=self.last_seq))

    async def deliver(self, event: dict[str, Any]) -> bool:
        """Send the next change at once; False when the slow path is needed."""
        if self.lock.locked():
            return False
        seq = event["seq"]
        if seq <= self.last_seq:
            return True
        if seq != self.last_seq + 1 or event.get("text") is None:
            return False
        self.last_seq = seq
        await self.send(text_data=event["text"])
        return True

    async def sync_change(self, event: dict[str, Any]) -> None:
        """Forward a change that needs the lock, filling gaps first."""
        async with self.lock:
            seq = event["seq"]
            if seq <= self.last_seq:
                return
            if seq > self.last_seq + 1 or event.get("text") is None:
                await self._catch_up()
                return
            await self.send(text_data=event["text"])
            self.last_seq = seq

    async def heartbeat(self, latest_seq: int) -> None:
        """Catch up to ``latest_seq`` if behind, then send a heartbeat."""
        try:
            async with self.lock:
                if latest_seq > self.last_seq:
                    signals.seq_observed.send(
                        sender=SyncConsumer,
                        seq=latest_seq,
                        lag=latest_seq - self.last_seq,
                    )
                    await self._catch_up()
                await self.send_text(messages.heartbeat(seq=self.last_seq))
        except Exception:
            logger.warning("sync heartbeat failed", exc_info=True)

    async def catch_up(self, latest_seq: int) -> None:
        """Called by the hub when the stream recovers: send what was missed."""
        try:
            async with self.lock:
                if latest_seq > self.last_seq:
                    await self._catch_up()
        except Exception:
            logger.warning("sync catch-up failed", exc_info=True)

    async def _catch_up(self) -> None:
        """Send what the log holds beyond ``last_seq`` (call with the lock held)."""
        plan = await _changes_after(
            after=self.last_seq, limit=sync_settings.SYNC_RESUME_MAX_CHANGES
        )
        if plan.reset:
            self.last_seq = plan.seq
            await self.send_text(messages.reset(seq=plan.seq))
            return
        for change in plan.changes:
            await self.send(text_data=encode(change_message(change)))
        self.last_seq = max(self.last_seq, plan.seq)
