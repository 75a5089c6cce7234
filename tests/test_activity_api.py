"""GET /api/activity/: the session's stored events, for the dashboard's strip."""

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.utils import timezone

from recommender.models import BrowsingEvent
from tests.factories import catalog

pytestmark = pytest.mark.django_db


def test_a_visitor_without_history_gets_an_empty_list() -> None:
    response = Client().get("/api/activity/")
    assert response.status_code == 200
    assert response.json() == {"events": []}


def test_the_users_latest_events_newest_first_and_only_theirs() -> None:
    items = catalog(3)
    user_model = get_user_model()
    shopper = user_model.objects.create_user("act-shopper", password="x-12345678")
    other = user_model.objects.create_user("act-other", password="x-12345678")
    now = timezone.now()
    for n in range(15):
        BrowsingEvent.objects.create(
            user=shopper,
            item=items[n % 3],
            action="view" if n % 2 else "like",
            weight=1.0,
            client_id=f"c{n}",
            created=now - timedelta(minutes=15 - n),
        )
    BrowsingEvent.objects.create(
        user=other, item=items[0], action="cart", weight=1.0, client_id="x", created=now
    )
    client = Client()
    client.force_login(shopper)
    events = client.get("/api/activity/").json()["events"]
    assert [e["id"] for e in events] == [f"c{n}" for n in range(14, 2, -1)]
    assert events[0]["title"] == items[14 % 3].title
    assert events[0]["item"] == items[14 % 3].pk
    assert events[0]["action"] == "like"
