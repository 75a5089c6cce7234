"""``/ws/sync/`` with WebsocketCommunicator: hello, live changes, resume, gaps."""

import pytest
from channels.db import database_sync_to_async
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.db.models import F

from sync.models import Change, SeqCounter
from sync.routing import websocket_urlpatterns
from sync.selectors import seq_latest
from tests.sync.testapp.models import Note

# sync's own routing, as a project that uses nothing else would mount it.
application = URLRouter(websocket_urlpatterns)

pytestmark = pytest.mark.django_db(transaction=True)


async def connect() -> tuple[WebsocketCommunicator, int]:
    communicator = WebsocketCommunicator(application, "/ws/sync/")
    connected, _ = await communicator.connect()
    assert connected
    hello = await communicator.receive_json_from(timeout=5)
    assert hello["type"] == "hello"
    return communicator, hello["seq"]


def catalog(count: int) -> list[Note]:
    """Create ``count`` notes (sync's test model), each logged as a change."""
    return [Note.objects.create(text=f"note {n}") for n in range(count)]


@database_sync_to_async
def rename(item: Note, title: str) -> None:
    item.text = title
    item.save()


@database_sync_to_async
def write_without_broadcast(object_id: int) -> int:
    """Commit a change to the log the way a lost broadcast would leave it."""
    SeqCounter.objects.filter(pk=1).update(value=F("value") + 1)
    seq = seq_latest()
    Change.objects.create(
        seq=seq,
        model="note",
        op="upsert",
        object_id=str(object_id),
        data={"text": "lost"},
    )
    return seq


async def test_hello_then_each_change_once_with_the_next_seq():
    items = await database_sync_to_async(catalog)(2)
    client, seq = await connect()
    await rename(items[0], "First")
    await rename(items[1], "Second")
    first = await client.receive_json_from(timeout=5)
    second = await client.receive_json_from(timeout=5)
    assert (first["seq"], first["data"]["text"]) == (seq + 1, "First")
    assert (second["seq"], second["data"]["text"]) == (seq + 2, "Second")
    assert first["model"] == "note" and first["op"] == "upsert"
    assert await client.receive_nothing(timeout=0.2)
    await client.disconnect()


async def test_resume_replays_what_was_missed_then_resumed():
    items = await database_sync_to_async(catalog)(3)
    after = await database_sync_to_async(seq_latest)()
    for n, item in enumerate(items):
        await rename(item, f"Offline edit {n}")
    client, _ = await connect()
    await client.send_json_to({"type": "resume", "after": after})
    replay = [await client.receive_json_from(timeout=5) for _ in range(3)]
    assert [m["seq"] for m in replay] == [after + 1, after + 2, after + 3]
    assert [m["data"]["text"] for m in replay] == [
        f"Offline edit {n}" for n in range(3)
    ]
    assert await client.receive_json_from(timeout=5) == {
        "type": "resumed",
        "seq": after + 3,
    }
    await client.disconnect()


async def test_resume_from_before_the_log_gets_reset():
    await database_sync_to_async(catalog)(2)
    await database_sync_to_async(Change.objects.filter(seq=1).delete)()
    client, seq = await connect()
    await client.send_json_to({"type": "resume", "after": 0})
    assert await client.receive_json_from(timeout=5) == {"type": "reset", "seq": seq}
    await client.disconnect()


async def test_a_lost_broadcast_is_filled_from_the_log_before_the_next_change():
    items = await database_sync_to_async(catalog)(2)
    client, seq = await connect()
    lost = await write_without_broadcast(items[0].pk)
    await rename(items[1], "After the loss")
    first = await client.receive_json_from(timeout=5)
    second = await client.receive_json_from(timeout=5)
    assert (first["seq"], first["data"]["text"]) == (lost, "lost")
    assert (second["seq"], second["data"]["text"]) == (lost + 1, "After the loss")
    assert lost == seq + 1
    await client.disconnect()


async def test_heartbeat_carries_the_seq_and_delivers_a_lost_last_change(settings):
    settings.SYNC_HEARTBEAT_SECS = 0.2
    items = await database_sync_to_async(catalog)(1)
    client, seq = await connect()
    lost = await write_without_broadcast(items[0].pk)
    change = await client.receive_json_from(timeout=5)
    assert change["type"] == "change" and change["seq"] == lost == seq + 1
    assert await client.receive_json_from(timeout=5) == {
        "type": "heartbeat",
        "seq": lost,
    }
    await client.disconnect()


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ("not json", "bad_json"),
        ('{"type":"resume"}', "bad_message"),
        ('{"type":"resume","after":-1}', "bad_message"),
        ('{"type":"subscribe","after":1}', "bad_message"),
        ('{"type":"resume","after":"3"}', "bad_message"),
        ("[" * 3000 + "]" * 3000, "too_large"),
    ],
)
async def test_bad_frames_get_an_error_and_the_socket_stays_open(frame, code):
    client, _ = await connect()
    await client.send_to(text_data=frame)
    answer = await client.receive_json_from(timeout=5)
    assert answer["type"] == "error" and answer["code"] == code
    await client.send_json_to({"type": "resume", "after": 0})
    assert (await client.receive_json_from(timeout=5))["type"] in {
        "resumed",
        "reset",
        "change",
    }
    await client.disconnect()


async def test_a_burst_of_handshakes_reads_the_seq_once_and_stays_exact(monkeypatch):
    from sync import hub as hub_module

    items = await database_sync_to_async(catalog)(2)
    reads = 0
    real = hub_module._seq_latest

    async def counted() -> int:
        nonlocal reads
        reads += 1
        return await real()

    monkeypatch.setattr(hub_module, "_seq_latest", counted)
    clients = [await connect() for _ in range(10)]
    latest = await database_sync_to_async(seq_latest)()
    assert {seq for _, seq in clients} == {latest}
    assert reads == 1
    # A change broadcast after the read is in the next greeting at once.
    await rename(items[0], "Renamed")
    for client, _ in clients:
        assert (await client.receive_json_from(timeout=5))["seq"] == latest + 1
    late, late_seq = await connect()
    assert late_seq == latest + 1 and reads == 1
    for client, _ in [*clients, (late, late_seq)]:
        await client.disconnect()
