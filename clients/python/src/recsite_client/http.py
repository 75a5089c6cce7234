"""HTTP helpers: URLs, the catalog snapshot, logging in through Django's form."""

from __future__ import annotations

import json
import zlib
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

import httpx

ITEMS_PATH = "/api/items/"
ITEMS_ALL_PATH = "/api/items/all/"
LOGIN_PATH = "/accounts/login/"
#: The server returns at most 500 items a page; ask for that many.
PAGE_LIMIT = 500


class NotAuthenticated(Exception):
    """The server refused the credentials or the session (login failed, 4401)."""


def origin_of(base_url: str) -> str:
    """Return ``scheme://host[:port]`` of ``base_url``, the WebSocket ``Origin``."""
    parts = urlsplit(base_url)
    return f"{parts.scheme}://{parts.netloc}"


def ws_url(base_url: str, path: str) -> str:
    """Return the ``ws://`` (or ``wss://`` for https) URL of ``path`` on the server."""
    parts = urlsplit(base_url.rstrip("/"))
    scheme = "wss" if parts.scheme == "https" else "ws"
    return f"{scheme}://{parts.netloc}{parts.path}{path}"


async def load_snapshot(
    http: httpx.AsyncClient,
    params: dict[str, Any] | None = None,
    *,
    page_limit: int = PAGE_LIMIT,
    whole: bool = False,
) -> tuple[int, dict[int, dict[str, Any]]]:
    """Return ``(seq, {id: item})`` read from ``GET /api/items/``.

    ``whole=True`` reads the unfiltered catalog in one streamed response,
    ``GET /api/items/all/`` (one database snapshot and seq, one request;
    20,000 items in 2.8-3.4 s against 4.0-4.7 s in pages of 500 on a loaded
    2-core machine), falling back to pages on a server without it.

    Follows ``next`` (as ``?cursor=``) while the server sends one, so it reads
    both the paged answer ``{"seq","items","next"}`` and an older server's
    whole catalog ``{"seq","items"}``. The seq is the *first* page's: later
    pages may already reflect later changes, which the change stream then
    replays from that seq on (every change carries the full item, so applying
    one again converges).
    """
    if whole and not params:
        async with http.stream("GET", ITEMS_ALL_PATH) as response:
            if response.status_code != 404:
                response.raise_for_status()
                raw = response.aiter_raw()
                if response.headers.get("content-encoding") == "gzip":
                    text = await _gunzip_members(raw)
                else:
                    text = b"".join([chunk async for chunk in raw])
                body = json.loads(text)
                return body["seq"], {item["id"]: item for item in body["items"]}
    query = {**(params or {}), "limit": page_limit}
    response = await http.get(ITEMS_PATH, params=query)
    response.raise_for_status()
    body = response.json()
    seq = body["seq"]
    items = {item["id"]: item for item in body["items"]}
    while body.get("next"):
        response = await http.get(ITEMS_PATH, params={**query, "cursor": body["next"]})
        response.raise_for_status()
        body = response.json()
        items.update((item["id"], item) for item in body["items"])
    return seq, items


async def _gunzip_members(raw: AsyncIterator[bytes]) -> bytes:
    """Return the bytes of a gzip body made of one *or several* gzip members.

    A server compressing an async stream chunk by chunk (Django's
    ``GZipMiddleware`` under ASGI) sends one gzip member per chunk; httpx's
    own decoder stops after the first, which would cut the JSON short.
    """
    out: list[bytes] = []
    decoder = zlib.decompressobj(16 + zlib.MAX_WBITS)
    async for chunk in raw:
        while chunk:
            out.append(decoder.decompress(chunk))
            if not decoder.eof:
                break
            chunk = decoder.unused_data  # the next member starts here
            decoder = zlib.decompressobj(16 + zlib.MAX_WBITS)
    out.append(decoder.flush())
    return b"".join(out)


async def login(http: httpx.AsyncClient, username: str, password: str) -> str:
    """Log in through Django's login form; return the ``sessionid``.

    ``http`` must have the server as ``base_url``. The form needs its CSRF
    token (cookie and field) and, over HTTPS, a same-origin ``Referer``.
    Raises :class:`NotAuthenticated` when the server does not log the user in.
    """
    await http.get(LOGIN_PATH)
    token = http.cookies.get("csrftoken")
    if token is None:
        raise NotAuthenticated(f"{LOGIN_PATH} set no CSRF cookie")
    response = await http.post(
        LOGIN_PATH,
        data={"username": username, "password": password, "csrfmiddlewaretoken": token},
        headers={"Referer": f"{http.base_url}".rstrip("/") + LOGIN_PATH},
        follow_redirects=False,
    )
    session = http.cookies.get("sessionid")
    if response.status_code != 302 or not session:
        raise NotAuthenticated(f"login as {username!r} failed ({response.status_code})")
    return session
