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
#: A search the planner expects to match at most this many rows reads the
#: full-text index at once (a page of a rarer word is far away by id).
SEARCH_GIN_MAX_ROWS = 5_000
#: The walk's length when a category, price or ids filter narrows it too.
SEARCH_WINDOW_ROWS_FILTERED = 2_000
#: Words of a query beyond this many are ignored (each one is an index probe).
SEARCH_MAX_WORDS = 8
PAGE_LIMIT_DEFAULT = 50
PAGE_LIMIT_MAX = 500
#: Most ids one `ids` filter may list (a shape lists at most as many).
IDS_MAX = 500
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
    #: Only these item ids (a shape's ``ids``, or the rows a page's panels show).
    ids: tuple[int, ...] | None = None


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
    if filters.ids is not None:
        query = query.filter(id__in=filters.ids)
    words = search_words(filters.q)
    if words and connection.vendor == "postgresql":
        query = query.filter(_matches_sql(words))
    else:
        for word in words:
            query = query.filter(Q(title__icontains=word) | Q(tags__icontains=word))
    return query


def _matches_sql(words: list[str]) -> RawSQL:
    """Return the condition "every word begins a word of the title or tags".

    Each word matches as a prefix ("headph" finds "Headphones") through the
    GIN index. Words are \\w+ only, so they cannot carry tsquery operators.
    """
    tsquery = " & ".join(f"{word}:*" for word in words)
    return RawSQL(
        f"{SEARCH_VECTOR_SQL} @@ to_tsquery('simple'::regconfig, %s)",
        [tsquery],
        output_field=BooleanField(),
    )


def items_search(*, q: str, active_only: bool = True) -> QuerySet[Item]:
    """Return the items matching search text ``q``, as the catalog pages match it."""
    return _filtered(ItemFilter(q=q), active_only=active_only)


def _search_rows(
    filters: ItemFilter, *, after: int | None, count: int
) -> list[tuple[Any, ...]]:
    """Return up to ``count`` rows matching ``filters`` (search words included), by id.

    Two plans, each slow where the other is fast: walking the id index suits
    a common word (a page of matches comes at once) and reads the whole
    catalog for a rare one; reading the GIN index suits a rare word (few
    matches, sorted cheaply) and fetches tens of thousands of rows for a
    common one. PostgreSQL's statistics of the search vector (per-word
    frequencies, kept by ANALYZE) estimate how many rows the words match,
    so ask the planner first (one planning pass, no execution). The words
    alone bound the matches whatever else is filtered, and their estimate
    is not fooled by a word that keeps to one category ("wireless" in
    Electronics). Up to ``SEARCH_GIN_MAX_ROWS`` matches: read them through
    the GIN index. More: walk the next ids, which finds a page of a common
    word in milliseconds, and read the GIN index only when the walk found
    too few (a common word with a category or price it rarely has).
    """
    plan, query = _search_plan(filters, after=after)
    if plan == "gin":
        return _bitmap_read(query[:count])
    rest = ItemFilter(
        category_id=filters.category_id,
        min_price=filters.min_price,
        max_price=filters.max_price,
        ids=filters.ids,
    )
    window = _filtered(rest)
    if after is not None:
        window = window.filter(id__gt=after)
    window = (
        window.annotate(_words=RawSQL(SEARCH_VECTOR_SQL, [], output_field=TextField()))
        .order_by("id")
        .values_list(*ITEM_COLUMNS, "_words")[: _window_rows(rest)]
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
    return _bitmap_read(query[:count])


def _window_rows(rest: ItemFilter) -> int:
    # Without other filters the walk reads neighbouring rows, a few heap
    # pages per hundred; through a category or price index every row is a
    # page of its own, so the walk is kept shorter.
    plain = rest.category_id is None and rest.min_price is None
    plain = plain and rest.max_price is None and rest.ids is None
    return SEARCH_WINDOW_ROWS if plain else SEARCH_WINDOW_ROWS_FILTERED


def _bitmap_read(query: QuerySet[Any]) -> list[tuple[Any, ...]]:
    """Return the rows of ``query`` read through bitmap scans only.

    With plain index scans allowed, the planner may walk the id index from
    a cursor and test every row (50,000 rows for a word that matches none
    after a cursor 95 % in); bitmap scans start from the GIN index, so the
    cost follows the matches. Call it inside a transaction.
    """
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT set_config('enable_indexscan', 'off', true), "
            "set_config('enable_seqscan', 'off', true)"
        )
        try:
            return list(query)
        finally:
            cursor.execute(
                "SELECT set_config('enable_indexscan', 'on', true), "
                "set_config('enable_seqscan', 'on', true)"
            )


def _search_plan(
    filters: ItemFilter, *, after: int | None
) -> tuple[str, QuerySet[Any]]:
    """Return ``("gin" | "walk", query)``: how to read a search, and its GIN query.

    ``query`` yields the matching rows in id order through the full-text
    index: ordering by an expression keeps the planner off the id index.
    """
    query = _filtered(filters)
    if after is not None:
        query = query.filter(id__gt=after)
    gin = query.order_by((F("id") + 0).asc()).values_list(*ITEM_COLUMNS)
    words = Item.objects.filter(_matches_sql(search_words(filters.q)))
    sql, params = words.values("id").query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}", params)
        (plan,) = cursor.fetchone()
    if isinstance(plan, str):
        plan = json.loads(plan)
    estimate = plan[0]["Plan"]["Plan Rows"]
    return ("gin" if estimate <= SEARCH_GIN_MAX_ROWS else "walk"), gin


def search_explain(*, filters: ItemFilter, after: int | None = None) -> dict[str, Any]:
    """Return how a search page is read: the plan chosen and EXPLAIN ANALYZE of it.

    For operators and ``bench/catalog.py``: ``{"plan": "gin" | "walk",
    "explain": [line, ...]}``, the queries :func:`items_page` runs for the
    first page (the walk's window, then the GIN read if it ran), each
    explained under the settings it ran with. PostgreSQL only.
    """
    statements: list[tuple[str, Any]] = []

    def capture(execute, sql, params, many, context):
        statements.append((sql, params))
        return execute(sql, params, many, context)

    with transaction.atomic():
        plan, _ = _search_plan(filters, after=after)
        with connection.execute_wrapper(capture):
            _search_rows(filters, after=after, count=PAGE_LIMIT_DEFAULT + 1)
        lines: list[str] = []
        with connection.cursor() as cursor:
            for sql, params in statements:
                if sql.startswith(("EXPLAIN", "SELECT set_config")):
                    cursor.execute(sql, params)  # the settings the read ran with
                    continue
                cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS) {sql}", params)
                lines += [row[0] for row in cursor.fetchall()]
        transaction.set_rollback(True)
    return {"plan": plan, "explain": lines}


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
