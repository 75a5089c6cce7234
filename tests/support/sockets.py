"""Opening a socket on a live server and reading its JSON frames (``websockets.sync``)."""

import json
import time
from typing import Any

from websockets.sync.client import ClientConnection, connect

SYNC_PATH = "/ws/sync/"
RECS_PATH = "/ws/recommendations/"


def open_socket(
    server: Any, path: str, session: str | None = None, **kwargs: Any
) -> ClientConnection:
    """Open a WebSocket to ``server`` (anything with ``ws_url`` and ``origin``).

    The handshake carries the server's own Origin and, with ``session``, the
    ``sessionid`` cookie; other keyword arguments go to
    ``websockets.sync.client.connect`` (``additional_headers`` included).
    Use it as a context manager.
    """
    headers = dict(kwargs.pop("additional_headers", None) or {})
    if session:
        headers["Cookie"] = f"sessionid={session}"
    kwargs.setdefault("origin", server.origin)
    return connect(
        f"{server.ws_url}{path}", additional_headers=headers or None, **kwargs
    )


def recv_json(ws: ClientConnection, timeout: float = 10.0) -> dict:
    """Return the next JSON frame of a ``websockets`` sync client (``timeout`` in s)."""
    return json.loads(ws.recv(timeout=timeout))


def recv_type(ws: ClientConnection, kind: str, timeout: float = 10.0) -> dict:
    """Return the next frame of type ``kind``, skipping sync heartbeats.

    Any other frame is an ``AssertionError``; none within ``timeout`` seconds
    in all is a ``TimeoutError``.
    """
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"no {kind!r} frame within {timeout} s")
        message = recv_json(ws, left)
        if message["type"] == kind:
            return message
        if message["type"] != "heartbeat":
            raise AssertionError(f"expected {kind!r}, got {message}")
