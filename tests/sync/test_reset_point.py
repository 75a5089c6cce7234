"""``sync.reset_point``: a bulk load leaves one gap that sends clients to reload."""

import pytest
from channels.db import database_sync_to_async
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.db import transaction

import sync
from sync.models import Change
from sync.routing import websocket_urlpatterns
from sync.selectors import changes_after, seq_latest
from tests.sync.testapp.models import Note

application = URLRouter(websocket_urlpatterns)

pytestmark = pytest.mark.django_db(transaction=True)


def bulk_load(count: int) -> int:
    with transaction.atomic():
        Note.objects.bulk_create(Note(text=f"bulk {n}") for n in range(count))
        return sync.reset_point(Note)


def test_a_reset_point_is_one_seq_without_a_logged_change():
    Note.objects.create(text="logged")
    before = seq_latest()
    seq = bulk_load(50)
    assert seq == before + 1 == seq_latest()
    assert not Change.objects.filter(seq=seq).exists()
    plan = changes_after(after=before, limit=1000)
    assert plan.reset and plan.seq == seq, "a client from before reloads"
    assert not changes_after(after=seq, limit=1000).reset
    after = Note.objects.create(text="next")
    assert Change.objects.get(seq=seq + 1).object_id == str(after.pk)


def test_a_model_that_is_not_synced_is_refused():
    from sync.models import SeqCounter
    from sync.registry import NotRegistered

    with pytest.raises(NotRegistered):
        sync.reset_point(SeqCounter)


async def test_connected_sockets_are_told_to_reload_at_once():
    # Without the announcement they would learn it from the next heartbeat,
    # 15 s away by default.
    client = WebsocketCommunicator(application, "/ws/sync/")
    assert (await client.connect())[0]
    hello = await client.receive_json_from(timeout=5)
    shaped = WebsocketCommunicator(application, "/ws/sync/")
    assert (await shaped.connect())[0]
    await shaped.receive_json_from(timeout=5)
    await shaped.send_json_to(
        {"type": "subscribe", "shape": {"model": "note", "q": "bulk"}, "id": 1}
    )
    assert (await shaped.receive_json_from(timeout=5))["type"] == "subscribed"

    seq = await database_sync_to_async(bulk_load)(20)
    assert seq == hello["seq"] + 1
    assert await client.receive_json_from(timeout=3) == {"type": "reset", "seq": seq}
    assert await shaped.receive_json_from(timeout=3) == {"type": "reset", "seq": seq}
    await client.disconnect()
    await shaped.disconnect()
