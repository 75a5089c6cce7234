"""``/ws/recommendations/``: a user's live recommendations and their events."""

import asyncio
import contextlib
import json
import logging
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from channels.db import DatabaseSyncToAsync, database_sync_to_async
from django.conf import settings
from django.utils import timezone
from pydantic import TypeAdapter

from recommender import messages
from recommender.services import recommendations as recs
from recommender.services.event_batches import event_batcher
from recommender.services.events import NewEvent, UnknownItem
from recommender.services.histories import history_cache
from recommender.services.online import online_report
from recommender.services.visitors import visitor_for_session
from recsite import live_stats, metrics, wire
from recsite.consumers import ProtocolConsumer
from recsite.ratelimit import TokenBucket, take_all
from sync.hub import hub

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
_current = DatabaseSyncToAsync(recs.recommendations_current, thread_sensitive=False)


@database_sync_to_async
def _visitor(session: Any) -> int | None:
    """Return the anonymous visitor behind a session cookie, or None without one."""
    if session is None or session.session_key is None:
        return None
    visitor_id = visitor_for_session(session=session, create=False)
    if session.session_key is None:
        return None  # the cookie named no stored session
    if visitor_id is None:
        visitor_id = visitor_for_session(session=session, create=True)
        session.save()
    return visitor_id


@dataclass
class _UserState:
    """What the sockets of one user in this process share."""

    bucket: TokenBucket
    sockets: int = 0


_users: dict[int, _UserState] = {}


class RecommendationsConsumer(ProtocolConsumer):
    """Push a user's list on connect and after every event they send."""

    endpoint = "recs"
    adapter = TypeAdapter(messages.EventRequest)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.user_id: int | None = None
        self.version = 0
        self.shown: set[int] = set()
        self.bucket = TokenBucket(
            rate_per_sec=settings.WS_EVENT_RATE_PER_SEC, burst=settings.WS_EVENT_BURST
        )

    async def connect(self) -> None:
        """Called on the handshake: check the session, join, send the list."""
        user = self.scope.get("user")
        if user is not None and user.is_authenticated:
            user_id = user.pk
        else:
            user_id = await _visitor(self.scope.get("session"))
        if user_id is None:
            await self.accept()
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        state = _users.get(user_id)
        if state is None:
            state = _users[user_id] = _UserState(
                bucket=TokenBucket(
                    rate_per_sec=settings.WS_USER_EVENT_RATE_PER_SEC,
                    burst=settings.WS_USER_EVENT_BURST,
                )
            )
        if state.sockets >= settings.WS_MAX_SOCKETS_PER_USER:
            await self.accept()
            await self.close(code=CLOSE_TOO_MANY_SOCKETS)
            return
        state.sockets += 1
        self.user_id = user_id
        # A login may have merged a visitor's older events into this user.
        history_cache.forget(user_id)
        self.groups = [messages.user_group(user_id)]
        for group in self.groups:
            await self.channel_layer.group_add(group, self.channel_name)
        # Catalog changes come through the process's hub, for retraction.
        await hub.join(self)
        await self.accept()
        self.track_open(user_id)
        await self._show(await _current(user_id=user_id, shown=True))

    def track_close(self) -> None:
        """Leave the presence counts and the hub, release this user's socket slot."""
        super().track_close()
        hub.leave(self)
        if self.user_id is None:
            return
        state = _users.get(self.user_id)
        if state is not None:
            state.sockets -= 1
            if state.sockets <= 0:
                del _users[self.user_id]
        self.user_id = None

    async def handle(self, request: messages.EventRequest) -> None:
        """Store the event, ack it, then push the new list to all the user's sockets."""
        received = time.perf_counter()
        state = _users[self.user_id]
        wait = take_all([self.bucket, state.bucket])
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
            ),
            origin=self.channel_name,
        )
        if isinstance(outcome, UnknownItem):
            raise wire.FrameError(wire.UNKNOWN_ITEM, str(outcome), request.id)
        # The event was stored before it was scored: the ack is after-durable.
        await self.send_text(messages.ack(client_id=request.id))
        if outcome.message is None:
            return  # the user was deleted meanwhile (a visitor merged on login)
        await self._show(outcome.message, outcome.text)
        push_secs = time.perf_counter() - received
        metrics.EVENT_TO_PUSH_SECS.observe(push_secs)
        live_stats.stats.event_pushed(push_secs * 1000, outcome.message["computed_ms"])

    async def _show(
        self, message: messages.RecommendationsMessage, text: str | None = None
    ) -> None:
        """Send ``message`` (encoded as ``text``) unless a newer version is shown."""
        if message["version"] > self.version:
            self.version = message["version"]
            self.shown = {entry["id"] for entry in message["items"]}
            await self.send(text_data=text or wire.encode(message))
            metrics.PUSHES.labels(path="direct").inc()

    async def recs_updated(self, event: dict[str, Any]) -> None:
        """Called when another socket of this user produced a newer list."""
        if event.get("process") != live_stats.stats.process_id and self.user_id:
            # Written elsewhere, maybe with old timestamps the cache's
            # "newer than" read would miss: read the history in full next time.
            history_cache.forget(self.user_id)
        if event.get("origin") == self.channel_name or event["version"] <= self.version:
            return
        self.version = event["version"]
        self.shown = {entry["id"] for entry in json.loads(event["text"])["items"]}
        await self.send(text_data=event["text"])
        metrics.PUSHES.labels(path="layer").inc()

    async def deliver(self, event: dict[str, Any]) -> bool:
        """Called by the hub for each catalog change; False to retract (slow path)."""
        recs.live_engine.note_seq(event["seq"])
        if event.get("text") is None:
            return False  # a bulk write: check the list against the catalog
        if not self.shown:
            return True
        change = json.loads(event["text"])
        if change.get("model") != "item" or change.get("id") not in self.shown:
            return True
        data = change.get("data")
        retracted = change.get("op") == "delete" or not (data or {}).get(
            "active", False
        )
        return not retracted

    async def sync_change(self, event: dict[str, Any]) -> None:
        """Called when a shown item left the catalog: push a list without it."""
        if self.user_id is None:
            return
        try:
            await self._show(await _current(user_id=self.user_id, shown=True))
        except Exception:
            logger.warning("retraction for user %s failed", self.user_id, exc_info=True)

    async def heartbeat(self, latest_seq: int) -> None:
        """Called by the hub's heartbeat; recommendation sockets need none."""


# Application close code: a logged-in user without staff rights.
CLOSE_FORBIDDEN = 4403
_OPS_PERIOD_SECS = 1.0
_ONLINE_PERIOD_SECS = 10.0
_ONLINE_SINCE = timedelta(hours=1)
_ONLINE_WINDOW = timedelta(minutes=30)


@database_sync_to_async
def _online_figures() -> dict[str, Any]:
    now = timezone.now()
    report = online_report(
        since=now - _ONLINE_SINCE,
        until=now,
        window=_ONLINE_WINDOW,
        k=settings.RECS_LIST_LENGTH,
    )
    return report.as_dict()


class OpsConsumer(ProtocolConsumer):
    """``/ws/ops/``: the cluster's live figures, once a second, for staff."""

    endpoint = "ops"
    adapter = TypeAdapter(messages.EventRequest)  # no client messages are served

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.task: asyncio.Task | None = None

    async def connect(self) -> None:
        """Called on the handshake: staff only, then start the stats loop."""
        user = self.scope.get("user")
        await self.accept()
        if user is None or not user.is_authenticated:
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        if not user.is_staff:
            await self.close(code=CLOSE_FORBIDDEN)
            return
        self.track_open(user.pk)
        self.task = asyncio.create_task(self._loop())

    async def disconnect(self, code: int) -> None:
        """Called when the socket closes: stop the stats loop."""
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task

    async def handle(self, request: Any) -> None:
        raise wire.FrameError(wire.BAD_MESSAGE, "the operator view accepts no messages")

    async def _loop(self) -> None:
        online: dict[str, Any] = {}
        online_at = float("-inf")
        while True:
            try:
                if time.monotonic() - online_at >= _ONLINE_PERIOD_SECS:
                    online = await _online_figures()
                    online_at = time.monotonic()
                cluster = await live_stats.cluster()
                cluster["at"] = time.time()
                await self.send_text(messages.ops_stats(cluster=cluster, online=online))
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.warning("operator stats failed", exc_info=True)
            await asyncio.sleep(_OPS_PERIOD_SECS)
