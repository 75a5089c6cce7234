"""Reads of the catalog: keyset pages with filters, one item, the full stream."""

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db import connection, transaction
from django.db.models import BooleanField, F, Q, QuerySet, TextField
from django.db.models.expressions import RawSQL
from django.utils.text import slugify

from recommender.models import Category, Item
from recommender.serializers import ITEM_COLUMNS, item_row_to_dict
from sync.selectors import seq_latest
from sync.snapshots import snapshot_at_seq

#: The words PostgreSQL searches: a stored tsvector of title and tags with a
#: GIN index (migration 0007), kept by PostgreSQL on every write.
SEARCH_VECTOR_SQL = "search_vector"
#: Rows a search walks by id before it reads the full-text index instead.
SEARCH_WINDOW_ROWS = 20_000
#: Words of a query beyond this many are ignored (each one is an index probe).
SEARCH_MAX_WORDS = 8
PAGE_LIMIT_DEFAULT = 50
PAGE_LIMIT_MAX = 500
#: Rows per server-side cursor fetch (and per chunk) of the full stream.
STREAM_CHUNK_ITEMS = 2000

_WORD = re.compile(r"\w+", re.UNICODE)


@dataclass(frozen=True)
class ItemFilter:
    """What a catalog page is narrowed to; ``None``/empty means "any"."""

    category_id: int | None = None
    q: str = ""
    min_price: Decimal | None = None
    max_price: Decimal | None = None


def category_names() -> dict[int, str]:
    """Return ``{category id: name}`` for every category (a small table)."""
    return dict(Category.objects.values_list("id", "name"))


def categories_list() -> list[dict[str, Any]]:
    """Return every category as ``{"id", "name", "slug"}``, by name."""
    return [
        {"id": pk, "name": name, "slug": slugify(name)}
        for pk, name in Category.objects.order_by("name").values_list("id", "name")
    ]


def category_resolve(*, value: str) -> int:
    """Return the id of the category named by ``value``: its id or its slug.

    Raises
    ------
    LookupError
        No category has that id or slug.
    """
    value = value.strip()
    if value.isdigit():
        if Category.objects.filter(pk=int(value)).exists():
            return int(value)
        raise LookupError(value)
    wanted = slugify(value)
    # Slugs are derived from names rather than stored: categories number in
    # the dozens, and every import path (bulk ones included) keeps working.
    for pk, name in Category.objects.order_by("id").values_list("id", "name"):
        if slugify(name) == wanted:
            return pk
    raise LookupError(value)


def search_words(q: str) -> list[str]:
    """Return the lower-cased words of a search box text, at most ``SEARCH_MAX_WORDS``."""
    return [word.lower() for word in _WORD.findall(q)][:SEARCH_MAX_WORDS]


def _filtered(filters: ItemFilter, *, active_only: bool = True) -> QuerySet[Item]:
    query = Item.objects.filter(active=True) if active_only else Item.objects.all()
    if filters.category_id is not None:
        query = query.filter(category_id=filters.category_id)
    if filters.min_price is not None:
        query = query.filter(price__gte=filters.min_price)
    if filters.max_price is not None:
        query = query.filter(price__lte=filters.max_price)
    words = search_words(filters.q)
    if words and connection.vendor == "postgresql":
        # Every word must match, each as a prefix ("headph" finds
        # "Headphones"), through the GIN index. Words are \w+ only, so they
        # cannot carry tsquery operators.
        tsquery = " & ".join(f"{word}:*" for word in words)
        query = query.filter(
            RawSQL(
                f"{SEARCH_VECTOR_SQL} @@ to_tsquery('simple'::regconfig, %s)",
                [tsquery],
                output_field=BooleanField(),
            )
        )
    else:
        for word in words:
            query = query.filter(Q(title__icontains=word) | Q(tags__icontains=word))
    return query


def items_search(*, q: str, active_only: bool = True) -> QuerySet[Item]:
    """Return the items matching search text ``q``, as the catalog pages match it."""
    return _filtered(ItemFilter(q=q), active_only=active_only)


def _search_rows(
    filters: ItemFilter, *, after: int | None, count: int
) -> list[tuple[Any, ...]]:
    """Return up to ``count`` rows matching ``filters`` (search words included), by id.

    PostgreSQL's planner cannot guess how a word's matches spread over ids,
    and each of its two plans is slow where the other is fast: walking the
    id index suits a common word (its matches come at once) and takes
    seconds for a rare one; reading the GIN index suits a rare word and
    sorts tens of thousands of rows for a common one. So walk the next
    ``SEARCH_WINDOW_ROWS`` rows by id first, which finds a page of a common
    word in milliseconds; a word too rare to fill the page there has few
    matches in all, which the GIN index then reads and sorts cheaply.
    """
    rest = ItemFilter(
        category_id=filters.category_id,
        min_price=filters.min_price,
        max_price=filters.max_price,
    )
    window = _filtered(rest)
    if after is not None:
        window = window.filter(id__gt=after)
    window = (
        window.annotate(_words=RawSQL(SEARCH_VECTOR_SQL, [], output_field=TextField()))
        .order_by("id")
        .values_list(*ITEM_COLUMNS, "_words")[:SEARCH_WINDOW_ROWS]
    )
    inner, params = window.query.sql_with_params()
    columns = ", ".join(f"w.{connection.ops.quote_name(c)}" for c in ITEM_COLUMNS)
    tsquery = " & ".join(f"{word}:*" for word in search_words(filters.q))
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {columns} FROM ({inner}) AS w "
            "WHERE w._words @@ to_tsquery('simple'::regconfig, %s) "
            "ORDER BY w.id LIMIT %s",
            [*params, tsquery, count],
        )
        rows = cursor.fetchall()
    if len(rows) == count:
        return rows
    # Ordering by an expression keeps the planner off the id index.
    query = _filtered(filters)
    if after is not None:
        query = query.filter(id__gt=after)
    return list(query.order_by((F("id") + 0).asc()).values_list(*ITEM_COLUMNS)[:count])


def items_page(
    *, filters: ItemFilter, after: int | None, limit: int = PAGE_LIMIT_DEFAULT
) -> dict[str, Any]:
    """Return one keyset page: ``{"seq": S, "items": [...], "next": cursor | None}``.

    Items are active, match ``filters``, have ids above ``after`` and come in
    id order; ``next`` is the cursor of the following page (None on the last).
    Items and seq come from one database snapshot, so a client that applies
    every change after S to the pages it loaded holds the current catalog.
    No OFFSET: a page costs the same at the start and the end of the catalog.
    """
    limit = max(1, min(int(limit), PAGE_LIMIT_MAX))

    def read() -> tuple[list[dict[str, Any]], str | None]:
        if search_words(filters.q) and connection.vendor == "postgresql":
            rows = _search_rows(filters, after=after, count=limit + 1)
        else:
            query = _filtered(filters)
            if after is not None:
                query = query.filter(id__gt=after)
            rows = list(query.order_by("id").values_list(*ITEM_COLUMNS)[: limit + 1])
        names = category_names() if rows else {}
        items = [item_row_to_dict(row, names) for row in rows[:limit]]
        following = str(items[-1]["id"]) if len(rows) > limit else None
        return items, following

    seq, (items, following) = snapshot_at_seq(read)
    return {"seq": seq, "items": items, "next": following}


def item_one(*, item_id: int) -> dict[str, Any] | None:
    """Return one item (active or not) in its wire shape, or None if there is none."""
    row = Item.objects.filter(pk=item_id).values_list(*ITEM_COLUMNS).first()
    if row is None:
        return None
    return item_row_to_dict(row, category_names())


def items_stream(*, chunk_items: int | None = None) -> Iterator[bytes]:
    """Yield the whole active catalog as JSON ``{"seq": S, "items": [...]}`` in chunks.

    One REPEATABLE READ transaction and a server-side cursor (PostgreSQL), so
    memory stays at one chunk whatever the catalog size and the items are
    exactly the state at S. Run the whole iteration in one thread: the
    transaction belongs to that thread's connection.
    """
    chunk_items = chunk_items or STREAM_CHUNK_ITEMS
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        seq = seq_latest()
        names = category_names()
        yield b'{"seq":%d,"items":[' % seq
        rows = (
            Item.objects.filter(active=True)
            .order_by("id")
            .values_list(*ITEM_COLUMNS)
            .iterator(chunk_size=chunk_items)
        )
        encode = json.JSONEncoder(separators=(",", ":")).encode
        parts: list[str] = []
        first = True
        for row in rows:
            parts.append(encode(item_row_to_dict(row, names)))
            if len(parts) >= chunk_items:
                yield (("" if first else ",") + ",".join(parts)).encode()
                first = False
                parts = []
        if parts:
            yield (("" if first else ",") + ",".join(parts)).encode()
        yield b"]}"


def items_snapshot() -> dict[str, Any]:
    """Return ``{"seq": S, "items": [...]}``: every active item and the seq they reflect.

    Builds the whole catalog in memory: for small catalogs and tests; HTTP
    clients get :func:`items_stream` instead.
    """

    def read() -> list[dict[str, Any]]:
        names = category_names()
        return [
            item_row_to_dict(row, names)
            for row in Item.objects.filter(active=True)
            .order_by("id")
            .values_list(*ITEM_COLUMNS)
        ]

    seq, items = snapshot_at_seq(read)
    return {"seq": seq, "items": items}
