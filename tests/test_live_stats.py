"""Cluster presence for the operator view: every live process counted, users once."""

import json
import uuid

import pytest

from recsite import live_stats

pytestmark = pytest.mark.redis


async def test_cluster_figures_union_every_live_process(redis_url, monkeypatch):
    import redis.asyncio as aioredis

    # A prefix of its own: server processes of other tests publish too.
    monkeypatch.setattr(
        live_stats, "_KEY_PREFIX", f"{live_stats._KEY_PREFIX}{uuid.uuid4().hex}:"
    )

    stats = live_stats.stats
    stats.socket_opened("recs", 1)
    stats.socket_opened("sync", None)
    other_key = f"{live_stats._KEY_PREFIX}other-process"
    client = aioredis.Redis.from_url(redis_url)
    try:
        other = {
            "sockets": {"recs": 2},
            "users": [1, 2],
            "events_per_sec": 1.5,
            "push_ms": [4.0, 6.0],
            "recompute_ms": [2.0],
            "broadcast_failures": 3,
            "seq": 99,
        }
        await client.set(other_key, json.dumps(other), ex=5)
        figures = await live_stats.cluster()
        assert figures["processes"] == 2
        assert figures["connections"] == 4  # 2 here + 2 there
        assert figures["users"] == 2, "user 1 has sockets on both and counts once"
        assert figures["broadcast_failures"] >= 3
        assert figures["seq"] >= 99
        await client.delete(other_key)
        assert (await live_stats.cluster())["processes"] == 1, (
            "a gone process drops out"
        )
    finally:
        stats.socket_closed("recs", 1)
        stats.socket_closed("sync", None)
        await client.aclose()


def test_a_closed_socket_leaves_the_counts():
    stats = live_stats.ProcessStats()
    stats.socket_opened("recs", 7)
    stats.socket_opened("recs", 7)
    stats.socket_closed("recs", 7)
    assert stats.snapshot()["users"] == [7]
    stats.socket_closed("recs", 7)
    assert stats.snapshot()["users"] == []
    assert stats.snapshot()["sockets"] == {"recs": 0}
