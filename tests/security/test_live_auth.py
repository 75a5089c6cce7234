"""Authentication and isolation at the edge: real clients against a live daphne.

Two real users log in through the login form; their sockets and HTTP calls go
through ``manage.py serve`` on the test PostgreSQL and Redis.
"""

import httpx
import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus

from recommender.models import BrowsingEvent, RecommendationSnapshot
from tests.security.conftest import (
    event_frame,
    login,
    make_catalog,
    make_user,
    private_prefix,
    recv_json,
)
from tests.support.sockets import open_socket

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.redis,
    pytest.mark.postgres,
]

# How long a socket must stay silent to count as "received nothing".
QUIET_SECS = 1.0


def assert_silent(ws) -> None:
    with pytest.raises(TimeoutError):
        message = ws.recv(timeout=QUIET_SECS)
        pytest.fail(f"expected nothing, got {message[:300]}")


def close_code(ws) -> int:
    with pytest.raises(ConnectionClosed) as closed:
        while True:
            ws.recv(timeout=10)
    return closed.value.rcvd.code


def test_handshake_checks_origin_and_session(live_servers):
    make_catalog()
    make_user("alice")
    server = live_servers(**private_prefix())
    session = login(server.http_url, "alice")

    for path in ("/ws/sync/", "/ws/recommendations/"):
        # Another site's page, and a client that sends no Origin at all.
        for origin in ("http://evil.example", "http://127.0.0.1.evil.example", None):
            with pytest.raises(InvalidStatus) as refused:
                open_socket(server, path, session, origin=origin)
            assert refused.value.response.status_code == 403, (path, origin)

    # No session, a forged one, a garbage one: accepted, then closed with 4401.
    for cookie in (None, "0" * 32, "x'; DROP TABLE--", "a" * 4000):
        with open_socket(server, "/ws/recommendations/", cookie) as ws:
            assert close_code(ws) == 4401, cookie

    # Anonymous sync is allowed; a logged-in user gets their list.
    with open_socket(server, "/ws/sync/") as ws:
        assert recv_json(ws)["type"] == "hello"
    with open_socket(server, "/ws/recommendations/", session) as ws:
        assert recv_json(ws)["type"] == "recommendations"


def test_users_never_see_or_drive_each_other(live_servers):
    cat = make_catalog()
    alice, bob = make_user("alice"), make_user("bob")
    server = live_servers(**private_prefix())
    alice_session = login(server.http_url, "alice")
    bob_session = login(server.http_url, "bob")

    with (
        open_socket(server, "/ws/recommendations/", alice_session) as a,
        open_socket(server, "/ws/recommendations/", bob_session) as b,
    ):
        a_first, b_first = recv_json(a), recv_json(b)
        assert a_first["type"] == b_first["type"] == "recommendations"

        # Bob's events push to Bob only.
        for n in range(3):
            b.send(event_frame(cat.active[n], f"bob-{n}"))
            assert recv_json(b) == {"type": "ack", "id": f"bob-{n}"}
            assert recv_json(b)["type"] == "recommendations"
        assert_silent(a)

        # Alice claims to be Bob and names Bob's group: the claim is ignored.
        a.send(
            event_frame(
                cat.active[5], "alice-as-bob", user=bob.pk, group=f"recs.user.{bob.pk}"
            )
        )
        assert recv_json(a) == {"type": "ack", "id": "alice-as-bob"}
        assert recv_json(a)["type"] == "recommendations"
        assert_silent(b)

    assert BrowsingEvent.objects.filter(user=alice, client_id="alice-as-bob").exists()
    assert not BrowsingEvent.objects.filter(user=bob, item_id=cat.active[5]).exists()
    bob_events = BrowsingEvent.objects.filter(user=bob).count()
    assert bob_events == 3

    with httpx.Client(base_url=server.http_url) as http:
        http.cookies.set("sessionid", alice_session)
        http.get("/accounts/login/")  # a CSRF cookie, as a page would have
        csrf = http.cookies["csrftoken"]
        body = {"user": bob.pk, "item": cat.active[7], "action": "purchase", "id": "x1"}
        # A session is not a bearer token, with or without a CSRF token.
        for headers in ({}, {"X-CSRFToken": csrf, "Referer": server.http_url + "/"}):
            response = http.post("/api/events/", json=body, headers=headers)
            assert response.status_code == 401, response.text
        # Session-authenticated POSTs need the CSRF token.
        response = http.post("/accounts/logout/")
        assert response.status_code == 403
        # The list is the session user's, whatever the query claims.
        for query in ("", f"?user={bob.pk}", f"?user_id={bob.pk}"):
            response = http.get(f"/api/recommendations/{query}")
            assert response.status_code == 200
            latest = RecommendationSnapshot.objects.filter(user=alice).latest("version")
            assert response.json()["version"] == latest.version
            assert [e["id"] for e in response.json()["items"]] == [
                e["id"] for e in latest.items
            ]
    assert BrowsingEvent.objects.filter(user=bob).count() == bob_events

    # Without a session the list is refused.
    assert httpx.get(f"{server.http_url}/api/recommendations/").status_code == 401
