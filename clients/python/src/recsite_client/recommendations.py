"""One user's recommendations socket: send events, receive lists, survive drops."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, WebSocketException

from recsite_client.backoff import Backoff
from recsite_client.http import NotAuthenticated, login, origin_of, ws_url

logger = logging.getLogger(__name__)

RECS_PATH = "/ws/recommendations/"
ACTIONS = ("view", "click", "like", "cart", "purchase")
#: Error codes after which the same frame is sent again (with the same id).
RETRYABLE = ("rate_limited", "unavailable")
CLOSE_NO_SESSION = 4401


class EventRejected(Exception):
    """The server refused an event for good (``bad_message``, ``unknown_item``…)."""

    def __init__(self, code: str, message: str, event_id: str) -> None:
        super().__init__(f"{code}: {message} (event {event_id})")
        self.code = code
        self.event_id = event_id


@dataclass(frozen=True)
class Recommended:
    """One recommended item: ``score`` in [0, 1], ``reasons`` human-readable."""

    id: int
    title: str
    score: float
    reasons: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class RecommendationList:
    """One list the server pushed; ``version`` grows with every recompute."""

    version: int
    items: list[Recommended]
    computed_ms: float | None = None

    @classmethod
    def from_message(cls, message: dict[str, Any]) -> RecommendationList:
        return cls(
            version=message["version"],
            items=[
                Recommended(
                    id=entry["id"],
                    title=entry.get("title", ""),
                    score=entry.get("score", 0.0),
                    reasons=list(entry.get("reasons") or []),
                )
                for entry in message["items"]
            ],
            computed_ms=message.get("computed_ms"),
        )


class RecommendationsClient:
    """``/ws/recommendations/`` for one user, kept open until :meth:`close`.

    Authenticate with ``session_id`` (a Django ``sessionid`` you already
    hold) or ``username``/``password`` (logged in through the site's login
    form). Use it as ``async with RecommendationsClient(...) as recs:``.

    :meth:`send_event` returns once the server acknowledged the event. Every
    event has an id; an event not yet acknowledged when the socket drops is
    sent again, with the same id, after reconnecting: the server stores it
    once. Iterate the client (``async for lst in recs``) for the lists the
    server pushes, newest version only, in increasing version.
    """

    def __init__(
        self,
        base_url: str,
        *,
        session_id: str | None = None,
        username: str | None = None,
        password: str | None = None,
        backoff: Backoff | None = None,
        open_timeout: float = 10.0,
    ) -> None:
        if session_id is None and (username is None or password is None):
            raise ValueError("pass session_id, or username and password")
        self.base_url = base_url.rstrip("/")
        self.session_id = session_id
        self._credentials = (username, password)
        self.backoff = backoff or Backoff()
        self.open_timeout = open_timeout
        self.version = 0  # version of the newest list received
        self.connects = 0
        self.retries = 0  # frames resent after rate_limited / unavailable
        self._pending: dict[str, tuple[str, asyncio.Future[None]]] = {}
        self._lists: asyncio.Queue[RecommendationList | Exception] = asyncio.Queue()
        self._ws: ClientConnection | None = None
        self._connected = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._fatal: Exception | None = None
        self._resends: set[asyncio.Task[None]] = set()  # held until done

    async def __aenter__(self) -> RecommendationsClient:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def start(self) -> None:
        """Log in if needed, then open the socket (kept open in the background)."""
        if self.session_id is None:
            username, password = self._credentials
            async with httpx.AsyncClient(base_url=self.base_url, timeout=30) as http:
                self.session_id = await login(http, username or "", password or "")
        self._task = asyncio.create_task(self._run(), name="recsite-recommendations")

    async def close(self) -> None:
        """Close the socket and stop reconnecting; pending events fail."""
        for task in list(self._resends):
            task.cancel()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._fail_all(ConnectionError("client closed"))

    def drop(self) -> None:
        """Cut the current socket (the client reconnects and resends pending events)."""
        if self._ws is not None:
            self._ws.transport.abort()

    async def send_event(
        self, action: str, item: int, *, event_id: str | None = None
    ) -> str:
        """Send one event; return its id once the server acknowledged it.

        ``action`` is one of :data:`ACTIONS`, ``item`` an item id. Raises
        :class:`EventRejected` when the server refuses it for good and
        :class:`NotAuthenticated` when the session is not valid.
        """
        if self._fatal is not None:
            raise self._fatal
        event_id = event_id or f"py-{uuid.uuid4().hex}"
        frame = json.dumps(
            {"type": "event", "action": action, "item": item, "id": event_id}
        )
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending[event_id] = (frame, done)
        if self._ws is not None:
            with contextlib.suppress(ConnectionClosed):
                await self._ws.send(frame)  # else: sent again on reconnect
        await done
        return event_id

    def __aiter__(self) -> AsyncIterator[RecommendationList]:
        return self.lists()

    async def lists(self) -> AsyncIterator[RecommendationList]:
        """Yield each new recommendation list, the one on connect first."""
        while True:
            got = await self._lists.get()
            if isinstance(got, Exception):
                raise got
            yield got

    async def _run(self) -> None:
        attempt = 0
        while True:
            try:
                async with connect(
                    ws_url(self.base_url, RECS_PATH),
                    origin=origin_of(self.base_url),
                    additional_headers={"Cookie": f"sessionid={self.session_id}"},
                    open_timeout=self.open_timeout,
                    close_timeout=2,
                ) as ws:
                    self._ws = ws
                    self.connects += 1
                    for frame, _ in list(self._pending.values()):
                        await ws.send(frame)  # the ack may have been lost
                    async for raw in ws:
                        attempt = 0
                        await self._handle(ws, json.loads(raw))
                    if ws.close_code == CLOSE_NO_SESSION:
                        self._stop(NotAuthenticated("the server has no such session"))
                        return
            except ConnectionClosed as exc:
                if exc.rcvd is not None and exc.rcvd.code == CLOSE_NO_SESSION:
                    self._stop(NotAuthenticated("the server has no such session"))
                    return
                logger.info("recsite recommendations: %s; reconnecting", exc)
            except (OSError, TimeoutError, WebSocketException) as exc:
                logger.info("recsite recommendations: %s; reconnecting", exc)
            finally:
                self._ws = None
            await asyncio.sleep(self.backoff.delay(attempt))
            attempt += 1

    async def _handle(self, ws: ClientConnection, message: dict[str, Any]) -> None:
        kind = message.get("type")
        if kind == "recommendations":
            # Lists another tab of the user watches (similar, trending, …)
            # reach this socket too; this client follows the personal list.
            if message.get("placement", "for_you") != "for_you":
                return
            if message["version"] > self.version:
                self.version = message["version"]
                self._lists.put_nowait(RecommendationList.from_message(message))
        elif kind == "ack":
            pending = self._pending.pop(str(message.get("id")), None)
            if pending is not None and not pending[1].done():
                pending[1].set_result(None)
        elif kind == "error":
            event_id = message.get("id")
            pending = self._pending.get(str(event_id)) if event_id else None
            if pending is None:
                logger.warning("recsite recommendations: server error %s", message)
            elif message.get("code") in RETRYABLE:
                self.retries += 1
                delay = float(message.get("retry_after") or 0.5)
                task = asyncio.create_task(self._resend(ws, pending[0], delay))
                self._resends.add(task)
                task.add_done_callback(self._resends.discard)
            else:
                del self._pending[str(event_id)]
                pending[1].set_exception(
                    EventRejected(
                        message.get("code", "error"),
                        message.get("message", ""),
                        event_id,
                    )
                )

    async def _resend(self, ws: ClientConnection, frame: str, delay: float) -> None:
        await asyncio.sleep(delay)
        # A socket that has gone meanwhile resends every pending frame itself.
        with contextlib.suppress(ConnectionClosed):
            if self._ws is ws:
                await ws.send(frame)

    def _stop(self, error: Exception) -> None:
        self._fatal = error
        self._fail_all(error)
        self._lists.put_nowait(error)

    def _fail_all(self, error: Exception) -> None:
        for _, done in self._pending.values():
            if not done.done():
                done.set_exception(error)
        self._pending.clear()
