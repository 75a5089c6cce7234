"""``/ws/ops/``: the cluster's live figures for the operator view (staff only)."""

import asyncio
import contextlib
import logging
import time
from datetime import timedelta
from typing import Any

from channels.db import database_sync_to_async
from django.conf import settings
from django.utils import timezone
from pydantic import TypeAdapter

from recommender import messages
from recommender.consumers import CLOSE_UNAUTHENTICATED
from recommender.services.online import online_report
from recsite import live_stats
from sync import wire
from sync.protocol import ProtocolConsumer

logger = logging.getLogger(__name__)

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
