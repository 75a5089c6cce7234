"""The one ``/ws/sync/`` client: the documented client rules, in a thread.

It implements the client rules of docs/protocol.md, so a test can break
servers underneath it and then check what it holds:

- a change is applied only when its seq is exactly ``applied + 1``; one with
  ``seq <= applied`` is ignored (a duplicate);
- a seq jump, or a heartbeat ahead of ``applied``, sends ``resume``;
- a dropped socket reconnects with backoff (trying ``urls`` in turn) and
  resumes from ``applied``;
- ``reset`` reloads the snapshot from ``GET /api/items/all/``.
"""

import contextlib
import itertools
import json
import threading
import time
from dataclasses import dataclass, field

import httpx
from websockets.exceptions import WebSocketException
from websockets.sync.client import ClientConnection, connect

from tests.support.sockets import SYNC_PATH
from tests.support.waiting import WAIT_SECS, wait_for


def items_snapshot(base_url: str) -> tuple[int, dict[int, dict]]:
    """Return ``(seq, {id: item})`` from ``GET /api/items/all/``."""
    body = httpx.get(f"{base_url}/api/items/all/", timeout=10).json()
    return body["seq"], {item["id"]: item for item in body["items"]}


@dataclass
class SyncStats:
    connects: int = 0
    disconnects: int = 0
    resumes_sent: int = 0
    duplicates_ignored: int = 0
    gaps_seen: int = 0
    resets: int = 0
    heartbeats: int = 0
    last_disconnect_at: float | None = None
    reconnected_at: list[float] = field(default_factory=list)


class SyncClient:
    """A ``/ws/sync/`` client following the documented rules, in its own thread.

    ``urls`` are tried in turn on every (re)connect. With ``snapshot_url`` the
    client starts from ``GET /api/items/all/`` and keeps the item state; without
    it the client starts from the seq of its first ``hello``.
    """

    def __init__(
        self,
        urls: list[str],
        origin: str,
        *,
        snapshot_url: str | None = None,
        name: str = "client",
    ) -> None:
        self.urls = urls
        self.origin = origin
        self.snapshot_url = snapshot_url
        self.name = name
        self.applied = -1
        self.start_seq = -1
        self.log: list[dict] = []  # every applied change, in order
        self.received_at: dict[int, float] = {}  # seq -> monotonic time applied
        self.items: dict[int, dict] = {}
        self.stats = SyncStats()
        self.upstreams: list[str] = []  # X-Upstream of each connection (nginx)
        self.errors: list[str] = []
        self._resume_pending = False
        self._stop = threading.Event()
        self._ws: ClientConnection | None = None
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    # lifecycle
    def start(self, timeout: float = WAIT_SECS) -> "SyncClient":
        if self.snapshot_url:
            self._load_snapshot()
        self._thread.start()
        wait_for(lambda: self.applied >= 0 and self.stats.connects > 0, timeout)
        return self

    def stop(self) -> None:
        self._stop.set()
        ws = self._ws
        if ws is not None:
            with contextlib.suppress(Exception):
                ws.close()
        self._thread.join(timeout=10)

    def drop(self) -> None:
        """Close the current socket from the client side (it reconnects)."""
        ws = self._ws
        if ws is not None:
            with contextlib.suppress(Exception):
                ws.close()

    def wait_applied(self, seq: int, timeout: float = WAIT_SECS) -> float:
        return wait_for(lambda: self.applied >= seq, timeout)

    # protocol
    def _load_snapshot(self) -> None:
        seq, items = items_snapshot(self.snapshot_url)
        with self._lock:
            self.items = items
            self.applied = seq
            if self.start_seq < 0:
                self.start_seq = seq

    def _send(self, ws: ClientConnection, message: dict) -> None:
        ws.send(json.dumps(message))

    def _resume(self, ws: ClientConnection) -> None:
        self._resume_pending = True
        self.stats.resumes_sent += 1
        self._send(ws, {"type": "resume", "after": self.applied})

    def _apply(self, change: dict) -> None:
        with self._lock:
            self.log.append(change)
            self.applied = change["seq"]
            self.received_at[change["seq"]] = time.monotonic()
            if change["model"] != "item":
                return
            data = change["data"]
            if change["op"] == "upsert" and data and data.get("active"):
                self.items[change["id"]] = data
            else:
                self.items.pop(change["id"], None)

    def _handle(self, ws: ClientConnection, message: dict) -> None:
        kind = message["type"]
        if kind == "hello":
            if self.applied < 0:  # first connect, no snapshot: start here
                self.applied = self.start_seq = message["seq"]
            else:
                self._resume(ws)
        elif kind == "change":
            seq = message["seq"]
            if seq <= self.applied:
                self.stats.duplicates_ignored += 1
            elif seq == self.applied + 1:
                self._apply(message)
            else:
                self.stats.gaps_seen += 1
                if not self._resume_pending:
                    self._resume(ws)
        elif kind == "resumed":
            self._resume_pending = False
            if message["seq"] > self.applied:  # the replay must end where it says
                self.errors.append(f"resumed {message['seq']} > applied {self.applied}")
        elif kind == "reset":
            self.stats.resets += 1
            self._resume_pending = False
            if self.snapshot_url:
                self._load_snapshot()
                self._resume(ws)
            else:
                self.errors.append(f"reset to {message['seq']} without a snapshot")
        elif kind == "heartbeat":
            self.stats.heartbeats += 1
            if message["seq"] > self.applied and not self._resume_pending:
                self._resume(ws)
        else:
            self.errors.append(f"unexpected {message}")

    def _run(self) -> None:
        backoff = 0.05
        for url in itertools.cycle(self.urls):
            if self._stop.is_set():
                return
            try:
                with connect(
                    f"{url}{SYNC_PATH}",
                    origin=self.origin,
                    open_timeout=5,
                    close_timeout=1,
                ) as ws:
                    self._ws = ws
                    self.upstreams.append(ws.response.headers.get("X-Upstream", ""))
                    self._resume_pending = False
                    self.stats.connects += 1
                    if self.stats.connects > 1:
                        self.stats.reconnected_at.append(time.monotonic())
                    backoff = 0.05
                    while not self._stop.is_set():
                        try:
                            raw = ws.recv(timeout=0.5)
                        except TimeoutError:
                            continue
                        self._handle(ws, json.loads(raw))
            except (OSError, WebSocketException, TimeoutError, httpx.HTTPError):
                pass
            except Exception as exc:  # a bug in the client or the server's frames
                self.errors.append(repr(exc))
            self._ws = None
            if self._stop.is_set():
                return
            self.stats.disconnects += 1
            self.stats.last_disconnect_at = time.monotonic()
            time.sleep(backoff)
            backoff = min(backoff * 2, 1.0)

    # checks
    def seqs(self) -> list[int]:
        return [change["seq"] for change in self.log]
