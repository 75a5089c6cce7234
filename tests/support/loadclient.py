"""A lean WebSocket client for load: thousands of sockets in one process.

Built on websockets' sans-I/O ``ClientProtocol`` under a plain asyncio
``Protocol``: frames are handled in ``data_received`` with no task per
message, so one load-client process holds thousands of sockets and times each
arrival (``time.monotonic()``, comparable across processes on Linux) without
becoming the bottleneck. The benchmarks' load clients use it; a test that
needs the protocol's client rules uses ``sync_client`` or ``recs_client``.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from websockets.client import ClientProtocol
from websockets.extensions.permessage_deflate import ClientPerMessageDeflateFactory
from websockets.frames import Frame, Opcode
from websockets.http11 import Response
from websockets.typing import Origin
from websockets.uri import parse_uri


class WSClient(asyncio.Protocol):
    """A WebSocket client on websockets' sans-I/O protocol, one per socket.

    Frames are handled in ``data_received`` with no task per message, so one
    client process can hold thousands of sockets and time each arrival
    without the load client becoming the bottleneck. ``on_text(client, t,
    data)`` gets the arrival time and the raw UTF-8 payload.
    """

    def __init__(
        self,
        url: str,
        *,
        origin: str,
        cookie: str | None = None,
        compression: bool = False,
        on_text: Callable[[WSClient, float, bytes], None] | None = None,
    ) -> None:
        extensions = (
            [ClientPerMessageDeflateFactory(client_max_window_bits=True)]
            if compression
            else None
        )
        self.proto = ClientProtocol(
            parse_uri(url), origin=Origin(origin), extensions=extensions, max_size=None
        )
        self.request = self.proto.connect()
        if cookie:
            self.request.headers["Cookie"] = cookie
        self.on_text = on_text
        self.opened: asyncio.Future = asyncio.get_running_loop().create_future()
        self.closed: asyncio.Future = asyncio.get_running_loop().create_future()
        self.close_code: int | None = None
        self.bytes_in = 0
        self.extensions = ""
        self.transport: asyncio.Transport | None = None
        self.state: dict[str, Any] = {}

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.proto.send_request(self.request)
        self._flush()

    def _flush(self) -> None:
        for data in self.proto.data_to_send():
            if data:
                self.transport.write(data)
            elif self.transport.can_write_eof():
                self.transport.write_eof()

    def data_received(self, data: bytes) -> None:
        t = time.monotonic()
        self.bytes_in += len(data)
        self.proto.receive_data(data)
        for event in self.proto.events_received():
            if isinstance(event, Response):
                if self.proto.handshake_exc is not None:
                    if not self.opened.done():
                        self.opened.set_exception(self.proto.handshake_exc)
                else:
                    self.extensions = event.headers.get("Sec-WebSocket-Extensions", "")
                    if not self.opened.done():
                        self.opened.set_result(True)
            elif isinstance(event, Frame):
                if event.opcode is Opcode.TEXT and self.on_text is not None:
                    self.on_text(self, t, event.data)
                elif event.opcode is Opcode.CLOSE and self.proto.close_rcvd:
                    self.close_code = self.proto.close_rcvd.code
        self._flush()

    def eof_received(self) -> bool | None:
        self.proto.receive_eof()
        self._flush()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.opened.done():
            self.opened.set_exception(exc or ConnectionError("closed in handshake"))
        if not self.closed.done():
            self.closed.set_result(self.close_code)

    def send_text(self, text: str) -> None:
        self.proto.send_text(text.encode())
        self._flush()

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()


async def ws_connect(
    port: int, path: str, *, timeout_secs: float = 30, **kwargs: Any
) -> WSClient:
    """Open one WebSocket to 127.0.0.1:``port``; raise on failure or timeout."""
    loop = asyncio.get_running_loop()
    url = f"ws://127.0.0.1:{port}{path}"
    origin = f"http://127.0.0.1:{port}"
    transport, client = await asyncio.wait_for(
        loop.create_connection(
            lambda: WSClient(url, origin=origin, **kwargs), "127.0.0.1", port
        ),
        timeout_secs,
    )
    try:
        await asyncio.wait_for(client.opened, timeout_secs)
    except BaseException:
        transport.abort()
        raise
    return client


async def connect_many(
    port: int,
    path: str,
    count: int,
    *,
    concurrency: int = 200,
    cookies: list[str] | None = None,
    timeout_secs: float = 60,
    **kwargs: Any,
) -> tuple[list[WSClient], Counter]:
    """Open ``count`` sockets with at most ``concurrency`` handshakes in flight."""
    gate = asyncio.Semaphore(concurrency)
    errors: Counter = Counter()

    async def one(i: int) -> WSClient | None:
        async with gate:
            try:
                return await ws_connect(
                    port,
                    path,
                    timeout_secs=timeout_secs,
                    cookie=cookies[i] if cookies else None,
                    **kwargs,
                )
            except Exception as exc:
                errors[type(exc).__name__ + ": " + str(exc)[:80]] += 1
                return None

    clients = await asyncio.gather(*(one(i) for i in range(count)))
    return [c for c in clients if c is not None], errors
