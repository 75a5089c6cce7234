"""Shapes with ``also_ids``: the filters' rows plus rows listed by id."""

import pytest
from channels.db import database_sync_to_async
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator

from sync.registry import synced_by_name
from sync.routing import websocket_urlpatterns
from sync.shapes import ShapeSpec, shape_compile
from sync.wire import FrameError
from tests.sync.testapp.models import Note

application = URLRouter(websocket_urlpatterns)


def compile_note(**shape):
    return shape_compile(
        {"model": "note", **shape}, spec_of=lambda name: synced_by_name(name).shape
    )


def test_also_ids_add_rows_the_filters_leave_out():
    shape = compile_note(min_stars=3, also_ids=[7, "8"])
    assert shape.contains(1, {"stars": 4})
    assert not shape.contains(1, {"stars": 1})
    assert shape.contains(7, {"stars": 1}) and shape.contains(8, {"stars": 0})
    # ids narrow the filters' rows; also_ids are added to them whatever ids say.
    both = compile_note(min_stars=3, ids=[1], also_ids=[7])
    assert both.contains(1, {"stars": 3}) and both.contains(7, {"stars": 0})
    assert not both.contains(2, {"stars": 5})


def test_also_ids_still_meet_where():
    spec = ShapeSpec(filters={}, where={"active": True})
    shape = shape_compile({"model": "x", "also_ids": [5]}, spec_of=lambda name: spec)
    assert shape.contains(5, {"active": True})
    assert not shape.contains(5, {"active": False})
    verdict = shape.classify(
        model="x", op="upsert", object_id=5, data={"active": False}, before=None
    )
    assert verdict == "leave"


def test_a_listed_row_leaving_the_filters_stays_in_the_shape():
    shape = compile_note(min_stars=3, also_ids=[7])

    def verdict(object_id, data, before):
        return shape.classify(
            model="note", op="upsert", object_id=object_id, data=data, before=before
        )

    assert verdict(7, {"stars": 1}, {"stars": 4}) == "upsert"
    assert verdict(1, {"stars": 1}, {"stars": 4}) == "leave"
    assert verdict(7, {"stars": 1}, False) == "upsert"  # new and listed: enters
    assert (
        shape.classify(
            model="note", op="delete", object_id=7, data=None, before={"stars": 1}
        )
        == "leave"
    )


def test_shapes_differing_only_in_also_ids_share_the_verdict_of_other_rows():
    one = compile_note(q="tea", also_ids=[1, 2])
    other = compile_note(q="tea", also_ids=[3])
    plain = compile_note(q="tea")
    assert one.key != other.key != plain.key
    assert one.key_for(9) == other.key_for(9) == plain.key_for(9)
    assert one.key_for(1) == one.key and other.key_for(3) == other.key


def test_too_many_also_ids_are_a_bad_message():
    with pytest.raises(FrameError) as caught:
        compile_note(also_ids=list(range(501)))
    assert caught.value.code == "bad_message"


@pytest.mark.django_db(transaction=True)
async def test_two_sockets_with_one_filter_get_their_own_listed_rows():
    create = database_sync_to_async(Note.objects.create)
    shared = await create(text="tea", stars=5)
    mine = await create(text="coffee", stars=1)
    theirs = await create(text="water", stars=1)

    async def subscribe(also_ids):
        client = WebsocketCommunicator(application, "/ws/sync/")
        assert (await client.connect())[0]
        await client.receive_json_from(timeout=5)  # hello
        shape = {"model": "note", "q": "tea", "also_ids": also_ids}
        await client.send_json_to({"type": "subscribe", "shape": shape, "id": "s"})
        assert (await client.receive_json_from(timeout=5))["type"] == "subscribed"
        return client

    first = await subscribe([mine.pk])
    second = await subscribe([theirs.pk])

    async def save(note, **fields):
        for name, value in fields.items():
            setattr(note, name, value)
        await database_sync_to_async(note.save)()

    await save(mine, stars=2)  # first only
    await save(theirs, stars=2)  # second only
    await save(shared, stars=4)  # both: in the filter
    await save(mine, stars=3)  # first only
    got = {}
    for name, client, count in (("first", first, 3), ("second", second, 2)):
        messages = [await client.receive_json_from(timeout=5) for _ in range(count)]
        got[name] = [(m["op"], m["id"]) for m in messages]
        assert await client.receive_nothing(timeout=0.3)
        await client.disconnect()
    assert got["first"] == [
        ("upsert", mine.pk),
        ("upsert", shared.pk),
        ("upsert", mine.pk),
    ]
    assert got["second"] == [("upsert", theirs.pk), ("upsert", shared.pk)]
