"""Flow control in-process: invalid-frame threshold, rate limits, socket cap.

Drives ``recsite.asgi.application`` (origin check, session, routing) with
``WebsocketCommunicator`` on the real clock and the default limits.
"""

import json
import time

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator

from recommender.models import BrowsingEvent
from recsite.asgi import application
from tests.security.conftest import event_frame, make_user, session_cookie, ws_headers

pytestmark = pytest.mark.django_db(transaction=True)


@sync_to_async
def new_session(username: str) -> tuple[object, str]:
    """Create a user and a logged-in session for them."""
    user = make_user(username)
    return user, session_cookie(user)


@sync_to_async
def stored_ids(user) -> set[str]:
    return set(
        BrowsingEvent.objects.filter(user=user).values_list("client_id", flat=True)
    )


async def connect(session: str | None, path: str = "/ws/recommendations/"):
    comm = WebsocketCommunicator(application, path, headers=ws_headers(session))
    connected, _ = await comm.connect(timeout=10)
    assert connected
    return comm


async def open_recs(session: str) -> WebsocketCommunicator:
    comm = await connect(session)
    assert (await comm.receive_json_from(timeout=10))["type"] == "recommendations"
    return comm


async def test_invalid_frames_beyond_the_threshold_close_1008(
    catalog, settings, private_layer
):
    _, session = await new_session("noisy")
    limit = settings.WS_MAX_INVALID_FRAMES
    comm = await open_recs(session)
    for n in range(limit):
        await comm.send_to(text_data="not json" if n % 2 else '{"type":"nope"}')
        answer = await comm.receive_json_from(timeout=5)
        assert answer["type"] == "error"
    # Still open and serving up to the threshold.
    await comm.send_to(text_data=event_frame(catalog.active[0], "still-served"))
    assert await comm.receive_json_from(timeout=5) == {
        "type": "ack",
        "id": "still-served",
    }
    assert (await comm.receive_json_from(timeout=5))["type"] == "recommendations"
    await comm.send_to(bytes_data=b"\x00")
    assert (await comm.receive_json_from(timeout=5))["code"] == "bad_message"
    closed = await comm.receive_output(timeout=5)
    assert closed == {
        "type": "websocket.close",
        "code": 1008,
        "reason": "too many invalid frames",
    }
    await comm.disconnect(code=1008)  # what daphne reports once the close is sent

    # Sync applies the same rule (the threshold lives in the shared base consumer).
    settings.WS_MAX_INVALID_FRAMES = 3
    sync = await connect(None, "/ws/sync/")
    assert (await sync.receive_json_from(timeout=5))["type"] == "hello"
    for _ in range(4):
        await sync.send_to(text_data="{")
        assert (await sync.receive_json_from(timeout=5))["code"] == "bad_json"
    assert (await sync.receive_output(timeout=5))["code"] == 1008
    await sync.disconnect(code=1008)


async def test_rate_limit_rejects_explicitly_and_drops_nothing(
    catalog, settings, private_layer
):
    user, session = await new_session("fast")
    comm = await open_recs(session)
    sent, acked, limited = 60, [], []
    started = time.monotonic()
    for n in range(sent):
        await comm.send_to(text_data=event_frame(catalog.active[n % 20], f"ev-{n}"))
        answer = await comm.receive_json_from(timeout=10)
        if answer["type"] == "ack":
            assert answer["id"] == f"ev-{n}"
            assert (await comm.receive_json_from(timeout=10))[
                "type"
            ] == "recommendations"
            acked.append(answer["id"])
        else:
            assert answer["code"] == "rate_limited", answer
            assert answer["id"] == f"ev-{n}"
            assert (
                0 < answer["retry_after"] <= 1 / settings.WS_EVENT_RATE_PER_SEC + 1e-3
            )
            limited.append(answer)
    elapsed = time.monotonic() - started
    assert len(acked) + len(limited) == sent
    assert limited, "60 back-to-back events must exceed a burst of 20"
    assert len(acked) >= settings.WS_EVENT_BURST
    assert (
        len(acked)
        <= settings.WS_EVENT_BURST + settings.WS_EVENT_RATE_PER_SEC * elapsed + 1
    )
    # Exactly the acked events are stored: none dropped silently, none extra.
    assert await stored_ids(user) == set(acked)
    # Waiting the hinted time is enough.
    await comm.receive_nothing(timeout=limited[-1]["retry_after"] + 0.05)
    await comm.send_to(text_data=event_frame(catalog.active[0], "after-wait"))
    assert await comm.receive_json_from(timeout=10) == {
        "type": "ack",
        "id": "after-wait",
    }
    await comm.disconnect()


async def test_per_user_bucket_spans_the_users_sockets(
    catalog, settings, private_layer
):
    settings.WS_EVENT_BURST = 1000  # only the per-user bucket can refuse here
    settings.WS_EVENT_RATE_PER_SEC = 1000
    _, session = await new_session("many-tabs")
    tabs = [await open_recs(session) for _ in range(3)]
    counts = {"ack": 0, "rate_limited": 0}
    started = time.monotonic()
    for n in range(90):
        tab = tabs[n % 3]
        await tab.send_to(text_data=event_frame(catalog.active[n % 20], f"t-{n}"))
        answer = await tab.receive_json_from(timeout=10)
        while answer["type"] == "recommendations":  # another tab's list, via the layer
            answer = await tab.receive_json_from(timeout=10)
        if answer["type"] == "ack":
            counts["ack"] += 1
        else:
            assert answer["code"] == "rate_limited"
            counts["rate_limited"] += 1
    elapsed = time.monotonic() - started
    for tab in tabs:  # the other tabs get each new list over the layer
        while not await tab.receive_nothing(timeout=0.2):
            assert (await tab.receive_json_from())["type"] == "recommendations"
        await tab.disconnect()
    assert counts["ack"] + counts["rate_limited"] == 90
    burst, rate = settings.WS_USER_EVENT_BURST, settings.WS_USER_EVENT_RATE_PER_SEC
    assert burst <= counts["ack"] <= burst + rate * elapsed + 1


async def test_socket_cap_per_user_closes_4429(catalog, settings, private_layer):
    settings.WS_MAX_SOCKETS_PER_USER = 3
    _, session = await new_session("hoarder")
    tabs = [await open_recs(session) for _ in range(3)]
    extra = await connect(session)
    assert await extra.receive_output(timeout=5) == {
        "type": "websocket.close",
        "code": 4429,
    }
    await extra.disconnect(code=4429)
    # Another user is not affected by this user's cap.
    other = await open_recs((await new_session("other"))[1])
    await other.disconnect()
    # Closing a tab frees its slot.
    await tabs.pop().disconnect()
    tabs.append(await open_recs(session))
    for tab in tabs:
        await tab.disconnect()
    again = await open_recs(session)
    await again.disconnect()
    assert json.dumps(settings.WS_MAX_SOCKETS_PER_USER)
