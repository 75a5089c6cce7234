"""Channel-layer helpers against the real Redis layer."""

import asyncio
import uuid

import pytest
from channels.layers import get_channel_layer

from sync.layer import group_send_many

pytestmark = pytest.mark.usefixtures("redis_url")


async def test_group_send_many_reaches_every_member_in_order() -> None:
    layer = get_channel_layer()
    tag = uuid.uuid4().hex[:8]
    one, both = f"many-one-{tag}", f"many-both-{tag}"
    a, b = await layer.new_channel(), await layer.new_channel()
    await layer.group_add(one, a)
    await layer.group_add(one, b)
    await layer.group_add(both, b)
    try:
        await group_send_many(
            [
                (one, {"type": "t.m", "n": 1}),
                (both, {"type": "t.m", "n": 2}),
                (one, {"type": "t.m", "n": 3}),
            ]
        )

        async def take(channel: str, count: int) -> list[int]:
            return [
                (await asyncio.wait_for(layer.receive(channel), 5))["n"]
                for _ in range(count)
            ]

        assert await take(a, 2) == [1, 3]
        assert await take(b, 3) == [1, 2, 3]
    finally:
        for group, channel in ((one, a), (one, b), (both, b)):
            await layer.group_discard(group, channel)
