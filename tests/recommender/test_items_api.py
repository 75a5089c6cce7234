"""``/api/items/``: keyset pages, filters, seq consistency, gzip, one item, the stream."""

import gzip
import json
import threading
import zlib
from decimal import Decimal

import pytest
from django.db import connection
from django.test import AsyncClient, Client

from recommender.models import Category, Item
from recommender.selectors import items as catalog
from sync import snapshots
from sync.models import Change
from sync.selectors import seq_latest

pytestmark = pytest.mark.django_db(transaction=True)

NOUNS = ["Headphones", "Skillet", "Novel", "Tent"]


def shop(n: int = 40) -> list[Item]:
    """Create ``n`` items over two categories, with distinct words and prices."""
    electronics = Category.objects.create(name="Home & Kitchen")
    books = Category.objects.create(name="Books")
    return [
        Item.objects.create(
            title=f"Model {i} {'Wireless' if i % 2 else 'Wooden'} {NOUNS[(i // 2) % 4]}",
            category=electronics if i % 3 else books,
            tags="compact, usb-c" if i % 5 == 0 else "classic",
            price=Decimal(10 + i),
        )
        for i in range(n)
    ]


def get(path: str, **params: object) -> dict:
    response = Client().get(path, params)
    assert response.status_code == 200, response.content
    return response.json()


def walk(**params: object) -> tuple[list[int], int]:
    """Follow ``next`` from the first page; return every id seen and the pages read."""
    ids: list[int] = []
    cursor, pages = None, 0
    while True:
        page = get("/api/items/", **params, **({"cursor": cursor} if cursor else {}))
        ids += [item["id"] for item in page["items"]]
        pages += 1
        cursor = page["next"]
        if cursor is None:
            return ids, pages


def test_pages_return_every_active_item_exactly_once_in_id_order():
    items = shop(40)
    for gone in items[3:6]:
        gone.active = False
        gone.save()
    active = [i.pk for i in items if i.pk not in {g.pk for g in items[3:6]}]
    ids, pages = walk(limit=7)
    assert ids == sorted(active)
    assert pages == 6  # 37 items: five full pages of 7, then 2
    first = get("/api/items/")
    assert len(first["items"]) == 37 and first["next"] is None, "default limit 50"


def test_limit_is_capped_and_bad_parameters_are_refused_in_the_error_shape():
    Category.objects.create(name="Books")
    Item.objects.bulk_create(Item(title=f"Book {i}") for i in range(520))
    page = get("/api/items/", limit=10_000)
    assert len(page["items"]) == catalog.PAGE_LIMIT_MAX and page["next"]
    for params, status in (
        ({"limit": 0}, 422),
        ({"cursor": "abc"}, 422),
        ({"min_price": "cheap"}, 422),
        ({"category": "no-such-shelf"}, 404),
        ({"category": "999999"}, 404),
    ):
        response = Client().get("/api/items/", params)
        assert response.status_code == status, params
        assert set(response.json()) == {"code", "message"}


def test_filters_by_category_id_or_slug_price_range_and_search_words():
    items = shop(40)
    kitchen = Category.objects.get(name="Home & Kitchen")
    in_kitchen = sorted(i.pk for i in items if i.category_id == kitchen.pk)
    assert walk(category=kitchen.pk, limit=5)[0] == in_kitchen
    assert walk(category="home-kitchen", limit=5)[0] == in_kitchen
    in_range = sorted(i.pk for i in items if 20 <= i.price <= 29.5)
    assert walk(min_price="20", max_price="29.5", limit=4)[0] == in_range
    # Every word must match, a word may be the start of one ("headph").
    wireless_headphones = sorted(
        i.pk for i in items if "Wireless Headphones" in i.title
    )
    assert wireless_headphones
    assert walk(q="wireless HEADPH", limit=3)[0] == wireless_headphones
    usb = sorted(i.pk for i in items if "usb-c" in i.tags)
    assert walk(q="usb")[0] == usb
    both = sorted(
        i.pk
        for i in items
        if i.category_id == kitchen.pk and "Skillet" in i.title and i.price >= 30
    )
    assert walk(category="home-kitchen", q="skillet", min_price=30)[0] == both
    assert get("/api/items/", q="zebra")["items"] == []
    books = Category.objects.get(name="Books")
    assert get("/api/categories/") == [
        {"id": books.pk, "name": "Books", "slug": "books"},
        {"id": kitchen.pk, "name": "Home & Kitchen", "slug": "home-kitchen"},
    ]


def test_a_page_is_the_state_at_its_seq_and_the_log_takes_it_from_there(
    postgres, monkeypatch
):
    """A write committed between reading the seq and the items is not in the page."""
    items = shop(6)
    target = items[2]
    real_seq_latest = snapshots.seq_latest

    def seq_then_concurrent_write() -> int:
        seq = real_seq_latest()

        def rename() -> None:
            Item.objects.filter(pk=target.pk).update(title="Renamed meanwhile")
            fresh = Item.objects.get(pk=target.pk)
            fresh.save()  # through the registry: one change in the log
            connection.close()

        writer = threading.Thread(target=rename)
        writer.start()
        writer.join()
        return seq

    monkeypatch.setattr(snapshots, "seq_latest", seq_then_concurrent_write)
    page = get("/api/items/")
    monkeypatch.undo()
    shown = next(i for i in page["items"] if i["id"] == target.pk)
    assert shown["title"] == target.title, "the page is the snapshot at its seq"
    assert seq_latest() == page["seq"] + 1
    change = Change.objects.get(seq=page["seq"] + 1)
    assert change.data["title"] == "Renamed meanwhile", "the log carries the rest"


def test_gzip_when_the_client_accepts_it():
    shop(40)
    plain = Client().get("/api/items/")
    packed = Client().get("/api/items/", HTTP_ACCEPT_ENCODING="gzip, deflate")
    assert "Content-Encoding" not in plain
    assert packed["Content-Encoding"] == "gzip"
    assert "Accept-Encoding" in packed["Vary"]
    assert json.loads(gzip.decompress(packed.content)) == plain.json()
    assert len(packed.content) < len(plain.content) / 2


def test_one_item_by_id_active_or_not():
    items = shop(3)
    items[1].active = False
    items[1].save()
    body = get(f"/api/items/{items[1].pk}/")
    assert body["id"] == items[1].pk and body["active"] is False
    assert body["title"] == items[1].title and body["category"] == "Home & Kitchen"
    missing = Client().get("/api/items/987654/")
    assert missing.status_code == 404 and missing.json()["code"] == "not_found"


def test_full_snapshot_is_streamed_in_chunks_and_matches_the_pages(monkeypatch):
    items = shop(23)
    items[0].active = False
    items[0].save()
    monkeypatch.setattr(catalog, "STREAM_CHUNK_ITEMS", 5)
    response = Client().get("/api/items/all/")
    assert response.streaming
    chunks = list(response.streaming_content)
    assert len(chunks) >= 5, "22 items in chunks of 5, plus head and tail"
    body = json.loads(b"".join(chunks))
    assert body["seq"] == seq_latest()
    paged = get("/api/items/", limit=500)
    assert body["items"] == paged["items"]


async def test_full_snapshot_streams_under_asgi_with_gzip(monkeypatch):
    from asgiref.sync import sync_to_async

    await sync_to_async(shop)(12)
    monkeypatch.setattr(catalog, "STREAM_CHUNK_ITEMS", 4)
    response = await AsyncClient().get(
        "/api/items/all/", headers={"Accept-Encoding": "gzip"}
    )
    assert response.streaming and response.is_async
    assert response["Content-Encoding"] == "gzip"
    raw = b"".join([chunk async for chunk in response.streaming_content])
    body = json.loads(gzip.decompress(raw))
    # One gzip member: clients that read only the first (httpx) get it all.
    first_member = zlib.decompressobj(16 + zlib.MAX_WBITS)
    assert json.loads(first_member.decompress(raw)) == body
    assert first_member.eof and not first_member.unused_data
    assert [i["id"] for i in body["items"]] == await sync_to_async(
        lambda: sorted(Item.objects.values_list("id", flat=True))
    )()


def test_ids_filter_returns_those_active_items_with_the_seq():
    items = shop(12)
    items[4].active = False
    items[4].save()
    wanted = [items[9].pk, items[1].pk, items[4].pk, 999_999]
    page = get("/api/items/", ids=",".join(map(str, wanted)))
    assert [i["id"] for i in page["items"]] == sorted([items[1].pk, items[9].pk])
    assert page["seq"] == seq_latest() and page["next"] is None
    # Combined with the other filters, like any shape key.
    odd = get("/api/items/", ids=f"{items[1].pk},{items[2].pk}", q="wireless")
    assert [i["id"] for i in odd["items"]] == [items[1].pk]
    assert get("/api/items/", ids="")["items"] == []
    for bad in ("1,x", "1;2", ",".join(["1"] * 2) + ",-3"):
        response = Client().get("/api/items/", {"ids": bad})
        assert response.status_code == 422, bad
    too_many = ",".join(str(n) for n in range(catalog.IDS_MAX + 1))
    assert Client().get("/api/items/", {"ids": too_many}).status_code == 422


@pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="DATABASE_URL does not name PostgreSQL: the full-text plans are PostgreSQL's",
)
@pytest.mark.parametrize(
    "params",
    [
        {"q": "wireless"},
        {"q": "model 1"},
        {"q": "headph", "category": "books"},
        {"q": "zebra"},
        {"q": "classic", "min_price": "20"},
    ],
)
def test_search_pages_are_the_same_whichever_index_reads_them(monkeypatch, params):
    shop(60)
    Item.objects.bulk_create(
        Item(title=f"Filler {n}", tags="classic", price=15) for n in range(300)
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE recommender_item")
    through_gin = walk(**params, limit=4)[0]
    explained = catalog.search_explain(filters=catalog.ItemFilter(q=params["q"]))
    assert explained["plan"] == "gin"
    monkeypatch.setattr(catalog, "SEARCH_GIN_MAX_ROWS", -1)  # always walk first
    monkeypatch.setattr(catalog, "SEARCH_WINDOW_ROWS", 7)  # and fall back often
    monkeypatch.setattr(catalog, "SEARCH_WINDOW_ROWS_FILTERED", 7)
    assert walk(**params, limit=4)[0] == through_gin
    explained = catalog.search_explain(filters=catalog.ItemFilter(q=params["q"]))
    assert explained["plan"] == "walk" and explained["explain"]
