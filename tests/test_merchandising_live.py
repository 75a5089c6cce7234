"""Placements, staff rules and experiments, end to end on live servers.

Real WebSocket clients against ``manage.py serve`` processes sharing
PostgreSQL and Redis; staff edit rules through the Django admin forms, as a
person does.
"""

import json
import time
from collections.abc import Callable

import httpx
import pytest
from django.contrib.auth import get_user_model
from websockets.sync.client import ClientConnection

from recommender.engine.experiments import assignment_point
from recommender.models import Category, Experiment, Impression, Item, Rule, Variant
from recommender.services.rules import experiment_salt
from tests.support.accounts import AdminSession, login
from tests.support.sockets import RECS_PATH, open_socket, recv_json

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.redis,
    pytest.mark.postgres,
]

DEPARTMENTS = ("Audio", "Books", "Garden", "Kitchen", "Toys")
#: What the issue promises: a saved rule reaches lists on screen within a second.
RULE_REACH_SECS = 1.0
#: Generous bound for the first frames (the server builds its engine lazily).
FIRST_FRAME_SECS = 20.0

Lists = dict[tuple[str, int | None], dict]


def _shop(per_department: int = 8) -> dict[str, list[Item]]:
    """Create items in five departments, the department in every item's tags too."""
    shop: dict[str, list[Item]] = {}
    for name in DEPARTMENTS:
        category = Category.objects.create(name=name)
        shop[name] = [
            Item.objects.create(
                title=f"{name} item {i}",
                category=category,
                tags=f"{name.lower()}, line{i % 2}",
                price=5 + i,
                rating=4.0,
            )
            for i in range(per_department)
        ]
    return shop


def _department_of(shop: dict[str, list[Item]]) -> dict[int, str]:
    return {item.pk: name for name, items in shop.items() for item in items}


def _read(ws: ClientConnection, lists: Lists, timeout: float) -> dict:
    """Read one frame; remember the latest list of each placement."""
    frame = recv_json(ws, timeout)
    if frame["type"] == "recommendations":
        lists[(frame.get("placement", "for_you"), frame.get("item"))] = frame
    return frame


def _until(
    ws: ClientConnection, lists: Lists, done: Callable[[Lists], bool], timeout: float
) -> float:
    """Read frames until ``done(lists)``; return the seconds it took."""
    started = time.monotonic()
    while not done(lists):
        left = timeout - (time.monotonic() - started)
        if left <= 0:
            raise AssertionError(f"not within {timeout} s; lists now: {lists}")
        try:
            _read(ws, lists, left)
        except TimeoutError:
            continue
    return time.monotonic() - started


def _watch(ws: ClientConnection, lists: Lists, placement: str, item=None) -> dict:
    frame = {"type": "watch", "placement": placement, "id": f"w-{placement}"}
    if item is not None:
        frame["item"] = item
    ws.send(json.dumps(frame))
    assert recv_json(ws, FIRST_FRAME_SECS) == {"type": "ack", "id": frame["id"]}
    listed = _read(ws, lists, FIRST_FRAME_SECS)
    assert listed["type"] == "recommendations", listed
    assert listed["placement"] == placement
    return listed


def _ids(frame: dict) -> list[int]:
    return [entry["id"] for entry in frame["items"]]


def _rule_form(**fields) -> dict:
    form = {
        "name": "rule",
        "kind": "exclude",
        "target": "all",
        "category": "",
        "tag": "",
        "price": "",
        "new_within_days": 30,
        "factor": "2",
        "position": 1,
        "cap": 3,
        "priority": 0,
        "placement": "",
        "variant": "",
        "active": "on",
    }
    form.update({key: value for key, value in fields.items() if value is not None})
    return form


def test_watched_lists_follow_staff_rules_within_a_second(live_servers):
    shop = _shop()
    department = _department_of(shop)
    User = get_user_model()
    User.objects.create_user("alice", password="alice-secret-pw")
    User.objects.create_user("bob", password="bob-secret-pw")
    User.objects.create_superuser("boss", password="boss-secret-pw")
    server = live_servers()
    anchor = shop["Garden"][0]

    with (
        open_socket(
            server, RECS_PATH, login(server.http_url, "alice", "alice-secret-pw")
        ) as alice,
        open_socket(
            server, RECS_PATH, login(server.http_url, "bob", "bob-secret-pw")
        ) as bob,
    ):
        seen_a: Lists = {}
        seen_b: Lists = {}
        assert _read(alice, seen_a, FIRST_FRAME_SECS)["placement"] == "for_you"
        assert _read(bob, seen_b, FIRST_FRAME_SECS)["placement"] == "for_you"
        similar = _watch(alice, seen_a, "similar", anchor.pk)
        assert similar["item"] == anchor.pk
        ids = _ids(similar)
        assert len(ids) == 10 and anchor.pk not in ids
        # Nobody has browsed yet: the item's department (shared tags) leads.
        assert {department[i] for i in ids[:5]} == {"Garden"}
        assert all(
            f"Similar to {anchor.title}" in entry["reasons"]
            for entry in similar["items"][:5]
        )
        _watch(bob, seen_b, "trending")

        staff = AdminSession(server.http_url, "boss", "boss-secret-pw")
        try:
            # Exclude a department: every open list drops it and stays full.
            garden = Category.objects.get(name="Garden").pk
            staff._post(
                "/admin/recommender/rule/add/",
                _rule_form(name="No garden", target="category", category=garden),
            )

            def no_garden(lists: Lists) -> bool:
                return len(lists) >= 2 and all(
                    len(frame["items"]) == 10
                    and all(department[i] != "Garden" for i in _ids(frame))
                    for frame in lists.values()
                )

            took = max(
                _until(alice, seen_a, no_garden, RULE_REACH_SECS),
                _until(bob, seen_b, no_garden, RULE_REACH_SECS),
            )
            assert took <= RULE_REACH_SECS

            # Pin one toy at position 3 of every list.
            toy = shop["Toys"][5]
            staff._post(
                "/admin/recommender/rule/add/",
                _rule_form(
                    name="Toy promo",
                    kind="pin",
                    target="items",
                    items=[toy.pk],
                    position=3,
                ),
            )

            def pinned(lists: Lists) -> bool:
                return all(
                    _ids(frame)[2] == toy.pk
                    and frame["items"][2]["reasons"][0] == "Promoted"
                    and len(frame["items"]) == 10
                    for frame in lists.values()
                )

            _until(alice, seen_a, pinned, RULE_REACH_SECS)
            _until(bob, seen_b, pinned, RULE_REACH_SECS)

            # At most two items of one department in any list.
            staff._post(
                "/admin/recommender/rule/add/",
                _rule_form(name="Variety", kind="cap", cap=2),
            )

            def capped(lists: Lists) -> bool:
                for frame in lists.values():
                    counts: dict[str, int] = {}
                    for i in _ids(frame):
                        counts[department[i]] = counts.get(department[i], 0) + 1
                    # Four departments left, two each, plus the pinned toy.
                    if max(counts.values()) > 2 or len(frame["items"]) != 8:
                        return False
                    if _ids(frame)[2] != toy.pk:
                        return False
                return True

            _until(alice, seen_a, capped, RULE_REACH_SECS)
            _until(bob, seen_b, capped, RULE_REACH_SECS)
        finally:
            staff.close()


def test_similar_over_http_and_unknown_items(live_servers):
    shop = _shop()
    get_user_model().objects.create_user("dora", password="dora-secret-pw")
    server = live_servers()
    session = login(server.http_url, "dora", "dora-secret-pw")
    anchor = shop["Books"][1]
    with httpx.Client(
        base_url=server.http_url, cookies={"sessionid": session}, timeout=20
    ) as client:
        listed = client.get(
            "/api/recommendations/", params={"placement": "similar", "item": anchor.pk}
        )
        assert listed.status_code == 200, listed.text
        body = listed.json()
        assert body["placement"] == "similar" and body["item"] == anchor.pk
        assert len(body["items"]) == 10
        missing = client.get(
            "/api/recommendations/", params={"placement": "similar", "item": 10**9}
        )
        assert missing.status_code == 404
        assert missing.json()["code"] == "unknown_item"
        default = client.get("/api/recommendations/")
        assert default.json()["placement"] == "for_you"
    with open_socket(server, RECS_PATH, session) as ws:
        seen: Lists = {}
        _read(ws, seen, FIRST_FRAME_SECS)
        ws.send(
            json.dumps(
                {"type": "watch", "placement": "similar", "item": 10**9, "id": "w"}
            )
        )
        error = recv_json(ws, FIRST_FRAME_SECS)
        assert error["type"] == "error" and error["code"] == "unknown_item"
        assert error["id"] == "w"
        ws.send(json.dumps({"type": "watch", "placement": "nearby", "id": "x"}))
        error = recv_json(ws, FIRST_FRAME_SECS)
        assert error["code"] == "bad_message" and error["id"] == "x"


def _users_in_each_arm(experiment: Experiment, prefix: str) -> tuple[int, int]:
    salt = experiment_salt(experiment.pk)
    found: dict[bool, int] = {}
    User = get_user_model()
    n = 0
    while len(found) < 2:
        user = User.objects.create_user(f"{prefix}{n}", password=f"{prefix}-pw-12345")
        n += 1
        found.setdefault(assignment_point(f"user-{user.pk}", salt) >= 0.5, user.pk)
    return found[False], found[True]


def test_variants_are_stable_across_processes_and_a_visitors_login(live_servers):
    shop = _shop()
    experiment = Experiment.objects.create(name="book-promo")
    control = Variant.objects.create(experiment=experiment, name="control", share=0.5)
    treated = Variant.objects.create(experiment=experiment, name="promo", share=0.5)
    promoted = shop["Books"][3]
    promo = Rule.objects.create(
        name="A book first for the treated arm",
        kind="pin",
        target="items",
        position=1,
        variant=treated,
    )
    promo.items.add(promoted)
    a, b = _users_in_each_arm(experiment, "arm")
    User = get_user_model()
    first, second = live_servers.many(2)

    lists_of: dict[int, list[list[int]]] = {a: [], b: []}
    for server in (first, second):
        for user_id in (a, b):
            username = User.objects.get(pk=user_id).username
            session = login(server.http_url, username, f"{username[:3]}-pw-12345")
            with open_socket(server, RECS_PATH, session) as ws:
                # A fresh list, scored by this process.
                ws.send(
                    json.dumps(
                        {
                            "type": "event",
                            "action": "view",
                            "item": shop["Audio"][len(lists_of[user_id])].pk,
                            "id": f"e-{len(lists_of[user_id])}",
                        }
                    )
                )
                seen: Lists = {}
                _read(ws, seen, FIRST_FRAME_SECS)
                assert recv_json(ws, FIRST_FRAME_SECS)["type"] == "ack"
                pushed = _read(ws, seen, FIRST_FRAME_SECS)
                lists_of[user_id].append(_ids(pushed))
    assert all(ids[0] != promoted.pk for ids in lists_of[a]), "control: no promo"
    assert all(ids[0] == promoted.pk for ids in lists_of[b]), (
        "the treated arm gets the promoted book first, in either process"
    )
    arms = dict(
        Impression.objects.filter(user_id__in=[a, b])
        .values_list("user_id", "variant_id")
        .distinct()
    )
    assert arms == {a: control.pk, b: treated.pk}

    # A visitor browses anonymously, then logs in to a new account whose own
    # key falls in the other arm: the visitor's arm carries over.
    with httpx.Client(base_url=second.http_url, timeout=20) as browser:
        assert browser.get("/").status_code == 200
        with open_socket(second, RECS_PATH, browser.cookies["sessionid"]) as ws:
            seen = {}
            _read(ws, seen, FIRST_FRAME_SECS)
        visitor = User.objects.filter(username__startswith="visitor-").get()
        visitor_arm = (
            assignment_point(f"user-{visitor.pk}", experiment_salt(experiment.pk))
            >= 0.5
        )
        n = 0
        while True:
            account = User.objects.create_user(f"new{n}", password="new-pw-123456")
            n += 1
            own = assignment_point(f"user-{account.pk}", experiment_salt(experiment.pk))
            if (own >= 0.5) != visitor_arm:
                break
        browser.get("/accounts/login/")
        response = browser.post(
            "/accounts/login/",
            data={
                "username": account.username,
                "password": "new-pw-123456",
                "csrfmiddlewaretoken": browser.cookies["csrftoken"],
            },
            headers={"Referer": f"{second.http_url}/accounts/login/"},
        )
        assert response.status_code == 302
        with open_socket(first, RECS_PATH, browser.cookies["sessionid"]) as ws:
            seen = {}
            _read(ws, seen, FIRST_FRAME_SECS)
            # A list scored now, in the other process, under the account's key.
            ws.send(
                json.dumps(
                    {
                        "type": "event",
                        "action": "view",
                        "item": shop["Kitchen"][0].pk,
                        "id": "after-login",
                    }
                )
            )
            assert recv_json(ws, FIRST_FRAME_SECS)["type"] == "ack"
            after = _read(ws, seen, FIRST_FRAME_SECS)
        assert (_ids(after)[0] == promoted.pk) == visitor_arm
