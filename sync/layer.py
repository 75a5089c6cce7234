"""Channel-layer calls with a hard time limit."""

import asyncio
from collections import defaultdict
from collections.abc import Awaitable
from typing import Any, TypeVar

from channels.layers import get_channel_layer
from channels_redis.pubsub import RedisPubSubChannelLayer

T = TypeVar("T")


async def bounded(awaitable: Awaitable[T], *, timeout_secs: float) -> T:
    """Await ``awaitable`` for at most ``timeout_secs``, then raise ``TimeoutError``.

    ``asyncio.timeout`` is not enough against a Redis that accepts connections
    and never answers: redis-py's connect path catches the cancellation and
    retries, so the caller would wait forever. The call runs as its own task
    instead; on time-out it is cancelled and abandoned, and the caller moves on.
    """
    task = asyncio.ensure_future(awaitable)
    done, _ = await asyncio.wait({task}, timeout=timeout_secs)
    if not done:
        task.cancel()
        task.add_done_callback(_consume_result)
        raise TimeoutError(f"channel layer did not answer within {timeout_secs} s")
    return task.result()


def _consume_result(task: asyncio.Task) -> None:
    if not task.cancelled():
        task.exception()  # retrieved, so asyncio does not log it as lost


async def group_send_many(messages: list[tuple[str, dict[str, Any]]]) -> None:
    """Send each ``(group, message)`` pair, in order, in one Redis round trip.

    ``RedisPubSubChannelLayer.group_send`` takes a per-process lock for each
    PUBLISH and waits for its reply, so a process pushing hundreds of lists a
    second spends its time queueing on that lock. This sends a whole batch as
    one pipeline under the same lock, through the layer's own group channel
    names, shards and serializer (channels-redis 4.3, pinned). Other layers
    (the in-memory one of a first run) get plain ``group_send`` calls.
    """
    layer = get_channel_layer()
    if not isinstance(layer, RedisPubSubChannelLayer):
        for group, message in messages:
            await layer.group_send(group, message)
        return
    loop_layer = layer._get_layer()
    by_shard: dict[Any, list[tuple[str, bytes]]] = defaultdict(list)
    for group, message in messages:
        channel = loop_layer._get_group_channel_name(group)
        by_shard[loop_layer._get_shard(channel)].append(
            (channel, layer.serialize(message))
        )
    for shard, items in by_shard.items():
        async with shard._lock:
            shard._ensure_redis()
            async with shard._redis.pipeline(transaction=False) as pipe:
                for channel, data in items:
                    pipe.publish(channel, data)
                await pipe.execute()
