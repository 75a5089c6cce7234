"""``/ws/sync/``: the catalog change stream with resume and shapes."""

import asyncio
import json
import logging
from typing import Annotated, Any

from channels.db import database_sync_to_async
from pydantic import Field, TypeAdapter

from sync import messages, selectors, signals
from sync.conf import sync_settings
from sync.hub import hub
from sync.models import Change
from sync.protocol import ProtocolConsumer
from sync.registry import synced_by_name
from sync.services import _wire_id, change_message
from sync.shapes import LEAVE, UPSERT, Shape, ShapeSpec, shape_compile
from sync.wire import FrameError, encode

logger = logging.getLogger(__name__)

_changes_after = database_sync_to_async(selectors.changes_after)

# No channel-layer channel per socket: the process's hub (sync.hub) receives
# each change once and hands it to every socket here.
NO_LAYER = "sync.no-layer"

Request = Annotated[
    messages.ResumeRequest | messages.SubscribeRequest, Field(discriminator="type")
]


def _spec_of(model_name: str) -> ShapeSpec | None:
    entry = synced_by_name(model_name)
    return None if entry is None else entry.shape


def event_text(event: dict[str, Any], shape: Shape) -> str | None:
    """Return the frame ``shape`` gets for a live change envelope, or None.

    The verdict is cached on the envelope, which the hub hands to every
    socket of the process: a change is decoded once and classified once per
    distinct shape, however many sockets share it (shapes that differ only in
    ``also_ids`` share it unless the row is one of those ids).
    """
    change = event.get("_change")
    if change is None:
        change = event["_change"] = json.loads(event["text"])
    verdicts = event.setdefault("_shapes", {})
    key = shape.key_for(change["id"])
    if key in verdicts:
        return verdicts[key]
    verdict = shape.classify(
        model=change["model"],
        op=change["op"],
        object_id=change["id"],
        data=change["data"],
        before=event.get("before"),
    )
    text = _verdict_text(verdict, event["text"], change["seq"], change)
    verdicts[key] = text
    return text


def row_text(row: Change, shape: Shape) -> str | None:
    """Return the frame ``shape`` gets for a change read from the log, or None."""
    object_id = _wire_id(row.object_id)
    verdict = shape.classify(
        model=row.model,
        op=row.op,
        object_id=object_id,
        data=row.data,
        before=row.before,
    )
    if verdict == UPSERT:
        return encode(change_message(row))
    return _verdict_text(verdict, None, row.seq, {"model": row.model, "id": object_id})


def _verdict_text(
    verdict: str | None, text: str | None, seq: int, change: dict[str, Any]
) -> str | None:
    if verdict == UPSERT:
        return text
    if verdict == LEAVE:
        return encode(
            messages.leave(seq=seq, model=change["model"], object_id=change["id"])
        )
    return None


class SyncConsumer(ProtocolConsumer):
    """Send every committed change exactly once and in order, per connection.

    The consumer remembers the last seq it sent. A live change at or below it
    is a duplicate (the replay already sent it) and is skipped; a live change
    beyond the next one means broadcasts were lost, and the gap is filled from
    the change log before it goes out. The hub's heartbeat does the same
    check against the database, so a lost *last* change is found too.

    With a shape (``subscribe``), ``last_seq`` still walks the whole stream;
    only the changes of rows in the shape (or leaving it) are sent, each with
    ``prev``: ``sent_seq``, the last position this socket was told.
    """

    endpoint = "sync"
    adapter = TypeAdapter(Request)
    channel_layer_alias = NO_LAYER

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.last_seq = 0
        self.sent_seq = 0
        self.shape: Shape | None = None
        self.lock = asyncio.Lock()

    async def connect(self) -> None:
        """Called on the handshake: accept, join the hub, greet with the seq."""
        await self.accept()
        self.track_open()
        async with self.lock:
            # Join before reading the seq: a change committed after the read
            # is then certain to arrive, and one before it is skipped as seen.
            await hub.join(self)
            self.last_seq = self.sent_seq = await hub.seq_current()
            signals.seq_observed.send(sender=SyncConsumer, seq=self.last_seq, lag=None)
            await self.send_text(messages.hello(seq=self.last_seq))

    async def disconnect(self, code: int) -> None:
        """Called when the socket closes: leave the hub."""
        hub.leave(self)

    async def handle(
        self, request: messages.ResumeRequest | messages.SubscribeRequest
    ) -> None:
        """Serve ``resume`` (replay, then ``resumed``) or ``subscribe``."""
        if isinstance(request, messages.SubscribeRequest):
            await self._subscribe(request)
            return
        async with self.lock:
            plan = await _changes_after(
                after=request.after, limit=sync_settings.SYNC_RESUME_MAX_CHANGES
            )
            if plan.reset:
                self.last_seq = self.sent_seq = max(self.last_seq, plan.seq)
                await self.send_text(messages.reset(seq=plan.seq))
                return
            await self._replay(plan.changes, prev=request.after)
            self.last_seq = self.sent_seq = max(plan.seq, request.after)
            await self.send_text(messages.resumed(seq=self.last_seq))

    async def _subscribe(self, request: messages.SubscribeRequest) -> None:
        """Install the new shape; replay its changes after ``after``; ``subscribed``."""
        try:
            shape = shape_compile(request.shape, spec_of=_spec_of)
        except FrameError as exc:
            exc.client_id = request.id
            raise
        async with self.lock:
            self.shape = shape
            if request.after is not None:
                plan = await _changes_after(
                    after=request.after, limit=sync_settings.SYNC_RESUME_MAX_CHANGES
                )
                if plan.reset:
                    self.last_seq = max(self.last_seq, plan.seq)
                    await self.send_text(messages.reset(seq=self.last_seq))
                else:
                    await self._replay(plan.changes, prev=request.after)
                    self.last_seq = max(plan.seq, request.after)
            self.sent_seq = self.last_seq
            await self.send_text(
                messages.subscribed(seq=self.last_seq, request_id=request.id)
            )

    async def _replay(self, changes: list[Change], *, prev: int) -> None:
        """Send logged ``changes`` (the shape's only, chained from ``prev``)."""
        if self.shape is None:
            for change in changes:
                await self.send(text_data=encode(change_message(change)))
            return
        for change in changes:
            text = row_text(change, self.shape)
            if text is not None:
                await self.send(text_data=messages.with_prev(text, prev=prev))
                prev = change.seq
        self.sent_seq = prev

    async def _send_live(self, event: dict[str, Any]) -> None:
        """Send a live change this socket has not seen (the next in the stream)."""
        seq = event["seq"]
        self.last_seq = seq
        if self.shape is None:
            await self.send(text_data=event["text"])
            return
        text = event_text(event, self.shape)
        if text is not None:
            await self.send(text_data=messages.with_prev(text, prev=self.sent_seq))
            self.sent_seq = seq

    async def deliver(self, event: dict[str, Any]) -> bool:
        """Send the next change at once; False when the slow path is needed."""
        if self.lock.locked():
            return False
        seq = event["seq"]
        if seq <= self.last_seq:
            return True
        if seq != self.last_seq + 1 or event.get("text") is None:
            return False
        await self._send_live(event)
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
            await self._send_live(event)

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
                self.sent_seq = self.last_seq
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
            self.last_seq = self.sent_seq = plan.seq
            await self.send_text(messages.reset(seq=plan.seq))
            return
        await self._replay(plan.changes, prev=self.sent_seq)
        self.last_seq = max(self.last_seq, plan.seq)
