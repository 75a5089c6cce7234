"""The client's typing of change frames and its reconnect delays (no server needed)."""

import pytest
from recsite_client import Backoff, Delete, Leave, Upsert, change_from_message


def frame(op: str, data: dict | None, seq: int = 7, item: int = 3) -> dict:
    return {
        "type": "change",
        "seq": seq,
        "model": "item",
        "op": op,
        "id": item,
        "data": data,
    }


def test_an_upsert_of_an_active_item_is_an_upsert_and_of_an_inactive_one_a_leave():
    active = {"id": 3, "title": "Lamp", "active": True}
    inactive = {**active, "active": False}
    assert change_from_message(frame("upsert", active)) == Upsert(7, 3, active)
    assert change_from_message(frame("upsert", inactive)) == Leave(7, 3, inactive)
    assert change_from_message(frame("leave", None)) == Leave(7, 3, None)
    assert change_from_message(frame("delete", None)) == Delete(7, 3)
    with pytest.raises(ValueError, match="unknown change op"):
        change_from_message(frame("truncate", None))


def test_reconnect_delays_are_jittered_below_a_doubling_ceiling_and_the_cap():
    backoff = Backoff(base=0.5, cap=4.0)
    for attempt, ceiling in [(0, 0.5), (1, 1.0), (2, 2.0), (3, 4.0), (40, 4.0)]:
        delays = [backoff.delay(attempt) for _ in range(200)]
        assert all(0 <= delay <= ceiling for delay in delays)
        assert max(delays) > ceiling / 2, "spread over the whole range"
        assert len(set(delays)) > 100, "jittered, not one fixed delay"
