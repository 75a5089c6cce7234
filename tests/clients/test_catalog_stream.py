"""The Python client's CatalogStream against live servers (PostgreSQL + Redis).

A staff member edits items through the Django admin; the server restarts
on the same port while changes are written by another process; the change
log is too short for what the client missed. The client must show every
change once, in order, and reload when told to.
"""

import asyncio
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from recsite_client import Backoff, CatalogStream, Delete, Leave, Reloaded, Upsert

from tests.factories import catalog
from tests.support.accounts import AdminSession
from tests.support.env import child_env, manage
from tests.support.servers import ServerProcess, serve_argv

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.redis,
    pytest.mark.postgres,
]

WAIT_SECS = 20
FAST = Backoff(base=0.05, cap=0.5)


async def next_event(events, timeout: float = WAIT_SECS):
    return await asyncio.wait_for(anext(events), timeout)


def rename_elsewhere(item_ids: list[int], prefix: str) -> None:
    """Rename items from a separate ``manage.py shell`` process, one save each."""
    manage(
        "shell",
        "-c",
        "from recommender.models import Item\n"
        f"for pk in {item_ids!r}:\n"
        "    i = Item.objects.get(pk=pk)\n"
        f"    i.title = '{prefix} %d' % pk\n"
        "    i.save()\n",
    )


def restart(server: ServerProcess, tmp_path: Path, **env: str) -> ServerProcess:
    """Start a new server process on the port ``server`` had."""
    port = server.port
    return ServerProcess(
        serve_argv(port, collectstatic=False),
        env=child_env(**env),
        port=port,
        log_path=tmp_path / f"restart-{port}-{len(env)}.log",
    ).wait_healthy()


def test_a_staff_edit_arrives_and_a_restart_loses_and_repeats_nothing(
    live_servers, tmp_path
):
    items = catalog(30)
    get_user_model().objects.create_superuser("boss", password="boss-secret-pw")
    server = live_servers()
    restarted: list[ServerProcess] = []

    async def scenario() -> None:
        stream = CatalogStream(server.http_url, backoff=FAST)
        events = aiter(stream)
        first = await next_event(events)
        assert isinstance(first, Reloaded) and first.reason == "initial"
        assert sorted(first.items) == sorted(item.pk for item in items)

        staff = AdminSession(server.http_url, "boss", "boss-secret-pw")
        await asyncio.to_thread(
            staff.change_item,
            items[4].pk,
            title="Edited by staff",
            category_id=items[4].category_id,
            price="12.50",
        )
        edit = await next_event(events)
        assert edit == Upsert(first.seq + 1, items[4].pk, edit.data)
        assert edit.data["title"] == "Edited by staff"

        # The server goes away; three changes are written while it is down.
        server.stop()
        moved = [items[7].pk, items[8].pk, items[9].pk]
        await asyncio.to_thread(rename_elsewhere, moved, "While down")
        restarted.append(await asyncio.to_thread(restart, server, tmp_path))

        missed = [await next_event(events) for _ in moved]
        assert [change.seq for change in missed] == [
            edit.seq + 1,
            edit.seq + 2,
            edit.seq + 3,
        ]
        assert [(change.id, change.data["title"]) for change in missed] == [
            (pk, f"While down {pk}") for pk in moved
        ]

        # The socket drops (no closing handshake); the next changes still
        # come once each, in order, with nothing repeated in between.
        stream.drop()
        await asyncio.to_thread(staff.action, "deactivate", [items[10].pk])
        gone = await next_event(events)
        assert isinstance(gone, Leave), gone
        assert (gone.seq, gone.id) == (edit.seq + 4, items[10].pk)
        await asyncio.to_thread(staff.delete_item, items[11].pk)
        deleted = await next_event(events)
        assert deleted == Delete(edit.seq + 5, items[11].pk)
        assert stream.stats.connects >= 3
        assert stream.stats.resets == 0
        staff.close()
        await events.aclose()

    try:
        asyncio.run(scenario())
    finally:
        for process in restarted:
            process.stop()


def test_a_client_behind_the_log_reloads_the_snapshot_and_carries_on(
    live_servers, tmp_path
):
    items = catalog(20)
    server = live_servers()
    restarted: list[ServerProcess] = []

    async def scenario() -> None:
        # Pages of 6: the snapshot is read by following ``next`` to the end.
        stream = CatalogStream(
            server.http_url, backoff=FAST, snapshot="pages", page_limit=6
        )
        events = aiter(stream)
        first = await next_event(events)
        assert isinstance(first, Reloaded)
        assert list(first.items) == sorted(item.pk for item in items)

        # More changes are missed than the restarted server replays.
        server.stop()
        missed = [item.pk for item in items[:5]]
        await asyncio.to_thread(rename_elsewhere, missed, "Missed")
        restarted.append(
            await asyncio.to_thread(
                restart, server, tmp_path, SYNC_RESUME_MAX_CHANGES="2"
            )
        )

        reloaded = await next_event(events)
        assert isinstance(reloaded, Reloaded) and reloaded.reason == "reset"
        assert reloaded.seq == first.seq + len(missed)
        assert {reloaded.items[pk]["title"] for pk in missed} == {
            f"Missed {pk}" for pk in missed
        }
        assert sorted(reloaded.items) == sorted(item.pk for item in items)
        assert stream.stats.resets == 1

        await asyncio.to_thread(rename_elsewhere, [items[6].pk], "After")
        after = await next_event(events)
        assert isinstance(after, Upsert)
        assert (after.seq, after.data["title"]) == (
            reloaded.seq + 1,
            f"After {items[6].pk}",
        )
        await events.aclose()

    try:
        asyncio.run(scenario())
    finally:
        for process in restarted:
            process.stop()


def test_a_shape_sees_its_category_only_and_an_item_leaving_it(live_servers, tmp_path):
    items = catalog(24)  # three categories, round robin
    get_user_model().objects.create_superuser("boss", password="boss-secret-pw")
    books = items[0].category
    server = live_servers()
    restarted: list[ServerProcess] = []

    async def scenario() -> None:
        stream = CatalogStream(
            server.http_url, backoff=FAST, shape={"category": books.pk}
        )
        events = aiter(stream)
        first = await next_event(events)
        assert isinstance(first, Reloaded)
        in_books = sorted(item.pk for item in items if item.category_id == books.pk)
        assert sorted(first.items) == in_books

        staff = AdminSession(server.http_url, "boss", "boss-secret-pw")
        outside = items[1]  # another category: never shown
        await asyncio.to_thread(
            staff.change_item,
            outside.pk,
            title="Not in books",
            category_id=outside.category_id,
        )
        await asyncio.to_thread(
            staff.change_item, items[3].pk, title="Still a book", category_id=books.pk
        )
        edit = await next_event(events)
        assert isinstance(edit, Upsert) and edit.id == items[3].pk
        assert edit.data["title"] == "Still a book"
        await asyncio.to_thread(
            staff.change_item,
            items[6].pk,
            title="Moved out",
            category_id=items[1].category_id,
        )
        moved = await next_event(events)
        assert isinstance(moved, Leave) and moved.id == items[6].pk

        # Restarted server: the stream subscribes again after what it applied.
        server.stop()
        await asyncio.to_thread(rename_elsewhere, [items[2].pk, items[9].pk], "Down")
        restarted.append(await asyncio.to_thread(restart, server, tmp_path))
        missed = await next_event(events)
        assert isinstance(missed, Upsert) and missed.id == items[9].pk
        assert missed.data["title"] == f"Down {items[9].pk}"
        assert missed.seq > moved.seq
        staff.close()
        await events.aclose()

    try:
        asyncio.run(scenario())
    finally:
        for process in restarted:
            process.stop()


def test_an_ids_shape_loads_and_follows_those_items_only(live_servers):
    items = catalog(9)
    watched = [items[2].pk, items[7].pk]
    server = live_servers()

    async def scenario() -> None:
        stream = CatalogStream(server.http_url, backoff=FAST, shape={"ids": watched})
        events = aiter(stream)
        first = await next_event(events)
        assert isinstance(first, Reloaded) and sorted(first.items) == watched
        await asyncio.to_thread(rename_elsewhere, [items[3].pk, items[7].pk], "Renamed")
        edit = await next_event(events)
        assert isinstance(edit, Upsert) and edit.id == items[7].pk
        assert edit.data["title"] == f"Renamed {items[7].pk}"
        with pytest.raises(TimeoutError):
            await next_event(events, timeout=1.0)  # items[3]: not listed
        await events.aclose()

    asyncio.run(scenario())
