"""Every wire-message builder survives msgpack (channels-redis) and JSON unchanged."""

import json

import msgpack
import numpy as np
import pytest

from recommender import messages as recs
from sync import messages as sync

BUILT = [
    sync.hello(seq=np.int64(3)),
    sync.change(
        seq=4, model="item", op="upsert", object_id=7, data={"title": "x", "tags": []}
    ),
    sync.change(seq=5, model="item", op="delete", object_id=7, data=None),
    sync.resumed(seq=5),
    sync.reset(seq=5),
    sync.heartbeat(seq=5),
    sync.layer_change(text='{"type":"change"}', seq=np.int64(6)),
    recs.recommendations(
        version=np.int32(2),
        items=[
            {
                "id": np.int64(1),
                "title": "A",
                "score": np.float32(0.5),
                "reasons": ["r"],
            }
        ],
        computed_ms=np.float64(1.25),
    ),
    recs.recommendations(
        version=np.int64(3),
        items=[],
        computed_ms=np.float32(0.5),
        placement="similar",
        item=np.int64(9),
    ),
    recs.layer_merchandising(process="p"),
    recs.ack(client_id="c-1"),
    recs.layer_recs(text="{}", version=np.int64(3), origin=None, process="p"),
    recs.ops_stats(
        cluster={
            "processes": 1,
            "connections": 2,
            "sockets": {"recs": 2},
            "users": 1,
            "events_per_sec": 0.5,
            "push_p50_ms": 1.0,
            "push_p99_ms": 2.0,
            "recompute_ms": 0.7,
            "broadcast_failures": 0,
            "seq": 9,
        },
        online={"ctr": 0.1, "precision_at_k": 0.2, "impressions": 10},
    ),
]


@pytest.mark.parametrize("message", BUILT, ids=lambda m: m["type"])
def test_builders_round_trip_through_msgpack_and_json(message):
    assert msgpack.unpackb(msgpack.packb(message), raw=False) == message
    assert json.loads(json.dumps(message)) == message


def test_user_groups_are_valid_channel_group_names():
    name = recs.user_group(123456789)
    assert name == "recs.user.123456789"
    assert len(name) < 100 and all(c.isalnum() or c in "._-" for c in name)


def test_event_schema_actions_match_the_model_choices():
    from typing import get_args

    from recommender.models import Action

    field = recs.EventRequest.model_fields["action"]
    assert set(get_args(field.annotation)) == set(Action.values)
