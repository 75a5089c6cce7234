"""The change log: gap-free ordered seq, pruning, replay and broadcast after commit."""

import asyncio
import time

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.db import transaction

from recommender.models import Item
from sync import messages
from sync.models import Change
from sync.selectors import changes_after, seq_latest
from sync.services import changes_record
from tests.factories import catalog

pytestmark = pytest.mark.django_db(transaction=True)


def test_every_item_write_path_gets_the_next_seq():
    start = seq_latest()
    item = catalog(1)[0]  # category rows are not synced; the item create is
    assert seq_latest() == start + 1
    item.title = "Renamed"
    item.save()
    item.delete()
    rows = list(
        Change.objects.filter(seq__gt=start).values_list("seq", "op", "object_id")
    )
    assert [seq for seq, _, _ in rows] == [start + 1, start + 2, start + 3]
    assert [op for _, op, _ in rows] == ["upsert", "upsert", "delete"]
    assert Change.objects.get(seq=start + 2).data["title"] == "Renamed"


def test_a_rolled_back_write_leaves_no_gap():
    items = catalog(2)
    start = seq_latest()
    with pytest.raises(RuntimeError), transaction.atomic():
        items[0].title = "never committed"
        items[0].save()
        raise RuntimeError("abort")
    items[1].title = "committed"
    items[1].save()
    assert seq_latest() == start + 1
    assert Change.objects.get(seq=start + 1).object_id == str(items[1].pk)


def test_bulk_writes_record_each_change_in_order():
    start = seq_latest()
    seqs = changes_record(
        model_name="item",
        changes=[("upsert", "7", {"title": "a"}), ("delete", "8", None)],
    )
    assert seqs == [start + 1, start + 2]


def test_resume_replays_exactly_the_missed_changes_or_resets():
    items = catalog(3)
    after = seq_latest()
    for item in items:
        item.title += " (edited)"
        item.save()
    plan = changes_after(after=after, limit=100)
    assert not plan.reset
    assert [c.seq for c in plan.changes] == [after + 1, after + 2, after + 3]
    assert changes_after(after=after, limit=2).reset, "more than the limit → reset"
    assert changes_after(after=seq_latest() + 5, limit=100).reset, (
        "ahead of the log → reset"
    )
    Change.objects.filter(seq=after + 1).delete()  # pruned
    assert changes_after(after=after, limit=100).reset


def test_the_log_is_pruned_to_its_configured_size(settings):
    settings.SYNC_CHANGELOG_MAX_ROWS = 50
    changes_record(
        model_name="item", changes=[("upsert", str(i), {}) for i in range(1, 251)]
    )
    assert Change.objects.count() <= 50 + 100  # pruned every 100 seqs
    assert changes_after(after=0, limit=10_000).reset


async def test_changes_are_broadcast_only_after_commit():
    layer = get_channel_layer()
    channel = await layer.new_channel()
    await layer.group_add(messages.CHANGES_GROUP, channel)
    received: list[dict] = []

    async def collect() -> None:
        while True:
            received.append(await layer.receive(channel))

    @sync_to_async
    def write() -> tuple[int, int]:
        with transaction.atomic():
            item = Item.objects.create(title="Fresh")
            time.sleep(0.3)  # the collector runs meanwhile on the test's loop
            before_commit = len(received)
        return item.pk, before_commit

    collector = asyncio.create_task(collect())
    try:
        item_id, before_commit = await write()
        assert before_commit == 0, "nothing may be sent before the commit"
        for _ in range(100):
            if received:
                break
            await asyncio.sleep(0.05)
        assert len(received) == 1
        message = received[0]
        assert message["type"] == messages.LAYER_CHANGE
        assert '"title":"Fresh"' in message["text"]
        assert f'"id":{item_id}' in message["text"]
        assert message["seq"] == await sync_to_async(seq_latest)()
    finally:
        collector.cancel()
