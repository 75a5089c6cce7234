"""The Python client's RecommendationsClient against a live server (PostgreSQL + Redis).

It logs in through the site's login form, sends events that are acked and
followed by a newer list, resends an unacked event after the socket drops
(stored once), and reports refusals and bad sessions as exceptions.
"""

import asyncio
import subprocess
import sys

import pytest
from django.contrib.auth import get_user_model
from recsite_client import (
    EventRejected,
    NotAuthenticated,
    RecommendationsClient,
)

from recommender.models import BrowsingEvent
from tests.factories import catalog
from tests.support.accounts import login
from tests.support.env import ROOT

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.redis,
    pytest.mark.postgres,
]

WAIT_SECS = 20


async def next_list(lists):
    return await asyncio.wait_for(anext(lists), WAIT_SECS)


def test_an_event_is_acked_then_a_newer_list_arrives(live_servers):
    items = catalog(30)
    get_user_model().objects.create_user("alice", password="alice-secret-pw")
    server = live_servers()

    async def scenario() -> None:
        async with RecommendationsClient(
            server.http_url, username="alice", password="alice-secret-pw"
        ) as recs:
            lists = aiter(recs)
            first = await next_list(lists)
            assert first.items, "a new user gets cold-start recommendations"

            event_id = await asyncio.wait_for(
                recs.send_event("like", items[3].pk), WAIT_SECS
            )
            assert event_id.startswith("py-")
            pushed = await next_list(lists)
            assert pushed.version > first.version
            assert items[3].pk not in [entry.id for entry in pushed.items]
            assert all(entry.reasons for entry in pushed.items)

            with pytest.raises(EventRejected) as refused:
                await asyncio.wait_for(recs.send_event("view", 10_000_000), WAIT_SECS)
            assert refused.value.code == "unknown_item"

    asyncio.run(scenario())
    stored = BrowsingEvent.objects.filter(user__username="alice")
    assert list(stored.values_list("item_id", "action")) == [(items[3].pk, "like")]


def test_an_event_sent_across_a_dropped_socket_is_stored_once(live_servers):
    items = catalog(30)
    get_user_model().objects.create_user("bob", password="bob-secret-pw")
    server = live_servers()
    session = login(server.http_url, "bob", "bob-secret-pw")

    async def scenario() -> None:
        async with RecommendationsClient(server.http_url, session_id=session) as recs:
            lists = aiter(recs)
            await next_list(lists)
            # The socket is cut right after the frame goes out: whether or
            # not the server got it, the client sends it again on reconnect.
            sending = asyncio.create_task(
                recs.send_event("cart", items[5].pk, event_id="bob-cart-1")
            )
            await asyncio.sleep(0)
            recs.drop()
            assert await asyncio.wait_for(sending, WAIT_SECS) == "bob-cart-1"
            assert recs.connects >= 2
            newest = await next_list(lists)
            assert newest.version > 0

    asyncio.run(scenario())
    assert BrowsingEvent.objects.filter(client_id="bob-cart-1").count() == 1


def test_events_over_the_rate_limit_are_resent_until_each_is_stored_once(
    live_servers,
):
    items = catalog(30)
    get_user_model().objects.create_user("dan", password="dan-secret-pw")
    server = live_servers(WS_EVENT_RATE_PER_SEC="4", WS_EVENT_BURST="2")

    async def scenario() -> None:
        async with RecommendationsClient(
            server.http_url, username="dan", password="dan-secret-pw"
        ) as recs:
            sent = await asyncio.wait_for(
                asyncio.gather(
                    *(recs.send_event("view", item.pk) for item in items[:10])
                ),
                WAIT_SECS,
            )
            assert len(set(sent)) == 10
            assert recs.retries > 0, "the server rate-limited the burst"

    asyncio.run(scenario())
    stored = BrowsingEvent.objects.filter(user__username="dan")
    assert sorted(stored.values_list("item_id", flat=True)) == sorted(
        item.pk for item in items[:10]
    )


def test_a_session_the_server_does_not_know_is_not_authenticated(live_servers):
    server = live_servers()

    async def scenario() -> None:
        with pytest.raises(NotAuthenticated):
            await RecommendationsClient(
                server.http_url, username="nobody", password="wrong-password"
            ).start()
        async with RecommendationsClient(
            server.http_url, session_id="no-such-session"
        ) as recs:
            with pytest.raises(NotAuthenticated):
                await asyncio.wait_for(anext(aiter(recs)), WAIT_SECS)
            with pytest.raises(NotAuthenticated):
                await recs.send_event("view", 1)

    asyncio.run(scenario())


def test_the_event_sender_example_runs_against_the_server(live_servers):
    items = catalog(30)
    get_user_model().objects.create_user("carol", password="carol-secret-pw")
    server = live_servers()
    script = ROOT / "clients" / "python" / "examples" / "send_events.py"
    argv = [sys.executable, str(script), server.http_url, "carol", "carol-secret-pw"]
    done = subprocess.run(
        [*argv, str(items[2].pk), "--action", "like"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert f"like {items[2].pk}: acked" in done.stdout
    assert done.stdout.count("list v") == 2, done.stdout
    assert BrowsingEvent.objects.filter(user__username="carol").count() == 1
