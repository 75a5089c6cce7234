"""``/api/items/``: keyset pages of the catalog, one item, the streamed full snapshot.

Responses are gzip-compressed when the client accepts it. BREACH does not
apply: the catalog is public, and no response mixes a secret with text an
attacker controls.
"""

import asyncio
import json
import zlib
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from typing import Any

from django.core.handlers.asgi import ASGIRequest
from django.db import connections
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.middleware.gzip import GZipMiddleware, re_accepts_gzip
from django.utils.cache import patch_vary_headers
from ninja import Query, Router, Schema
from pydantic import Field

from recommender.api.schemas import ErrorOut
from recommender.selectors import items as catalog

router = Router(tags=["items"])

_GZIP = GZipMiddleware(get_response=lambda request: HttpResponse())


class ItemOut(Schema):
    id: int
    title: str
    description: str
    category: str | None
    category_id: int | None
    tags: list[str]
    price: float
    rating: float
    year: int | None
    active: bool
    updated: str | None


class ItemsPage(Schema):
    seq: int = Field(description="Change-log seq this page reflects; resume after it.")
    items: list[ItemOut]
    next: str | None = Field(
        description="Cursor of the next page (pass as ?cursor=), null on the last."
    )


class ItemsAll(Schema):
    seq: int
    items: list[ItemOut]


class CategoryOut(Schema):
    id: int
    name: str
    slug: str


class PageParams(Schema):
    category: str | None = Field(None, description="Category id or slug.")
    q: str | None = Field(
        None, max_length=200, description="Search words; each must match."
    )
    min_price: Decimal | None = Field(None, ge=0)
    max_price: Decimal | None = Field(None, ge=0)
    ids: str | None = Field(
        None,
        description=(
            f"Only these item ids, comma-separated (at most {catalog.IDS_MAX}): the "
            "snapshot of a shape's `ids` or `also_ids`."
        ),
    )
    cursor: str | None = Field(None, description="`next` of the previous page.")
    limit: int = Field(
        catalog.PAGE_LIMIT_DEFAULT,
        ge=1,
        description=f"Items per page; at most {catalog.PAGE_LIMIT_MAX} are returned.",
    )


def _json(request: HttpRequest, body: Any, status: int = 200) -> HttpResponseBase:
    response = HttpResponse(
        json.dumps(body, separators=(",", ":")),
        content_type="application/json",
        status=status,
    )
    return _GZIP.process_response(request, response)


def _error(request: HttpRequest, status: int, code: str, message: str):
    return _json(request, {"code": code, "message": message}, status)


@router.get(
    "/items/",
    response={200: ItemsPage, 404: ErrorOut, 422: ErrorOut},
    summary="A keyset page of the catalog, filtered, with its seq",
)
def items(request: HttpRequest, params: Query[PageParams]) -> HttpResponseBase:
    """Return one page of active items in id order and the seq it reflects.

    Follow ``next`` (as ``?cursor=``) until it is null to read every match
    exactly once; then resume ``/ws/sync/`` after the first page's seq.
    """
    category_id = None
    if params.category:
        try:
            category_id = catalog.category_resolve(value=params.category)
        except LookupError:
            return _error(request, 404, "not_found", "category: no such category")
    ids = None
    if params.ids is not None:
        parts = [part.strip() for part in params.ids.split(",") if part.strip()]
        if not all(part.isdigit() and len(part) <= 18 for part in parts):
            return _error(request, 422, "bad_message", "ids: not a list of item ids")
        if len(parts) > catalog.IDS_MAX:
            return _error(
                request, 422, "bad_message", f"ids: at most {catalog.IDS_MAX} ids"
            )
        ids = tuple(sorted({int(part) for part in parts}))
    after = None
    if params.cursor:
        if not params.cursor.isdigit():
            return _error(request, 422, "bad_message", "cursor: not a cursor")
        after = int(params.cursor)
    page = catalog.items_page(
        filters=catalog.ItemFilter(
            category_id=category_id,
            q=params.q or "",
            min_price=params.min_price,
            max_price=params.max_price,
            ids=ids,
        ),
        after=after,
        limit=params.limit,
    )
    return _json(request, page)


@router.get(
    "/items/all/",
    response=ItemsAll,
    summary="Every active item with its seq, streamed",
)
def items_all(request: HttpRequest) -> HttpResponseBase:
    """Stream the whole active catalog and the seq it reflects.

    For clients that really want everything (an indexer's first load); the
    dashboard reads pages. Memory stays at one chunk whatever the size.
    """
    if not isinstance(request, ASGIRequest):
        response = StreamingHttpResponse(
            catalog.items_stream(), content_type="application/json"
        )
        return _GZIP.process_response(request, response)
    content = _in_one_thread(catalog.items_stream)
    # Django's middleware compresses each chunk of an async stream as a gzip
    # member of its own; many clients (httpx among them) read only the first.
    # One compressor for the whole stream gives one member.
    gzip = re_accepts_gzip.search(request.headers.get("accept-encoding", ""))
    if gzip:
        content = _gzip_stream(content)
    response = StreamingHttpResponse(content, content_type="application/json")
    patch_vary_headers(response, ("Accept-Encoding",))
    if gzip:
        response.headers["Content-Encoding"] = "gzip"
    return response


@router.get(
    "/items/{int:item_id}/",
    response={200: ItemOut, 404: ErrorOut},
    summary="One item (active or not)",
)
def item(request: HttpRequest, item_id: int) -> HttpResponseBase:
    """Return one item by id, including a deactivated one (``active`` tells)."""
    found = catalog.item_one(item_id=item_id)
    if found is None:
        return _error(request, 404, "not_found", "no such item")
    return _json(request, found)


@router.get(
    "/categories/",
    response=list[CategoryOut],
    summary="Every category, for filters",
)
def categories(request: HttpRequest) -> HttpResponseBase:
    """Return every category with the slug ``/api/items/?category=`` accepts."""
    return _json(request, catalog.categories_list())


async def _gzip_stream(chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """Compress ``chunks`` as one gzip member, flushed chunk by chunk."""
    compressor = zlib.compressobj(6, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    async for chunk in chunks:
        # A sync flush per chunk: the client can parse what arrived so far.
        yield compressor.compress(chunk) + compressor.flush(zlib.Z_SYNC_FLUSH)
    yield compressor.flush()


def _in_one_thread(make: Callable[[], Iterator[bytes]]) -> AsyncIterator[bytes]:
    """Drive the sync iterator ``make()`` from one dedicated thread, as async.

    Under ASGI Django would otherwise read a sync iterator to its end into a
    list before sending a byte; and the snapshot's transaction belongs to one
    thread's connection, so every step must run in that same thread.
    """

    async def chunks() -> AsyncIterator[bytes]:
        loop = asyncio.get_running_loop()
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="items-all")
        source: list[Iterator[bytes]] = []

        def step() -> bytes | None:
            if not source:
                source.append(make())
            return next(source[0], None)

        def finish() -> None:
            try:
                if source and hasattr(source[0], "close"):
                    source[0].close()  # ends the transaction if the client left
            finally:
                connections.close_all()  # this thread's connections only

        try:
            while (chunk := await loop.run_in_executor(executor, step)) is not None:
                yield chunk
        finally:
            await loop.run_in_executor(executor, finish)
            executor.shutdown(wait=False)

    return chunks()
