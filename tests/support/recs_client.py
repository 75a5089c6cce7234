"""The one ``/ws/recommendations/`` event client.

It sends each browsing event with a client id until the server acks it,
resending the same id after an error or a dropped socket (the documented
client rule: the server stores an event once per client id), and reconnects
with backoff, trying ``urls`` in turn.
"""

import contextlib
import itertools
import json
import time
from dataclasses import dataclass, field

from websockets.exceptions import WebSocketException
from websockets.sync.client import ClientConnection, connect

from tests.support.sockets import RECS_PATH
from tests.support.waiting import WAIT_SECS


def event_frame(item: int, client_id: str, action: str = "view", **extra) -> str:
    """Return a client ``event`` frame as JSON text."""
    return json.dumps(
        {"type": "event", "action": action, "item": item, "id": client_id, **extra}
    )


@dataclass
class EventOutcome:
    sent: int = 0  # frames sent, resends included
    acked: set[str] = field(default_factory=set)
    errors: list[dict] = field(default_factory=list)
    reconnects: int = 0


class EventClient:
    """A ``/ws/recommendations/`` client sending events until each one is acked."""

    def __init__(self, urls: list[str], origin: str, session_cookie: str) -> None:
        self.urls = urls
        self.origin = origin
        self.headers = {"Cookie": f"sessionid={session_cookie}"}
        self.outcome = EventOutcome()
        self._ws: ClientConnection | None = None
        self._stack = contextlib.ExitStack()
        self._urls = itertools.cycle(urls)

    def _connect(self, deadline: float) -> ClientConnection:
        backoff = 0.05
        while True:
            stack = contextlib.ExitStack()
            try:
                ws = stack.enter_context(
                    connect(
                        f"{next(self._urls)}{RECS_PATH}",
                        origin=self.origin,
                        additional_headers=self.headers,
                        open_timeout=5,
                        close_timeout=1,
                    )
                )
                first = json.loads(ws.recv(timeout=5))
                if first.get("type") != "recommendations":
                    raise WebSocketException(f"unexpected first frame {first}")
                self._stack = stack
                return ws
            except (OSError, WebSocketException, TimeoutError):
                stack.close()
                if time.monotonic() > deadline:
                    raise
                time.sleep(backoff)
                backoff = min(backoff * 2, 1.0)

    def send_until_acked(
        self, item_id: int, client_id: str, timeout: float = WAIT_SECS
    ) -> None:
        """Send the event; on an error or a broken socket resend the same id."""
        deadline = time.monotonic() + timeout
        frame = event_frame(item_id, client_id)
        while time.monotonic() < deadline:
            try:
                if self._ws is None:
                    self._ws = self._connect(deadline)
                    self.outcome.reconnects += 1
                self._ws.send(frame)
                self.outcome.sent += 1
                while True:
                    message = json.loads(self._ws.recv(timeout=5))
                    if message.get("type") == "ack" and message.get("id") == client_id:
                        self.outcome.acked.add(client_id)
                        return
                    if (
                        message.get("type") == "error"
                        and message.get("id") == client_id
                    ):
                        self.outcome.errors.append(message)
                        time.sleep(message.get("retry_after") or 0.1)
                        break  # resend the same id
            except (OSError, WebSocketException, TimeoutError):
                self.close()
        raise TimeoutError(f"event {client_id} not acked within {timeout} s")

    def drop(self) -> None:
        """Break the current socket from outside (another thread may be using it)."""
        ws = self._ws
        if ws is not None:
            with contextlib.suppress(Exception):
                ws.close()

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._stack.close()
        self._ws = None
