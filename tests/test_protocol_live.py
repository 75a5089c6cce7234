"""The wire contract, end to end: real WebSocket clients against live daphne processes.

Runs on the real parts: PostgreSQL shared by every process, Redis as the
channel layer, ``manage.py serve`` as the server and ``manage.py shell`` as a
third process writing to the catalog.
"""

import json

import pytest
from django.contrib.auth import get_user_model
from websockets.sync.client import connect

from tests.conftest import login, manage, recv_json
from tests.factories import catalog

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.redis,
    pytest.mark.postgres,
]


def test_event_is_acked_and_pushed_then_a_change_from_another_process_arrives(
    live_servers,
):
    items = catalog(30)
    get_user_model().objects.create_user("alice", password="alice-secret-pw")
    server = live_servers()
    session = login(server.http_url, "alice", "alice-secret-pw")
    headers = {"Cookie": f"sessionid={session}"}

    with connect(
        f"{server.ws_url}/ws/recommendations/",
        origin=server.origin,
        additional_headers=headers,
    ) as recs:
        first = recv_json(recs)
        assert first["type"] == "recommendations"
        assert first["items"], "a new user gets cold-start recommendations"
        recs.send(
            json.dumps(
                {"type": "event", "action": "view", "item": items[3].pk, "id": "c-1"}
            )
        )
        assert recv_json(recs) == {"type": "ack", "id": "c-1"}
        pushed = recv_json(recs)
        assert pushed["type"] == "recommendations"
        assert pushed["version"] > first["version"]
        assert items[3].pk not in [entry["id"] for entry in pushed["items"]]
        assert all(entry["reasons"] for entry in pushed["items"])

    with connect(f"{server.ws_url}/ws/sync/", origin=server.origin) as sync:
        hello = recv_json(sync)
        assert hello["type"] == "hello"
        manage(
            "shell",
            "-c",
            "from recommender.models import Item; "
            f"i = Item.objects.get(pk={items[5].pk}); i.title = 'Renamed elsewhere'; i.save()",
        )
        change = recv_json(sync)
        while change["type"] == "heartbeat":
            change = recv_json(sync)
        assert change["type"] == "change"
        assert change["seq"] == hello["seq"] + 1
        assert change["op"] == "upsert"
        assert change["id"] == items[5].pk
        assert change["data"]["title"] == "Renamed elsewhere"


def test_permessage_deflate_is_negotiated_and_messages_round_trip(live_servers):
    items = catalog(40)
    get_user_model().objects.create_user("zed", password="zed-secret-pw")
    server = live_servers()
    session = login(server.http_url, "zed", "zed-secret-pw")
    with connect(
        f"{server.ws_url}/ws/recommendations/",
        origin=server.origin,
        additional_headers={"Cookie": f"sessionid={session}"},
        compression="deflate",
    ) as recs:
        extensions = recs.response.headers.get("Sec-WebSocket-Extensions", "")
        assert "permessage-deflate" in extensions
        first = recv_json(recs)
        assert first["type"] == "recommendations" and len(first["items"]) == 10
        for n in range(3):
            recs.send(
                json.dumps(
                    {
                        "type": "event",
                        "action": "like",
                        "item": items[n].pk,
                        "id": f"z{n}",
                    }
                )
            )
            assert recv_json(recs) == {"type": "ack", "id": f"z{n}"}
            assert recv_json(recs)["type"] == "recommendations"
    with connect(
        f"{server.ws_url}/ws/sync/", origin=server.origin, compression=None
    ) as plain:
        assert plain.response.headers.get("Sec-WebSocket-Extensions") is None
        assert recv_json(plain)["type"] == "hello"
