"""``/ws/recommendations/`` with WebsocketCommunicator: auth, events, pushes, isolation."""

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import Client

from recommender.models import BrowsingEvent
from recsite.asgi import application
from tests.factories import catalog, session_cookie, ws_headers

pytestmark = pytest.mark.django_db(transaction=True)

PATH = "/ws/recommendations/"


async def open_socket(cookie: bytes | None) -> tuple[WebsocketCommunicator, dict]:
    communicator = WebsocketCommunicator(application, PATH, headers=ws_headers(cookie))
    connected, _ = await communicator.connect()
    assert connected
    first = await communicator.receive_json_from(timeout=10)
    return communicator, first


async def setup_user(name: str = "alice", n_items: int = 24):
    items = await database_sync_to_async(catalog)(n_items)
    user_id, cookie = await database_sync_to_async(session_cookie)(name)
    return items, user_id, cookie


async def test_a_socket_without_any_session_is_closed_with_4401():
    communicator = WebsocketCommunicator(application, PATH, headers=ws_headers())
    connected, _ = await communicator.connect()
    assert connected
    assert await communicator.receive_output(timeout=5) == {
        "type": "websocket.close",
        "code": 4401,
    }


async def test_a_cookie_naming_no_stored_session_is_closed_with_4401():
    communicator = WebsocketCommunicator(
        application,
        PATH,
        headers=ws_headers(b"sessionid=abcdefghijklmnopqrstuvwxyz012345"),
    )
    await communicator.connect()
    assert await communicator.receive_output(timeout=5) == {
        "type": "websocket.close",
        "code": 4401,
    }


async def test_connect_sends_the_list_then_an_event_is_acked_and_pushed():
    items, _user_id, cookie = await setup_user()
    socket, first = await open_socket(cookie)
    assert first["type"] == "recommendations"
    assert len(first["items"]) == 10
    assert all(entry["reasons"] and entry["title"] for entry in first["items"])
    await socket.send_json_to(
        {"type": "event", "action": "like", "item": items[4].pk, "id": "e1"}
    )
    assert await socket.receive_json_from(timeout=5) == {"type": "ack", "id": "e1"}
    pushed = await socket.receive_json_from(timeout=5)
    assert pushed["type"] == "recommendations"
    assert pushed["version"] == first["version"] + 1
    assert items[4].pk not in [entry["id"] for entry in pushed["items"]], (
        "seen items excluded"
    )
    await socket.disconnect()


async def test_a_resent_event_is_acked_again_but_stored_once():
    items, user_id, cookie = await setup_user()
    socket, _ = await open_socket(cookie)
    for _ in range(2):
        await socket.send_json_to(
            {"type": "event", "action": "view", "item": items[1].pk, "id": "same"}
        )
        assert await socket.receive_json_from(timeout=5) == {
            "type": "ack",
            "id": "same",
        }
        await socket.receive_json_from(timeout=5)
    count = await database_sync_to_async(
        BrowsingEvent.objects.filter(user_id=user_id).count
    )()
    assert count == 1
    await socket.disconnect()


async def test_every_tab_of_the_user_gets_the_new_list_and_other_users_nothing():
    items, _alice_id, alice = await setup_user("alice")
    _, bob = await database_sync_to_async(session_cookie)("bob")
    tab1, _ = await open_socket(alice)
    tab2, _ = await open_socket(alice)
    other, _ = await open_socket(bob)
    await tab1.send_json_to(
        {"type": "event", "action": "cart", "item": items[2].pk, "id": "x"}
    )
    assert (await tab1.receive_json_from(timeout=5))["type"] == "ack"
    pushed = await tab1.receive_json_from(timeout=5)
    assert await tab2.receive_json_from(timeout=5) == pushed
    assert await other.receive_nothing(timeout=0.5)
    assert await tab1.receive_nothing(timeout=0.2), "the sender gets its list once"
    for socket in (tab1, tab2, other):
        await socket.disconnect()


async def test_a_user_field_in_the_frame_is_ignored():
    items, alice_id, alice = await setup_user("alice")
    bob_id, _ = await database_sync_to_async(session_cookie)("bob")
    socket, _ = await open_socket(alice)
    await socket.send_json_to(
        {
            "type": "event",
            "action": "view",
            "item": items[0].pk,
            "id": "u",
            "user": bob_id,
        }
    )
    assert (await socket.receive_json_from(timeout=5))["type"] == "ack"
    owners = await database_sync_to_async(
        lambda: list(BrowsingEvent.objects.values_list("user_id", flat=True))
    )()
    assert owners == [alice_id]
    await socket.disconnect()


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ("{nope", "bad_json"),
        ('{"type":"event","action":"view","item":1}', "bad_message"),
        ('{"type":"event","action":"teleport","item":1,"id":"a"}', "bad_message"),
        ('{"type":"event","action":"view","item":"1","id":"a"}', "bad_message"),
        ('{"type":"event","action":"view","item":1,"id":"a","extra":1}', "bad_message"),
        ('{"type":"event","action":"view","item":NaN,"id":"a"}', "bad_message"),
        ('{"type":"event","action":"view","item":1e999,"id":"a"}', "bad_message"),
        (
            '{"type":"event","action":"view","item":99999999999999999999999,"id":"a"}',
            "bad_message",
        ),
        ('{"type":"event","action":"view","item":987654,"id":"a"}', "unknown_item"),
        ('{"type":"event","id":"' + "x" * 5000 + '"}', "too_large"),
    ],
)
async def test_bad_frames_get_the_right_error_code_and_the_socket_stays_open(
    frame, code
):
    items, _, cookie = await setup_user()
    socket, _ = await open_socket(cookie)
    await socket.send_to(text_data=frame)
    answer = await socket.receive_json_from(timeout=5)
    assert answer["type"] == "error"
    assert answer["code"] == code
    assert answer["message"]
    await socket.send_json_to(
        {"type": "event", "action": "view", "item": items[0].pk, "id": "ok"}
    )
    assert await socket.receive_json_from(timeout=5) == {"type": "ack", "id": "ok"}
    await socket.disconnect()


async def test_errors_echo_the_client_id_when_it_can_be_read():
    _, _, cookie = await setup_user()
    socket, _ = await open_socket(cookie)
    await socket.send_json_to(
        {"type": "event", "action": "view", "item": 424242, "id": "e-9"}
    )
    answer = await socket.receive_json_from(timeout=5)
    assert (answer["code"], answer["id"]) == ("unknown_item", "e-9")
    await socket.send_to(bytes_data=b"\x00\x01")
    assert (await socket.receive_json_from(timeout=5))["code"] == "bad_message"
    await socket.disconnect()


async def test_a_deactivated_item_is_retracted_from_the_shown_list():
    items, _, cookie = await setup_user()
    socket, first = await open_socket(cookie)
    shown_id = first["items"][0]["id"]

    @database_sync_to_async
    def deactivate() -> None:
        item = next(item for item in items if item.pk == shown_id)
        item.active = False
        item.save()

    await deactivate()
    pushed = await socket.receive_json_from(timeout=5)
    assert pushed["type"] == "recommendations"
    assert pushed["version"] > first["version"]
    assert shown_id not in [entry["id"] for entry in pushed["items"]]
    await socket.disconnect()


async def test_an_anonymous_visitor_gets_lists_and_keeps_their_history_on_login():
    items = await database_sync_to_async(catalog)(24)

    @database_sync_to_async
    def visit() -> tuple[Client, bytes]:
        client = Client()
        assert client.get("/").status_code == 200
        return client, f"sessionid={client.cookies['sessionid'].value}".encode()

    browser, cookie = await visit()
    socket, first = await open_socket(cookie)
    assert first["type"] == "recommendations" and first["items"]
    await socket.send_json_to(
        {"type": "event", "action": "like", "item": items[5].pk, "id": "a1"}
    )
    assert (await socket.receive_json_from(timeout=5))["type"] == "ack"
    anonymous = await socket.receive_json_from(timeout=5)
    await socket.disconnect()

    @database_sync_to_async
    def log_in() -> tuple[int, bytes]:
        from django.contrib.auth import get_user_model

        user = get_user_model().objects.create_user("carol", password="carol-pw-123456")
        assert browser.login(username="carol", password="carol-pw-123456")
        return user.pk, f"sessionid={browser.cookies['sessionid'].value}".encode()

    user_id, cookie = await log_in()
    socket, after = await open_socket(cookie)
    assert after["version"] > anonymous["version"], "no jump back to an older list"
    history = await database_sync_to_async(
        lambda: list(
            BrowsingEvent.objects.filter(user_id=user_id).values_list(
                "item_id", flat=True
            )
        )
    )()
    assert history == [items[5].pk]
    assert items[5].pk not in [entry["id"] for entry in after["items"]]
    await socket.disconnect()


async def test_an_operator_recompute_reaches_every_user_with_their_own_list():
    from recommender.services.recompute import users_recompute

    items, ann, ann_cookie = await setup_user("ann")
    bob, bob_cookie = await database_sync_to_async(session_cookie)("bob")
    ann_socket, ann_first = await open_socket(ann_cookie)
    bob_socket, bob_first = await open_socket(bob_cookie)
    await database_sync_to_async(BrowsingEvent.objects.create)(
        user_id=ann, item=items[0], action="purchase", weight=4.0
    )
    # Ann's purchase is in the database only: the recompute must read it.
    await database_sync_to_async(users_recompute)(user_ids=[ann, bob])
    ann_new = await ann_socket.receive_json_from(timeout=5)
    bob_new = await bob_socket.receive_json_from(timeout=5)
    assert ann_new["version"] == ann_first["version"] + 1
    assert bob_new["version"] == bob_first["version"] + 1
    assert items[0].pk not in {entry["id"] for entry in ann_new["items"]}
    assert await ann_socket.receive_nothing(timeout=0.2)
    assert await bob_socket.receive_nothing(timeout=0.2)
    await ann_socket.disconnect()
    await bob_socket.disconnect()


async def test_a_list_pushed_by_another_process_makes_the_history_read_again():
    from datetime import timedelta

    from channels.layers import get_channel_layer
    from django.utils import timezone

    from recommender import messages
    from recommender.services.live import live

    items, ann, cookie = await setup_user("ann")
    socket, _ = await open_socket(cookie)
    await socket.send_json_to(
        {"type": "event", "action": "view", "item": items[0].pk, "id": "a1"}
    )
    await socket.receive_json_from(timeout=5)  # ack
    await socket.receive_json_from(timeout=5)  # the list; Ann's history is cached
    # Another process stores an event with an old timestamp (a merged
    # visitor's history), which a "newer than" read of the cache cannot see,
    # and pushes Ann a list.
    await database_sync_to_async(BrowsingEvent.objects.create)(
        user_id=ann,
        item=items[9],
        action="like",
        weight=2.5,
        created=timezone.now() - timedelta(days=2),
    )
    seen = await database_sync_to_async(live.histories.histories)([ann])
    assert items[9].pk not in seen[ann].item_ids.tolist()
    await get_channel_layer().group_send(
        messages.user_group(ann),
        messages.layer_recs(text="{}", version=0, origin=None, process="elsewhere"),
    )
    assert await socket.receive_nothing(timeout=0.3)  # an older version: not shown
    seen = await database_sync_to_async(live.histories.histories)([ann])
    assert seen[ann].item_ids.tolist() == [items[9].pk, items[0].pk]
    await socket.disconnect()


async def test_an_api_event_reaches_the_users_socket_and_a_resend_pushes_nothing():
    import json as jsonlib

    from django.test import Client as HttpClient

    from recommender.services.tokens import token_create

    items, _user_id, cookie = await setup_user("ivy")
    issued = await database_sync_to_async(token_create)(username="ivy", name="shop")
    socket, first = await open_socket(cookie)

    def post(event_id: str) -> dict:
        response = HttpClient().post(
            "/api/events/",
            data=jsonlib.dumps(
                {"user": "ivy", "item": items[6].pk, "action": "like", "id": event_id}
            ),
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Bearer {issued.token}",
        )
        assert response.status_code == 202, response.content
        return response.json()

    accepted = await database_sync_to_async(post)("api-1")
    pushed = await socket.receive_json_from(timeout=5)
    assert pushed["version"] == accepted["version"] == first["version"] + 1
    assert items[6].pk not in {entry["id"] for entry in pushed["items"]}
    again = await database_sync_to_async(post)("api-1")
    assert (again["status"], again["version"]) == ("duplicate", pushed["version"])
    assert await socket.receive_nothing(timeout=0.5)
    await socket.disconnect()
