"""The process's hub: watchers, recovery after a silent stream, tasks ending with their loop."""

import asyncio

import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer

from sync import hub as hub_module
from sync.hub import hub
from sync.tasks import stop_with_loop
from tests.sync.testapp.models import Note

pytestmark = pytest.mark.django_db(transaction=True)


class Watcher:
    def __init__(self) -> None:
        self.seen: list[tuple[int, bool]] = []
        self.arrived = asyncio.Event()

    async def change_seen(self, event: dict) -> None:
        self.seen.append((event["seq"], event["text"] is not None))
        self.arrived.set()


async def wait_seen(watcher: Watcher, count: int) -> None:
    async with asyncio.timeout(5):
        while len(watcher.seen) < count:
            watcher.arrived.clear()
            await watcher.arrived.wait()


async def test_a_watcher_sees_every_change_and_nothing_after_unwatch():
    watcher = Watcher()
    await hub.watch(watcher)
    note = await database_sync_to_async(Note.objects.create)(text="a")
    note.text = "b"
    await database_sync_to_async(note.save)()
    await wait_seen(watcher, 2)
    first = watcher.seen[0][0]
    assert watcher.seen == [(first, True), (first + 1, True)]
    assert hub.latest_seq == first + 1
    hub.unwatch(watcher)
    await database_sync_to_async(Note.objects.create)(text="c")
    await asyncio.sleep(0.3)
    assert len(watcher.seen) == 2


async def test_when_the_stream_answers_again_watchers_are_told_to_check(monkeypatch):
    """A stream that went silent (probes lost) triggers a catch-up on its next message."""
    monkeypatch.setattr(hub_module, "PROBE_SECS", 0.05)
    monkeypatch.setattr(hub_module, "PROBE_LOST_SECS", 0.2)
    watcher = Watcher()
    await hub.watch(watcher)
    layer = get_channel_layer()
    real_send = layer.send

    async def lost(channel: str, message: dict) -> None:
        raise ConnectionError("the layer is down")

    monkeypatch.setattr(layer, "send", lost)
    await database_sync_to_async(Note.objects.create)(text="written meanwhile")
    await asyncio.sleep(0.4)
    assert hub.stream_down
    missed = watcher.seen[-1][0] if watcher.seen else None
    seen_before = len(watcher.seen)
    monkeypatch.setattr(layer, "send", real_send)
    await wait_seen(watcher, seen_before + 1)
    latest = watcher.seen[-1]
    assert not hub.stream_down
    assert latest[1] is False, "the catch-up envelope carries no text"
    assert missed is None or latest[0] >= missed
    hub.unwatch(watcher)


def test_a_registered_task_is_cancelled_when_its_loop_shuts_down():
    loop = asyncio.new_event_loop()
    started = asyncio.Event()
    stopped: list[bool] = []

    async def forever() -> None:
        started.set()
        try:
            await asyncio.sleep(3600)
        finally:
            stopped.append(True)

    async def start() -> asyncio.Task:
        task = stop_with_loop(asyncio.get_running_loop().create_task(forever()))
        await started.wait()
        return task

    try:
        task = loop.run_until_complete(start())
        assert not task.done()
        # What asyncio.run, asyncio.Runner and asgiref do before closing a loop.
        loop.run_until_complete(loop.shutdown_asyncgens())
    finally:
        loop.close()
    assert task.cancelled() and stopped == [True]
