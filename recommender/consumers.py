"""``/ws/recommendations/``: a user's live recommendations and their events.

The consumer accepts or refuses the socket, joins the user's group, hands
each event to the ingest service (through the process's batcher) and
forwards lists; the logic lives in ``recommender.services``.
"""

import asyncio
import json
import logging
import time
from typing import Any

from channels.db import DatabaseSyncToAsync, database_sync_to_async
from pydantic import TypeAdapter

from recommender import messages, signals
from recommender.limits import socket_bucket, user_slots
from recommender.services.event_batches import event_batcher
from recommender.services.events import NewEvent, UnknownItem
from recommender.services.live import live
from recommender.services.recommendations import (
    list_retracted_by,
    recommendations_compute,
    recommendations_current,
    recommendations_open,
)
from recommender.services.rules import merchandising
from recommender.services.visitors import visitor_for_socket
from recommender.watching import Watches
from sync import wire
from sync.hub import hub
from sync.protocol import ProtocolConsumer

logger = logging.getLogger(__name__)

# Application close code: the socket carries no session at all (no cookie, or
# one that names no stored session). The page shows "log in" instead of
# reconnecting. An anonymous session is served as a visitor.
CLOSE_UNAUTHENTICATED = 4401
# Application close code: the user already has the maximum number of sockets.
CLOSE_TOO_MANY_SOCKETS = 4429

# Any worker thread will do: each holds its own database connection, so the
# lists of users connecting at once are computed in parallel instead of
# queueing behind one thread (Channels' default, thread_sensitive=True).
_open = DatabaseSyncToAsync(recommendations_open, thread_sensitive=False)
_current = DatabaseSyncToAsync(recommendations_current, thread_sensitive=False)
_compute = DatabaseSyncToAsync(recommendations_compute, thread_sensitive=False)
_visitor = database_sync_to_async(visitor_for_socket)


class RecommendationsConsumer(ProtocolConsumer):
    """Push a user's list on connect and after every event they send."""

    endpoint = "recs"
    adapter = TypeAdapter(messages.RecommendationsRequest)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.user_id: int | None = None
        self.version = 0
        self.shown: set[int] = set()
        self.bucket = socket_bucket()
        self.refresh: asyncio.Task | None = None
        self.refresh_due = False
        self.rerank_due = False
        self.watches: Watches | None = None

    async def connect(self) -> None:
        """Called on the handshake: check the session, join, send the list."""
        user = self.scope.get("user")
        if user is not None and user.is_authenticated:
            user_id = user.pk
        else:
            user_id = await _visitor(session=self.scope.get("session"))
        if user_id is None:
            await self.accept()
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        if not user_slots.acquire(user_id):
            await self.accept()
            await self.close(code=CLOSE_TOO_MANY_SOCKETS)
            return
        self.user_id = user_id
        self.watches = Watches(user_id=user_id, send=self.send_text)
        self.groups = [messages.user_group(user_id), messages.MERCH_GROUP]
        for group in self.groups:
            await self.channel_layer.group_add(group, self.channel_name)
        # Catalog changes come through the process's hub, for retraction.
        await hub.watch(self)
        await self.accept()
        self.track_open(user_id)
        await self._show(await _open(user_id=user_id))

    def track_close(self) -> None:
        """Leave the presence counts and the hub, release this user's socket slot."""
        super().track_close()
        hub.unwatch(self)
        if self.refresh is not None:
            self.refresh.cancel()
        if self.watches is not None:
            self.watches.close()
        if self.user_id is not None:
            user_slots.release(self.user_id)
            self.user_id = None

    async def handle(
        self,
        request: messages.EventRequest
        | messages.WatchRequest
        | messages.UnwatchRequest,
    ) -> None:
        """Watch or unwatch a list, or store an event and push the new lists."""
        if isinstance(request, messages.WatchRequest):
            await self.watches.watch(
                placement=request.placement, item=request.item, client_id=request.id
            )
            return
        if isinstance(request, messages.UnwatchRequest):
            await self.watches.unwatch(
                placement=request.placement, item=request.item, client_id=request.id
            )
            return
        await self._event(request)

    async def _event(self, request: messages.EventRequest) -> None:
        """Store the event, ack it, then push the new list to all the user's sockets."""
        received = time.perf_counter()
        wait = user_slots.take(self.user_id, self.bucket)
        if wait > 0:
            raise wire.FrameError(
                wire.RATE_LIMITED,
                f"too many events; retry in {wait:.2f} s",
                request.id,
                retry_after=max(0.001, round(wait, 3)),
            )
        outcome = await event_batcher().submit(
            NewEvent(
                user_id=self.user_id,
                item_id=request.item,
                action=request.action,
                client_id=request.id,
                origin=self.channel_name,
            )
        )
        if isinstance(outcome, UnknownItem):
            raise wire.FrameError(wire.UNKNOWN_ITEM, str(outcome), request.id)
        # The event is durable: ack it now, while its batch is being scored.
        await self.send_text(messages.ack(client_id=request.id))
        scored = await outcome.listed
        if scored.message is None:
            return  # the user was deleted meanwhile (a visitor merged on login)
        await self._show(scored.message, scored.text)
        # The basket changed: the lists that go with it may too.
        self.watches.soon("complements")
        signals.event_pushed.send(
            sender=RecommendationsConsumer,
            push_secs=time.perf_counter() - received,
            computed_ms=scored.message["computed_ms"],
        )

    async def _show(
        self, message: messages.RecommendationsMessage, text: str | None = None
    ) -> None:
        """Send ``message`` (encoded as ``text``) unless a newer version is shown."""
        if message["version"] > self.version:
            self.version = message["version"]
            self.shown = {entry["id"] for entry in message["items"]}
            await self.send(text_data=text or wire.encode(message))
            signals.list_sent.send(sender=RecommendationsConsumer, path="direct")

    async def recs_updated(self, event: dict[str, Any]) -> None:
        """Called when another socket of this user produced a newer list."""
        if self.user_id:
            live.push_received(user_id=self.user_id, process=event.get("process"))
        if event.get("origin") == self.channel_name or event["version"] <= self.version:
            return
        if self.watches is not None:
            self.watches.soon("complements")  # an event in another tab
        self.version = event["version"]
        self.shown = {entry["id"] for entry in json.loads(event["text"])["items"]}
        await self.send(text_data=event["text"])
        signals.list_sent.send(sender=RecommendationsConsumer, path="layer")

    async def change_seen(self, event: dict[str, Any]) -> None:
        """Called by the hub for each catalog change (inline: never waits on I/O)."""
        live.engine.note_seq(event["seq"])
        text = event.get("text")
        # No text: a bulk write or changes missed in an outage; check the list.
        if text is None or list_retracted_by(change_text=text, shown=self.shown):
            self._refresh_soon()
        if self.watches is not None:
            self.watches.soon()

    async def recs_merchandising(self, event: dict[str, Any]) -> None:
        """Called when staff changed a rule or experiment: re-rank every list."""
        merchandising.invalidate()
        if self.user_id is None:
            return
        self.rerank_due = True
        self._refresh_soon()
        self.watches.soon()

    def _refresh_soon(self) -> None:
        """Show a list without retracted items, once whatever is running ends."""
        if self.user_id is None:
            return
        self.refresh_due = True
        if self.refresh is None or self.refresh.done():
            self.refresh = asyncio.create_task(self._refresh())

    async def _refresh(self) -> None:
        while self.refresh_due and self.user_id is not None:
            self.refresh_due = False
            # A rule change re-ranks the list; a retraction needs only a
            # valid one (the stored list when it still is).
            rerank, self.rerank_due = self.rerank_due, False
            fetch = _compute if rerank else _current
            try:
                await self._show(await fetch(user_id=self.user_id, shown=True))
            except Exception:
                logger.warning(
                    "retraction for user %s failed", self.user_id, exc_info=True
                )
