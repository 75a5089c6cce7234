"""Shapes on sync's own model: matching rules, validation, before-images, delivery."""

import json
from decimal import Decimal

import msgpack
import pytest
from channels.db import database_sync_to_async
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.db import transaction

import sync
from sync import messages as sync_messages
from sync.models import Change
from sync.registry import synced, synced_by_name
from sync.routing import websocket_urlpatterns
from sync.selectors import seq_latest
from sync.shapes import Exact, ShapeSpec, shape_compile
from sync.wire import FrameError, encode
from tests.sync.testapp.models import Note

application = URLRouter(websocket_urlpatterns)


def compile_note(**shape):
    return shape_compile(
        {"model": "note", **shape}, spec_of=lambda name: synced_by_name(name).shape
    )


def test_words_match_word_prefixes_of_every_query_word():
    shape = compile_note(q="Gre tea")
    assert shape.contains(1, {"text": "green TEA leaves"})
    assert shape.contains(1, {"text": "Teapot, greenish"})
    assert not shape.contains(1, {"text": "green coffee"})
    assert not shape.contains(1, {"text": "agreed tea"})  # prefix, not substring


def test_ranges_are_inclusive_and_ids_narrow_further():
    shape = compile_note(min_stars=2, max_stars=4, ids=[5, "7"])
    assert shape.contains(5, {"stars": 2}) and shape.contains(7, {"stars": 4})
    assert not shape.contains(5, {"stars": 5})
    assert not shape.contains(6, {"stars": 3})


def test_exact_takes_an_id_or_a_slug_of_the_text_field():
    spec = ShapeSpec(filters={"kind": Exact("kind_id", text_field="kind")})
    by_slug = shape_compile(
        {"model": "x", "kind": "Home & Garden"}, spec_of=lambda name: spec
    )
    by_id = shape_compile({"model": "x", "kind": "3"}, spec_of=lambda name: spec)
    row = {"kind_id": 3, "kind": "Home & Garden"}
    assert by_slug.contains(1, row) and by_id.contains(1, row)
    assert not by_id.contains(1, {"kind_id": 4, "kind": "Home & Garden"})


@pytest.mark.parametrize(
    "shape",
    [
        {"model": "note", "colour": "red"},
        {"model": "nothing"},
        {"model": "note", "min_stars": "2"},
        {"model": "note", "min_stars": True},
        {"model": "note", "q": ["list"]},
        {"model": "note", "ids": [1.5]},
        {"stars": 3},
    ],
)
def test_bad_shapes_are_bad_messages(shape):
    with pytest.raises(FrameError) as caught:
        shape_compile(
            shape, spec_of=lambda n: getattr(synced_by_name(n), "shape", None)
        )
    assert caught.value.code == "bad_message"


def test_classify_tells_leave_from_never_in():
    shape = compile_note(min_stars=3)
    was_in, was_out = {"stars": 4}, {"stars": 1}

    def verdict(op, data, before):
        return shape.classify(
            model="note", op=op, object_id=1, data=data, before=before
        )

    assert verdict("upsert", {"stars": 5}, False) == "upsert"
    assert verdict("upsert", {"stars": 1}, was_in) == "leave"
    assert verdict("upsert", {"stars": 2}, was_out) is None
    assert verdict("upsert", {"stars": 2}, False) is None
    assert verdict("upsert", {"stars": 2}, None) == "leave"  # unknown: may have been in
    assert verdict("delete", None, was_in) == "leave"
    assert verdict("delete", None, was_out) is None
    assert (
        shape.classify(
            model="other", op="upsert", object_id=1, data={"stars": 5}, before=None
        )
        is None
    )


@pytest.mark.django_db(transaction=True)
def test_writes_record_the_before_image_shapes_read():
    start = seq_latest()
    note = Note.objects.create(text="one", stars=1)
    note.stars = 4
    note.text = "two"
    note.save()
    note.delete()
    befores = list(
        Change.objects.filter(seq__gt=start)
        .order_by("seq")
        .values_list("before", flat=True)
    )
    assert befores == [False, {"text": "one", "stars": 1}, {"text": "two", "stars": 4}]

    with transaction.atomic():
        rows = Note.objects.bulk_create([Note(text="bulk", stars=2)])
        sync.record(Note, rows, new=True)
    previous = Note(pk=rows[0].pk, text="bulk", stars=2)
    with transaction.atomic():
        Note.objects.filter(pk=rows[0].pk).update(stars=5)
        sync.record(Note, Note.objects.filter(pk=rows[0].pk), before=[previous])
        sync.record(Note, Note.objects.filter(pk=rows[0].pk))
    tail = list(Change.objects.order_by("-seq").values_list("before", flat=True)[:3])[
        ::-1
    ]
    assert tail == [False, {"text": "bulk", "stars": 2}, None]
    assert synced(Note).before_image(previous) == {"stars": 2, "text": "bulk"}


@pytest.mark.django_db(transaction=True)
async def test_a_shaped_socket_gets_its_rows_with_prev_and_leaves():
    inside = await database_sync_to_async(Note.objects.create)(text="tea", stars=4)
    outside = await database_sync_to_async(Note.objects.create)(text="tea", stars=1)
    client = WebsocketCommunicator(application, "/ws/sync/")
    assert (await client.connect())[0]
    hello = await client.receive_json_from(timeout=5)
    await client.send_json_to(
        {"type": "subscribe", "shape": {"model": "note", "min_stars": 3}, "id": 9}
    )
    assert await client.receive_json_from(timeout=5) == {
        "type": "subscribed",
        "seq": hello["seq"],
        "id": 9,
    }

    async def save(note, **fields):
        for name, value in fields.items():
            setattr(note, name, value)
        await database_sync_to_async(note.save)()
        return await database_sync_to_async(seq_latest)()

    await save(outside, text="still out")
    left = await save(inside, stars=2)
    entered = await save(outside, stars=3, price=Decimal("2.00"))
    first = await client.receive_json_from(timeout=5)
    assert first == {
        "type": "change",
        "seq": left,
        "model": "note",
        "op": "leave",
        "id": inside.pk,
        "data": None,
        "prev": hello["seq"],
    }
    second = await client.receive_json_from(timeout=5)
    assert (second["op"], second["id"], second["prev"]) == ("upsert", outside.pk, left)
    assert second["seq"] == entered and second["data"]["stars"] == 3

    await client.send_json_to({"type": "resume", "after": hello["seq"]})
    replay = [await client.receive_json_from(timeout=5) for _ in range(3)]
    assert [(m["type"], m.get("seq")) for m in replay] == [
        ("change", left),
        ("change", entered),
        ("resumed", entered),
    ]
    assert await client.receive_nothing(timeout=0.3)
    await client.disconnect()


@pytest.mark.parametrize(
    "message",
    [
        sync_messages.subscribed(seq=7, request_id="s1"),
        sync_messages.subscribed(seq=7, request_id=None),
        sync_messages.leave(seq=9, model="note", object_id=3),
        sync_messages.layer_change(text='{"type":"change"}', seq=9, before=False),
        sync_messages.layer_change(text=None, seq=9, before={"stars": 2, "text": "a"}),
    ],
)
def test_shape_builders_round_trip_through_msgpack_and_json(message):
    assert msgpack.unpackb(msgpack.packb(message), raw=False) == message
    assert json.loads(json.dumps(message)) == message


def test_prev_is_appended_to_an_encoded_change():
    text = encode(sync_messages.leave(seq=9, model="note", object_id=3))
    assert json.loads(sync_messages.with_prev(text, prev=4)) == {
        **json.loads(text),
        "prev": 4,
    }


@pytest.mark.django_db(transaction=True)
async def test_a_lost_broadcast_of_the_shape_is_filled_from_the_log_in_the_chain():
    from tests.sync.test_consumers import write_without_broadcast

    note = await database_sync_to_async(Note.objects.create)(text="lost and found")
    client = WebsocketCommunicator(application, "/ws/sync/")
    assert (await client.connect())[0]
    hello = await client.receive_json_from(timeout=5)
    await client.send_json_to(
        {"type": "subscribe", "shape": {"model": "note", "q": "lost"}}
    )
    assert (await client.receive_json_from(timeout=5))["type"] == "subscribed"
    lost = await write_without_broadcast(note.pk)  # data {"text": "lost"}
    note.text = "lost again"
    await database_sync_to_async(note.save)()
    first = await client.receive_json_from(timeout=5)
    second = await client.receive_json_from(timeout=5)
    assert (first["seq"], first["op"], first["prev"]) == (lost, "upsert", hello["seq"])
    assert (second["seq"], second["prev"]) == (lost + 1, lost)
    await client.disconnect()
