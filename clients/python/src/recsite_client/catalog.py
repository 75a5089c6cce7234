"""Follow the catalog: a snapshot, then every change in order, across reconnects."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import WebSocketException

from recsite_client.backoff import Backoff
from recsite_client.changes import Event, Reloaded, change_from_message
from recsite_client.http import PAGE_LIMIT, load_snapshot, origin_of, ws_url

logger = logging.getLogger(__name__)

SYNC_PATH = "/ws/sync/"


@dataclass
class StreamStats:
    """What the stream did, for logs and metrics (counts since it started)."""

    connects: int = 0
    resumes_sent: int = 0
    gaps_seen: int = 0
    duplicates_ignored: int = 0
    resets: int = 0
    heartbeats: int = 0
    silent_reconnects: int = 0


class CatalogStream:
    """The catalog as a snapshot followed by its changes, as an async iterator.

    ``async for event in CatalogStream("https://shop.example"):`` yields a
    :class:`~recsite_client.Reloaded` first, then :class:`~recsite_client.Upsert`,
    :class:`~recsite_client.Leave` and :class:`~recsite_client.Delete` in seq
    order, each exactly once, forever: a dropped socket or a restarted server
    is reconnected (with backoff and jitter) and resumed where it stopped; a
    server that no longer holds the missed changes makes the stream reload
    the snapshot and yield another ``Reloaded``.

    ``snapshot="whole"`` reads the catalog in one streamed response
    (``/api/items/all/``); ``"pages"`` follows ``/api/items/`` page by page
    (``page_limit`` items each), for servers or proxies that limit response
    size. ``idle_timeout`` (seconds) is how long a socket may stay silent before it
    is taken for dead and replaced; the server sends a heartbeat every 15 s by
    default. ``shape={"category": "books", "max_price": 20}`` follows only
    the items matching it (a filtered snapshot, then ``subscribe``): an item
    leaving the shape arrives as a :class:`~recsite_client.Leave`, and seqs
    skip the changes of other items. ``headers`` go with every HTTP request and the handshake.
    """

    def __init__(
        self,
        base_url: str,
        *,
        backoff: Backoff | None = None,
        idle_timeout: float = 45.0,
        open_timeout: float = 10.0,
        page_limit: int = PAGE_LIMIT,
        snapshot: str = "whole",
        shape: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        if snapshot not in ("whole", "pages"):
            raise ValueError("snapshot is 'whole' or 'pages'")
        self.base_url = base_url.rstrip("/")
        self.backoff = backoff or Backoff()
        self.idle_timeout = idle_timeout
        self.open_timeout = open_timeout
        self.page_limit = page_limit
        self.snapshot = snapshot
        # A shape: {"category":…, "q":…, "min_price":…, "max_price":…, "ids":[…]}
        # (any of); each has its HTTP snapshot filter. ``also_ids`` would need
        # a second snapshot and per-row floors (protocol client rule 8).
        if shape and (set(shape) - {"category", "q", "min_price", "max_price", "ids"}):
            raise ValueError("shape keys: category, q, min_price, max_price, ids")
        self.shape = {"model": "item", **shape} if shape else None
        self.headers = dict(headers or {})
        self.applied: int | None = None  # seq of the last event yielded
        self.stats = StreamStats()
        self._ws: ClientConnection | None = None
        self._resume_pending = False
        self._attempt = 0  # reconnect attempts since a socket last delivered

    def __aiter__(self) -> AsyncIterator[Event]:
        return self.events()

    def drop(self) -> None:
        """Close the current socket (the stream reconnects and resumes)."""
        if self._ws is not None:
            self._ws.transport.abort()  # no closing handshake: as a network cut

    async def events(self) -> AsyncIterator[Event]:
        """Yield the snapshot, then every change in order; reconnect forever."""
        async with httpx.AsyncClient(
            base_url=self.base_url, headers=self.headers, timeout=30
        ) as http:
            yield await self._first_snapshot(http)
            self._attempt = 0
            while True:
                try:
                    async with connect(
                        ws_url(self.base_url, SYNC_PATH),
                        origin=origin_of(self.base_url),
                        additional_headers=self.headers or None,
                        open_timeout=self.open_timeout,
                        close_timeout=2,
                    ) as ws:
                        self._ws = ws
                        self.stats.connects += 1
                        await self._resume(ws)
                        async for event in self._follow(ws, http):
                            yield event
                except (OSError, TimeoutError, WebSocketException) as exc:
                    logger.info("recsite sync: %s; reconnecting", exc or type(exc))
                except httpx.HTTPError as exc:
                    logger.warning("recsite sync: snapshot failed: %s; retrying", exc)
                finally:
                    self._ws = None
                await asyncio.sleep(self.backoff.delay(self._attempt))
                self._attempt += 1

    async def _first_snapshot(self, http: httpx.AsyncClient) -> Reloaded:
        """Load the first snapshot, retrying with backoff while the server fails."""
        while True:
            try:
                return await self._reload(http, "initial")
            except httpx.HTTPError as exc:
                logger.warning("recsite sync: snapshot failed: %s; retrying", exc)
            await asyncio.sleep(self.backoff.delay(self._attempt))
            self._attempt += 1

    async def _reload(self, http: httpx.AsyncClient, reason: str) -> Reloaded:
        params = None
        if self.shape:
            params = {
                k: ",".join(map(str, v)) if k == "ids" else v
                for k, v in self.shape.items()
                if k != "model"
            }
        seq, items = await load_snapshot(
            http,
            params,
            page_limit=self.page_limit,
            whole=self.snapshot == "whole" and not params,
        )
        self.applied = seq
        return Reloaded(seq, items, reason)

    async def _resume(self, ws: ClientConnection, *, subscribe: bool = True) -> None:
        self._resume_pending = True
        self.stats.resumes_sent += 1
        if self.shape and subscribe:  # shape rule 5: subscribe on every connect
            message = {"type": "subscribe", "shape": self.shape, "id": "shape"}
            await ws.send(json.dumps({**message, "after": self.applied}))
        else:
            await ws.send(json.dumps({"type": "resume", "after": self.applied}))

    async def _recv(self, ws: ClientConnection) -> dict[str, Any]:
        try:
            raw = await asyncio.wait_for(ws.recv(), self.idle_timeout)
        except TimeoutError:
            self.stats.silent_reconnects += 1
            raise TimeoutError(f"no frame in {self.idle_timeout} s") from None
        self._attempt = 0  # the socket works: the next drop starts over
        return json.loads(raw)

    async def _follow(
        self, ws: ClientConnection, http: httpx.AsyncClient
    ) -> AsyncIterator[Event]:
        """Apply the client rules of docs/protocol.md to one socket's frames."""
        if self.applied is None:
            raise RuntimeError("follow before the snapshot was loaded")
        while True:
            message = await self._recv(ws)
            kind = message.get("type")
            if kind == "change" and self.shape:
                # Shape rules: gaps are normal; "prev" past applied is a loss.
                seq, prev = message["seq"], message.get("prev", self.applied)
                if seq <= self.applied:
                    self.stats.duplicates_ignored += 1
                elif prev <= self.applied:
                    self.applied = seq
                    yield change_from_message(message)
                else:
                    self.stats.gaps_seen += 1
                    if not self._resume_pending:
                        await self._resume(ws, subscribe=False)
            elif kind in ("subscribed", "heartbeat") and self.shape:
                self.stats.heartbeats += kind == "heartbeat"
                if kind == "subscribed" or not self._resume_pending:
                    self._resume_pending = False
                    self.applied = max(self.applied, message["seq"])
            elif kind == "hello" and self.shape:
                pass  # the subscribe sent on connect answers with subscribed
            elif kind == "change":
                seq = message["seq"]
                if seq <= self.applied:
                    self.stats.duplicates_ignored += 1
                elif seq == self.applied + 1:
                    self.applied = seq
                    yield change_from_message(message)
                else:
                    # Something was missed. While a resume is pending its
                    # replay brings it; otherwise ask for it.
                    self.stats.gaps_seen += 1
                    if not self._resume_pending:
                        await self._resume(ws)
            elif kind in ("hello", "heartbeat"):
                self.stats.heartbeats += kind == "heartbeat"
                if message["seq"] > self.applied and not self._resume_pending:
                    self.stats.gaps_seen += 1
                    await self._resume(ws)
            elif kind == "resumed":
                self._resume_pending = False
                if self.shape:
                    self.applied = max(self.applied, message["seq"])
            elif kind == "reset":
                self.stats.resets += 1
                yield await self._reload(http, "reset")
                if self.shape:
                    # A subscribe's reset is followed by "subscribed"; a
                    # resume's ends the replay: continue from the snapshot.
                    self._resume_pending = False
                else:
                    await self._resume(ws)
            elif kind == "error":
                logger.warning("recsite sync: server error %s", message)
