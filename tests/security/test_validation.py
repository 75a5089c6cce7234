"""Targeted hostile frames that the fuzz run leaves to a dedicated test.

Each case here was found by fuzzing (or by reading ``parse_frame``) and pins
one answer down exactly; see docs/security.md for the fixes they ask for.
"""

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator

from recommender.models import BrowsingEvent
from recsite.asgi import application
from tests.security.conftest import event_frame, make_user, session_cookie, ws_headers

pytestmark = pytest.mark.django_db(transaction=True)


@sync_to_async
def new_session(username: str) -> tuple[object, str]:
    user = make_user(username)
    return user, session_cookie(user)


async def open_recs(session: str) -> WebsocketCommunicator:
    comm = WebsocketCommunicator(
        application, "/ws/recommendations/", headers=ws_headers(session)
    )
    assert (await comm.connect(timeout=10))[0]
    assert (await comm.receive_json_from(timeout=10))["type"] == "recommendations"
    return comm


async def test_nul_in_client_id_is_bad_message_and_the_socket_serves_on(
    catalog, private_layer
):
    """PostgreSQL cannot store NUL: the schema must refuse it before the database.

    Before the fix the frame reached ``event_record`` and failed there
    (``DataError``), which the consumer answered with ``unavailable`` and
    "retry with the same id" — an invitation to resend it forever.
    """
    user, session = await new_session("nul")
    comm = await open_recs(session)
    await comm.send_to(text_data=event_frame(catalog.active[0], "a\x00b"))
    answer = await comm.receive_json_from(timeout=10)
    assert answer["type"] == "error"
    assert answer["code"] == "bad_message", answer
    await comm.send_to(text_data=event_frame(catalog.active[0], "fine"))
    assert await comm.receive_json_from(timeout=10) == {"type": "ack", "id": "fine"}
    await comm.disconnect()
    count = await sync_to_async(BrowsingEvent.objects.filter(user=user).count)()
    assert count == 1


@pytest.mark.parametrize(
    ("label", "raw"),
    [
        ("deep nesting", "[" * 200 + "]" * 200),
        ("Infinity spelt as an overflowing float", "1e999"),
        ("huge integer", "9" * 2000),
    ],
)
async def test_hostile_values_in_ignored_fields_are_bad_message(
    label, raw, catalog, private_layer
):
    """``user`` and ``group`` are ignored, but not a place to smuggle what is refused elsewhere.

    The issue lists deep nesting, NaN/Infinity and huge integers as
    ``bad_message`` without exception; today ``user``/``group`` are typed
    ``Any`` and such frames are acked.
    """
    _user, session = await new_session("smuggler")
    comm = await open_recs(session)
    for field in ("user", "group"):
        frame = event_frame(catalog.active[0], f"{field}-x").replace(
            '"id"', f'"{field}": {raw}, "id"', 1
        )
        await comm.send_to(text_data=frame)
        answer = await comm.receive_json_from(timeout=10)
        assert answer["type"] == "error" and answer["code"] == "bad_message", (
            label,
            field,
            answer,
        )
    await comm.disconnect()
