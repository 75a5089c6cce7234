"""Shapes on ``/ws/sync/``, end to end: real websockets clients against a live server.

Each test writes through the ORM in the test process (PostgreSQL), the change
reaches the server process through Redis, and a client reads what its shape
lets through. "Nothing else arrived" is shown by order, not by waiting: a
marker change written last in the shape must be the next frame.
"""

import json

import httpx
import pytest

from recommender.models import Item
from sync.models import Change
from sync.selectors import seq_latest
from tests.factories import catalog
from tests.support.sockets import SYNC_PATH, open_socket, recv_json, recv_type

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.redis,
    pytest.mark.postgres,
]


def next_change(ws) -> dict:
    """Return the next ``change`` frame, skipping heartbeats."""
    return recv_type(ws, "change")


def subscribe(ws, shape: dict, *, after: int | None, request_id: str = "s1") -> list:
    """Send ``subscribe``; return the frames up to and including ``subscribed``."""
    frame = {"type": "subscribe", "shape": {"model": "item", **shape}, "id": request_id}
    if after is not None:
        frame["after"] = after
    ws.send(json.dumps(frame))
    frames = []
    while True:
        message = recv_json(ws)
        if message["type"] == "heartbeat":
            continue
        frames.append(message)
        if message["type"] == "subscribed":
            return frames


def retitle(item: Item, title: str) -> int:
    item.title = title
    item.save()
    return seq_latest()


def reprice(item: Item, price: float) -> int:
    item.price = price
    item.save()
    return seq_latest()


def test_two_sockets_on_two_categories_see_only_their_own(live_servers):
    items = catalog(12)  # Books: 0,3,6,9  Games: 1,4,7,10  Music: 2,5,8,11
    server = live_servers()
    page = httpx.get(f"{server.http_url}/api/items/?category=books", timeout=10).json()
    assert {row["id"] for row in page["items"]} == {items[i].pk for i in (0, 3, 6, 9)}
    start = page["seq"]
    with (
        open_socket(server, SYNC_PATH) as books,
        open_socket(server, SYNC_PATH) as games,
        open_socket(server, SYNC_PATH) as everything,
    ):
        for ws in (books, games, everything):
            assert recv_json(ws)["type"] == "hello"
        assert subscribe(books, {"category": "books"}, after=start) == [
            {"type": "subscribed", "seq": start, "id": "s1"}
        ]
        games_category = items[1].category_id
        assert subscribe(games, {"category": games_category}, after=start) == [
            {"type": "subscribed", "seq": start, "id": "s1"}
        ]

        music_seq = retitle(items[2], "A music change")
        books_seq = retitle(items[0], "A books change")
        games_seq = retitle(items[1], "A games change")
        marker_seq = retitle(items[3], "Books again")

        first = next_change(books)
        assert first["seq"] == books_seq and first["id"] == items[0].pk
        assert first["op"] == "upsert" and first["prev"] == start
        assert first["data"]["title"] == "A books change"
        second = next_change(books)
        assert (second["seq"], second["id"], second["prev"]) == (
            marker_seq,
            items[3].pk,
            books_seq,
        )

        only = next_change(games)
        assert (only["seq"], only["id"], only["prev"]) == (
            games_seq,
            items[1].pk,
            start,
        )

        # A socket without a subscription still gets every change, unchanged.
        seen = [next_change(everything) for _ in range(4)]
        assert [c["seq"] for c in seen] == [music_seq, books_seq, games_seq, marker_seq]
        assert all("prev" not in c and c["op"] == "upsert" for c in seen)


def test_rows_leave_and_enter_a_price_range_and_rows_outside_stay_silent(
    live_servers,
):
    items = catalog(12)  # Books prices: 5, 8, 11, 14
    server = live_servers()
    with open_socket(server, SYNC_PATH) as ws:
        hello = recv_json(ws)
        shape = {"category": "books", "max_price": 10}
        subscribe(ws, shape, after=hello["seq"])

        out_seq = reprice(items[0], 50)
        change = next_change(ws)
        assert change == {
            "type": "change",
            "seq": out_seq,
            "model": "item",
            "op": "leave",
            "id": items[0].pk,
            "data": None,
            "prev": hello["seq"],
        }
        # Outside before and after: not sent (the next frame is the marker).
        reprice(items[0], 60)
        reprice(items[6], 12)  # 11 -> 12, outside the range throughout
        in_seq = reprice(items[0], 9.5)
        change = next_change(ws)
        assert (change["op"], change["seq"], change["prev"]) == (
            "upsert",
            in_seq,
            out_seq,
        )
        assert change["data"]["price"] == 9.5

        items[3].active = False  # price 8: in the shape until deactivated
        items[3].save()
        gone = next_change(ws)
        assert (gone["op"], gone["id"]) == ("leave", items[3].pk)
        pk = items[0].pk
        items[0].delete()
        deleted = next_change(ws)
        assert (deleted["op"], deleted["id"], deleted["prev"]) == (
            "leave",
            pk,
            gone["seq"],
        )


def test_resume_replays_only_the_shapes_changes_and_an_old_resume_resets(
    live_servers,
):
    items = catalog(9)
    server = live_servers()
    start = seq_latest()
    retitle(items[1], "games, not shown")
    first = retitle(items[0], "books one")
    retitle(items[2], "music, not shown")
    second = reprice(items[3], 99)  # leaves the shape
    latest = retitle(items[4], "games again")

    with open_socket(server, SYNC_PATH) as ws:
        recv_json(ws)
        frames = subscribe(ws, {"category": "books", "max_price": 50}, after=start)
        assert [(f["type"], f.get("op"), f["seq"], f.get("prev")) for f in frames] == [
            ("change", "upsert", first, start),
            ("change", "leave", second, first),
            ("subscribed", None, latest, None),
        ]
        ws.send(json.dumps({"type": "resume", "after": first}))
        assert recv_type(ws, "change")["seq"] == second
        assert recv_type(ws, "resumed") == {"type": "resumed", "seq": latest}

        Change.objects.filter(seq__lte=first).delete()  # pruned from the log
        frames = subscribe(ws, {"category": "books"}, after=start, request_id="s2")
        assert frames == [
            {"type": "reset", "seq": latest},
            {"type": "subscribed", "seq": latest, "id": "s2"},
        ]
        marker = retitle(items[6], "books after the reset")
        change = next_change(ws)
        assert (change["seq"], change["prev"]) == (marker, latest)


def test_a_socket_replaces_its_shape_and_bad_shapes_are_refused(live_servers):
    items = catalog(6)
    server = live_servers()
    with open_socket(server, SYNC_PATH) as ws:
        hello = recv_json(ws)
        subscribe(ws, {"category": "books"}, after=hello["seq"])
        frames = subscribe(ws, {"category": "games"}, after=None, request_id="s2")
        assert frames == [{"type": "subscribed", "seq": hello["seq"], "id": "s2"}]
        retitle(items[0], "books, no longer shown")
        games_seq = retitle(items[1], "games, now shown")
        change = next_change(ws)
        assert (change["id"], change["seq"]) == (items[1].pk, games_seq)

        for shape, reason in [
            ({"model": "item", "colour": "red"}, "unknown key"),
            ({"model": "order"}, "unknown model"),
            ({"model": "item", "min_price": "cheap"}, "wrong type"),
            ({"model": "item", "ids": list(range(501))}, "too many ids"),
        ]:
            ws.send(json.dumps({"type": "subscribe", "shape": shape, "id": "bad"}))
            error = recv_type(ws, "error")
            assert (error["code"], error["id"]) == ("bad_message", "bad"), reason

        # The refused frames left the shape as it was.
        marker = retitle(items[4], "games still shown")
        retitle(items[3], "books still hidden")
        change = next_change(ws)
        assert (change["seq"], change["prev"]) == (marker, games_seq)


def test_a_shape_of_ids_and_a_search_word(live_servers):
    items = catalog(6)
    server = live_servers()
    with open_socket(server, SYNC_PATH) as ws:
        hello = recv_json(ws)
        subscribe(
            ws, {"ids": [items[2].pk, items[4].pk], "q": "blu"}, after=hello["seq"]
        )
        retitle(items[2], "outside: its tags are green")
        shown = retitle(items[4], "Tagged blue, large")
        change = next_change(ws)
        assert (change["id"], change["seq"], change["op"]) == (
            items[4].pk,
            shown,
            "upsert",
        )
