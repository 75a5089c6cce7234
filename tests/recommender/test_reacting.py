"""Issue 12 §4 on the live socket: every click reshapes the very next pushed list.

A shopper of the demo shop clicks items that have behavioural neighbours, in
different departments and with different actions; after each one the list
pushed next must differ from the one before and at least 3 of its 10 items
must name the clicked item in ``because`` -- no older item keeps the list.
Real parts: ``manage.py serve``, PostgreSQL, Redis, a WebSocket client.
"""

from io import StringIO

import numpy as np
import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from recommender.engine import Behaviour
from recommender.models import FittedModel, Item
from tests.conftest import login
from tests.support.recs_client import event_frame
from tests.support.sockets import RECS_PATH, open_socket, recv_type

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.redis,
    pytest.mark.postgres,
]

PASSWORD = "reacting-secret-pw"


def _linked_items_by_department(count: int) -> list[int]:
    """Return ``count`` items, each from another department, with the most links."""
    record = FittedModel.objects.order_by("-id").first()
    behaviour = Behaviour.from_bytes(bytes(record.data))
    links = np.diff(behaviour.neighbours.indptr)
    ranked = behaviour.item_ids[np.argsort(-links, kind="stable")].tolist()
    department = dict(Item.objects.values_list("id", "category_id"))
    picks: list[int] = []
    used: set[int] = set()
    for item in ranked:
        if department[item] not in used:
            picks.append(item)
            used.add(department[item])
        if len(picks) == count:
            break
    assert len(picks) == count, "the demo shop has too few linked departments"
    return picks


def test_each_click_leads_the_next_pushed_list(live_servers):
    call_command("seed_demo", "--items", "400", "--users", "80", stdout=StringIO())
    get_user_model().objects.create_user("clicker", password=PASSWORD)
    clicks = list(
        zip(
            _linked_items_by_department(4),
            ["view", "like", "cart", "view"],
            strict=True,
        )
    )
    server = live_servers()
    session = login(server.http_url, "clicker", PASSWORD)

    with open_socket(server, RECS_PATH, session) as ws:
        shown = recv_type(ws, "recommendations")
        for n, (item, action) in enumerate(clicks):
            ws.send(event_frame(item, f"click-{n}", action))
            assert recv_type(ws, "ack")["id"] == f"click-{n}"
            pushed = recv_type(ws, "recommendations")
            assert pushed["version"] > shown["version"]
            ids = [entry["id"] for entry in pushed["items"]]
            assert len(ids) == 10
            assert ids != [entry["id"] for entry in shown["items"]], (
                f"{action} of {item} left the list unchanged"
            )
            assert item not in ids
            led = [entry["id"] for entry in pushed["items"] if item in entry["because"]]
            assert len(led) >= 3, (
                f"after the {action} of {item}, only {len(led)} items name it: "
                f"{pushed['items']}"
            )
            shown = pushed
