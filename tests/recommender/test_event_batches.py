"""Group commit of socket events and the per-process history cache."""

import asyncio
import subprocess
import sys
import threading
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.test import override_settings
from django.utils import timezone

from recommender.models import BrowsingEvent, Impression, RecommendationSnapshot
from recommender.services.event_batches import Accepted, EventBatcher, Scored
from recommender.services.events import NewEvent, StoredEvent, UnknownItem
from recommender.services.ingest import Ingested, events_ingest
from recommender.services.live import live
from recommender.services.recommendations import recommendations_compute
from tests.conftest import ROOT
from tests.factories import catalog

pytestmark = pytest.mark.django_db(transaction=True)


def _users(n: int) -> list[int]:
    User = get_user_model()
    return [User.objects.create_user(f"batch{i}").pk for i in range(n)]


def _listed(message: dict) -> set[int]:
    return {entry["id"] for entry in message["items"]}


def test_one_batch_stores_each_event_once_and_answers_each_in_order() -> None:
    items = catalog(30)
    ann, bob, cid = _users(3)
    gone = items[5]
    gone.active = False
    gone.save()
    events = [
        NewEvent(ann, items[0].pk, "view", "a1"),
        NewEvent(bob, items[1].pk, "like", "b1"),
        NewEvent(ann, items[2].pk, "cart", "a2"),
        NewEvent(bob, items[1].pk, "like", "b1"),  # the same frame sent twice
        NewEvent(cid, gone.pk, "view", "c1"),  # an item that left the catalog
        NewEvent(cid, 999_999, "view", "c2"),  # an item that never existed
    ]

    outcomes = events_ingest(source="ws", events=events)

    assert [type(o).__name__ for o in outcomes] == [
        "tuple",
        "tuple",
        "tuple",
        "tuple",
        "UnknownItem",
        "UnknownItem",
    ]
    stored = [o[0] for o in outcomes[:4]]
    assert [s.created for s in stored] == [True, True, True, False]
    assert stored[3].event_id == stored[1].event_id, "the resend names the stored row"
    assert BrowsingEvent.objects.filter(user_id=ann).count() == 2
    assert BrowsingEvent.objects.filter(user_id=bob).count() == 1
    assert not BrowsingEvent.objects.filter(user_id=cid).exists()
    # Each user is scored once per batch, after all of their events: both of
    # Ann's items are in her history, so neither is recommended back to her.
    ann_list = outcomes[0][1]
    assert ann_list is outcomes[2][1]
    assert ann_list["version"] == 1
    assert not _listed(ann_list) & {items[0].pk, items[2].pk}
    assert len(ann_list["items"]) == 10
    assert RecommendationSnapshot.objects.filter(user_id=ann).count() == 1
    # Each shown list is recorded once, rank by rank, for the online metrics.
    ranks = list(
        Impression.objects.filter(user_id=ann)
        .order_by("position")
        .values_list("item_id", "position", "version")
    )
    assert ranks == [
        (entry["id"], rank, 1) for rank, entry in enumerate(ann_list["items"], 1)
    ]


def test_versions_keep_rising_across_batches_and_other_writers() -> None:
    items = catalog(30)
    (ann,) = _users(1)
    first = events_ingest(
        source="ws", events=[NewEvent(ann, items[0].pk, "view", "e1")]
    )
    # Another process stores version 2 first: this one must not reuse it.
    RecommendationSnapshot.objects.create(user_id=ann, version=2, items=[])
    second = events_ingest(
        source="ws", events=[NewEvent(ann, items[1].pk, "view", "e2")]
    )
    assert first[0][1]["version"] == 1
    assert second[0][1]["version"] == 3


def test_cached_history_sees_events_other_processes_store() -> None:
    items = catalog(30)
    (ann,) = _users(1)
    events_ingest(source="ws", events=[NewEvent(ann, items[0].pk, "view", "e1")])
    # Another server process (or the API) stores an event for Ann.
    BrowsingEvent.objects.create(
        user_id=ann, item_id=items[7].pk, action="purchase", weight=4.0
    )
    after = events_ingest(
        source="ws", events=[NewEvent(ann, items[1].pk, "view", "e2")]
    )
    history = live.histories.histories([ann])[ann]
    assert history.item_ids.tolist() == [items[0].pk, items[7].pk, items[1].pk]
    assert items[7].pk not in _listed(after[0][1])


def test_old_events_merged_in_are_read_after_forget_or_expiry() -> None:
    items = catalog(30)
    (ann,) = _users(1)
    events_ingest(source="ws", events=[NewEvent(ann, items[0].pk, "view", "e1")])
    # A visitor's history merged on login carries its old timestamps: the
    # cache's "newer than" read cannot see it ...
    BrowsingEvent.objects.create(
        user_id=ann,
        item_id=items[9].pk,
        action="like",
        weight=2.5,
        created=timezone.now() - timedelta(days=3),
    )
    assert live.histories.histories([ann])[ann].item_ids.tolist() == [items[0].pk]
    # ... until the user reconnects (the consumer forgets them) ...
    live.histories.forget(ann)
    assert live.histories.histories([ann])[ann].item_ids.tolist() == [
        items[9].pk,
        items[0].pk,
    ]
    # ... or the cached copy expires.
    BrowsingEvent.objects.create(
        user_id=ann,
        item_id=items[10].pk,
        action="like",
        weight=2.5,
        created=timezone.now() - timedelta(days=2),
    )
    with override_settings(RECS_HISTORY_CACHE_SECS=0):
        ids = live.histories.histories([ann])[ann].item_ids.tolist()
    assert ids == [items[9].pk, items[10].pk, items[0].pk]


def test_history_keeps_the_latest_events_only() -> None:
    items = catalog(30)
    (ann,) = _users(1)
    with override_settings(RECS_HISTORY_EVENTS=3):
        for i in range(5):
            events_ingest(
                source="ws", events=[NewEvent(ann, items[i].pk, "view", f"e{i}")]
            )
        history = live.histories.histories([ann])[ann]
    assert history.item_ids.tolist() == [items[2].pk, items[3].pk, items[4].pk]


def _stored_batch(batches: list[list[NewEvent]]):
    def store(*, events: list[NewEvent]) -> list:
        batches.append(events)
        if any(event.item_id < 0 for event in events):
            raise ConnectionError("database went away")
        return [StoredEvent(event_id=i, created=True) for i, _ in enumerate(events)]

    return store


def _scored_batch(*, events: list[NewEvent], recorded: list) -> Ingested:
    return Ingested([(stored, None) for stored in recorded], pushes=[])


async def test_batcher_groups_concurrent_events_and_isolates_failures() -> None:
    batches: list[list[NewEvent]] = []
    batcher = EventBatcher(_stored_batch(batches), _scored_batch)
    # The first event starts a batch at once; the nine sent while it runs
    # share the next one.
    first = asyncio.ensure_future(batcher.submit(NewEvent(1, 1, "view", "x")))
    await asyncio.sleep(0)
    rest = [
        asyncio.ensure_future(batcher.submit(NewEvent(u, 2, "view", f"y{u}")))
        for u in range(2, 11)
    ]
    outcomes = await asyncio.gather(first, *rest)
    assert [len(b) for b in batches] == [1, 9]
    assert all(isinstance(o, Accepted) and o.stored.created for o in outcomes)
    assert [o.stored.event_id for o in outcomes[1:]] == list(range(9))
    lists = [await o.listed for o in outcomes]
    assert all(isinstance(scored, Scored) for scored in lists)

    # A failing batch fails its own submitters only.
    bad = asyncio.ensure_future(batcher.submit(NewEvent(1, -1, "view", "z")))
    await asyncio.sleep(0)
    with pytest.raises(ConnectionError):
        await bad
    good = await batcher.submit(NewEvent(1, 3, "view", "w"))
    assert isinstance(good, Accepted)
    assert isinstance(await good.listed, Scored)


async def test_batcher_acks_a_stored_event_before_its_batch_is_scored() -> None:
    release = threading.Event()

    def slow_listed(*, events: list[NewEvent], recorded: list) -> Ingested:
        release.wait(10)
        return _scored_batch(events=events, recorded=recorded)

    batcher = EventBatcher(_stored_batch([]), slow_listed)
    accepted = await asyncio.wait_for(
        batcher.submit(NewEvent(1, 1, "view", "a")), timeout=10
    )
    # Durable and answered while its list is still being scored.
    assert isinstance(accepted, Accepted)
    assert not accepted.listed.done()
    release.set()
    scored = await asyncio.wait_for(accepted.listed, timeout=10)
    assert scored.stored.event_id == 0


async def test_a_socket_that_stops_waiting_leaves_its_batch_answered() -> None:
    release = threading.Event()

    def slow_listed(*, events: list[NewEvent], recorded: list) -> Ingested:
        release.wait(10)
        return _scored_batch(events=events, recorded=recorded)

    batcher = EventBatcher(_stored_batch([]), slow_listed)
    first, second = await asyncio.wait_for(
        asyncio.gather(
            batcher.submit(NewEvent(1, 1, "view", "a")),
            batcher.submit(NewEvent(2, 1, "view", "b")),
        ),
        timeout=10,
    )
    # The first socket closes while its list is scored: its wait is cancelled.
    waiting = asyncio.ensure_future(first.listed)
    await asyncio.sleep(0)
    waiting.cancel()
    release.set()
    scored = await asyncio.wait_for(second.listed, timeout=10)
    assert isinstance(scored, Scored)
    # The batcher goes on with the next batch.
    third = await asyncio.wait_for(batcher.submit(NewEvent(3, 1, "view", "c")), 10)
    assert isinstance(await asyncio.wait_for(third.listed, 10), Scored)


async def test_a_scoring_failure_reaches_the_list_not_the_ack() -> None:
    def failing(*, events: list[NewEvent], recorded: list) -> Ingested:
        raise ConnectionError("database went away after the commit")

    batcher = EventBatcher(_stored_batch([]), failing)
    accepted = await batcher.submit(NewEvent(1, 1, "view", "a"))
    assert isinstance(accepted, Accepted) and accepted.stored.created
    with pytest.raises(ConnectionError):
        await accepted.listed


def test_unknown_item_outcome_carries_a_clear_message() -> None:
    catalog(3)
    (ann,) = _users(1)
    (outcome,) = events_ingest(
        source="ws", events=[NewEvent(ann, 424242, "view", "u1")]
    )
    assert isinstance(outcome, UnknownItem)
    assert "424242" in str(outcome)


def test_first_run_on_sqlite_stores_and_scores_event_batches(tmp_path) -> None:
    """The demo's embedded database takes the same batch path as PostgreSQL."""
    script = """
import django
django.setup()
from django.core.management import call_command
call_command("migrate", verbosity=0)
call_command("seed_demo", items=60, users=3, verbosity=0)
from django.contrib.auth import get_user_model
from recommender.models import BrowsingEvent, Impression, Item
from recommender.services.events import NewEvent
from recommender.services.ingest import events_ingest
users = list(get_user_model().objects.values_list("pk", flat=True)[:2])
items = list(Item.objects.filter(active=True).values_list("pk", flat=True)[:3])
before = BrowsingEvent.objects.count()
out = events_ingest(source="ws", events=[
    NewEvent(users[0], items[0], "view", "s1"),
    NewEvent(users[1], items[1], "like", "s2"),
    NewEvent(users[0], items[2], "cart", "s3"),
    NewEvent(users[0], items[2], "cart", "s3"),
])
assert [o[0].created for o in out] == [True, True, True, False], out
assert BrowsingEvent.objects.count() == before + 3
listed = {e["id"] for e in out[0][1]["items"]}
assert not listed & {items[0], items[2]}, listed
assert Impression.objects.filter(user_id=users[1]).count() == 10
# Two tabs of one user connecting at once compute in two threads: SQLite
# must make the second wait for the first, not fail with "database is locked".
import threading
from django.db import connection
from recommender.services.live import live
from recommender.services.recommendations import recommendations_compute
live.versions.clear()  # a fresh process: versions are read first
versions, failures = [], []
start = threading.Barrier(8)
def tab():
    try:
        start.wait()
        versions.append(recommendations_compute(user_id=users[0])["version"])
    except Exception as exc:
        failures.append(repr(exc))
    finally:
        connection.close()
threads = [threading.Thread(target=tab) for _ in range(8)]
[t.start() for t in threads]
[t.join() for t in threads]
assert not failures, failures
assert len(set(versions)) == 8, versions
print("ok")
"""
    env = {
        "PATH": "/usr/bin:/bin",
        "DJANGO_SETTINGS_MODULE": "recsite.settings",
        "DJANGO_DEBUG": "1",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'first-run.sqlite3'}",
    }
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().endswith("ok")


def test_recompute_after_a_batch_continues_the_version() -> None:
    items = catalog(30)
    (ann,) = _users(1)
    events_ingest(source="ws", events=[NewEvent(ann, items[0].pk, "view", "e1")])
    assert recommendations_compute(user_id=ann)["version"] == 2
