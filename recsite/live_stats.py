"""Live figures of the whole cluster for the operator view: presence and rates.

Each server process keeps its own figures (open sockets per endpoint, the
users behind them, events, event→push latencies, recompute times, broadcast
failures) and, when Redis is configured, publishes them every
``LIVE_STATS_PUBLISH_SECS`` under a key that expires after a few periods. The
cluster view is the union of the live keys, so a killed process drops out by
itself and a socket dropped by a missed ping is gone from the count at once.
Without Redis (the single-process demo) the cluster is this process.
"""

import asyncio
import json
import logging
import os
import time
import uuid
from collections import Counter, deque
from typing import Any

from django.conf import settings

from sync.tasks import stop_with_loop

logger = logging.getLogger(__name__)

PUBLISH_SECS = 1.0
_KEY_PREFIX = f"{os.environ.get('REDIS_PREFIX', 'recsite')}:live:"
_KEY_TTL_SECS = 5
# Keep the latest samples only: enough for stable p99s over the last minute.
_SAMPLES = 500
_RATE_WINDOW_SECS = 10.0


class ProcessStats:
    """This process's live figures."""

    def __init__(self) -> None:
        self.process_id = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.sockets: Counter[str] = Counter()
        self.users: Counter[int] = Counter()
        self.event_times: deque[float] = deque(maxlen=10_000)
        self.push_ms: deque[float] = deque(maxlen=_SAMPLES)
        self.recompute_ms: deque[float] = deque(maxlen=_SAMPLES)
        self.broadcast_failures = 0
        self.seq = 0
        self.task: asyncio.Task | None = None

    def socket_opened(self, endpoint: str, user_id: int | None) -> None:
        self.sockets[endpoint] += 1
        if user_id is not None:
            self.users[user_id] += 1

    def socket_closed(self, endpoint: str, user_id: int | None) -> None:
        self.sockets[endpoint] -= 1
        if user_id is not None:
            self.users[user_id] -= 1
            if self.users[user_id] <= 0:
                del self.users[user_id]

    def event_pushed(self, push_ms: float, recompute_ms: float) -> None:
        self.event_times.append(time.time())
        self.push_ms.append(push_ms)
        self.recompute_ms.append(recompute_ms)

    def snapshot(self) -> dict[str, Any]:
        """Return this process's figures as a JSON-safe dict."""
        now = time.time()
        recent = sum(
            1 for stamp in self.event_times if now - stamp <= _RATE_WINDOW_SECS
        )
        return {
            "sockets": dict(self.sockets),
            "users": sorted(self.users),
            "events_per_sec": recent / _RATE_WINDOW_SECS,
            "push_ms": list(self.push_ms)[-200:],
            "recompute_ms": list(self.recompute_ms)[-200:],
            "broadcast_failures": self.broadcast_failures,
            "seq": self.seq,
        }


stats = ProcessStats()


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def combine(snapshots: list[dict[str, Any]]) -> dict[str, Any]:
    """Return the cluster figures from every live process's snapshot."""
    sockets: Counter[str] = Counter()
    users: set[int] = set()
    push: list[float] = []
    recompute: list[float] = []
    for snap in snapshots:
        sockets.update(snap["sockets"])
        users.update(snap["users"])
        push.extend(snap["push_ms"])
        recompute.extend(snap["recompute_ms"])
    return {
        "processes": len(snapshots),
        "connections": sum(sockets.values()),
        "sockets": dict(sockets),
        "users": len(users),
        "events_per_sec": round(sum(s["events_per_sec"] for s in snapshots), 3),
        "push_p50_ms": round(_percentile(push, 0.5), 3),
        "push_p99_ms": round(_percentile(push, 0.99), 3),
        "recompute_ms": round(_percentile(recompute, 0.5), 3),
        "broadcast_failures": sum(s["broadcast_failures"] for s in snapshots),
        "seq": max((s["seq"] for s in snapshots), default=0),
    }


_clients: dict[asyncio.AbstractEventLoop, Any] = {}


def _client() -> Any:
    """Return a Redis client bound to the running loop (clients are per loop)."""
    loop = asyncio.get_running_loop()
    if loop not in _clients:
        import redis.asyncio as aioredis

        _clients[loop] = aioredis.Redis.from_url(
            settings.REDIS_URL, socket_connect_timeout=2, socket_timeout=2
        )
    return _clients[loop]


async def publish() -> None:
    """Store this process's snapshot in Redis (no-op without Redis)."""
    if not settings.REDIS_URL:
        return
    await _client().set(
        _KEY_PREFIX + stats.process_id, json.dumps(stats.snapshot()), ex=_KEY_TTL_SECS
    )


async def cluster() -> dict[str, Any]:
    """Return the figures of every live process (this one alone without Redis)."""
    if not settings.REDIS_URL:
        return combine([stats.snapshot()])
    client = _client()
    keys = [key async for key in client.scan_iter(match=_KEY_PREFIX + "*", count=500)]
    values = await client.mget(keys) if keys else []
    mine = _KEY_PREFIX + stats.process_id
    others = [
        json.loads(value)
        for key, value in zip(keys, values, strict=True)
        if value and key.decode() != mine
    ]
    return combine([stats.snapshot(), *others])


async def _publish_forever() -> None:
    while True:
        try:
            await publish()
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.debug("live stats publish failed", exc_info=True)
        await asyncio.sleep(PUBLISH_SECS)


def ensure_publishing() -> None:
    """Start this process's publisher task once, on the running loop."""
    loop = asyncio.get_running_loop()
    if stats.task is None or stats.task.done() or stats.task.get_loop() is not loop:
        stats.task = stop_with_loop(loop.create_task(_publish_forever()))
