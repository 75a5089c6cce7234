"""Helpers of the fault tests: own Redis and nginx processes, rule-following clients.

The clients here implement the documented client rules of ``/ws/sync/`` and
``/ws/recommendations/`` (docs/protocol.md) in a background thread each, so a
test can break servers underneath them and then check what they hold:

- a sync client applies a change only when its seq is exactly ``applied + 1``,
  ignores ``seq <= applied``, sends ``resume`` on a seq jump or a heartbeat
  ahead of ``applied``, reconnects with backoff and resumes from ``applied``,
  and reloads ``GET /api/items/`` on ``reset``;
- an event client sends each browsing event with a client id until it is
  acked, resending the same id after an error or a dropped socket.
"""

import contextlib
import itertools
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import redis
from websockets.exceptions import WebSocketException
from websockets.sync.client import ClientConnection, connect

from tests.conftest import ROOT, LiveServer, free_port, wait_until_healthy

# Every wait in these tests is bounded; a hang is a failure, not a stuck suite.
WAIT_SECS = 20.0


def wait_for(
    predicate: Callable[[], bool], timeout: float = WAIT_SECS, step: float = 0.01
) -> float:
    """Poll ``predicate`` until it is true; return the seconds it took or raise."""
    started = time.monotonic()
    deadline = started + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"condition not met within {timeout} s")
        time.sleep(step)
    return time.monotonic() - started


# --- processes ---------------------------------------------------------------


class RedisServer:
    """A ``redis-server`` of the test's own on a free loopback port."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.workdir = workdir
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        log = open(self.workdir / f"redis-{self.port}.log", "a")  # noqa: SIM115 - kept open with the process
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "no",
                "--dir",
                str(self.workdir),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        client = redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=1)
        wait_for(lambda: _redis_ping(client), timeout=10, step=0.02)
        client.close()

    def stop(self) -> None:
        """Stop the server (SIGTERM, as an orderly restart does)."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.process = None


def _redis_ping(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False


NGINX_TEST_CONF = """\
# Rendered by tests/sync/faults.py for one test; see deploy/nginx.conf.
{user}
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log info;
events {{ worker_connections 1024; }}
http {{
    log_format upstream '$remote_addr "$request" $status $upstream_addr $request_time';
    access_log {prefix}/access.log upstream;
    client_body_temp_path {prefix}/client_body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;

    map $http_upgrade $connection_upgrade {{
        default upgrade;
        ''      close;
    }}
    upstream recsite {{
{servers}
        keepalive 16;
    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://recsite;
            proxy_http_version 1.1;
            proxy_set_header Host $http_host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_set_header Connection "";
            proxy_next_upstream error timeout http_502 http_503;
            proxy_connect_timeout 2s;
        }}
        location /ws/ {{
            proxy_pass http://recsite;
            proxy_http_version 1.1;
            proxy_set_header Host $http_host;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $connection_upgrade;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_connect_timeout 2s;
            proxy_read_timeout 1h;
            proxy_send_timeout 1h;
            proxy_buffering off;
            # Which process took the socket: the test kills one that has some.
            add_header X-Upstream $upstream_addr always;
        }}
    }}
}}
"""


class Nginx:
    """An nginx in front of the given loopback ports, config and logs in ``prefix``."""

    def __init__(self, prefix: Path, upstream_ports: Iterable[int]) -> None:
        self.binary = shutil.which("nginx") or (
            "/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None
        )
        self.prefix = prefix
        self.port = free_port()
        self.upstream_ports = list(upstream_ports)
        self.http_url = f"http://127.0.0.1:{self.port}"
        self.ws_url = f"ws://127.0.0.1:{self.port}"
        self.origin = self.http_url
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        assert self.binary, "nginx is not installed"
        self.prefix.mkdir(parents=True, exist_ok=True)
        conf = self.prefix / "nginx.conf"
        conf.write_text(
            NGINX_TEST_CONF.format(
                # A root master hands requests to workers as "nobody" by
                # default, who cannot enter pytest's private tmp folder.
                user="user root root;" if os.geteuid() == 0 else "",
                prefix=self.prefix,
                port=self.port,
                servers="\n".join(
                    f"        server 127.0.0.1:{p} max_fails=1 fail_timeout=10s;"
                    for p in self.upstream_ports
                ),
            )
        )
        log = open(self.prefix / "stdout.log", "w")  # noqa: SIM115 - kept open with the process
        self.process = subprocess.Popen(
            [
                self.binary,
                "-c",
                str(conf),
                "-p",
                str(self.prefix),
                "-e",
                str(self.prefix / "error.log"),
                "-g",
                "daemon off;",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )

        def healthy() -> bool:
            if self.process.poll() is not None:
                raise RuntimeError(
                    "nginx exited: " + (self.prefix / "error.log").read_text()[-2000:]
                )
            try:
                return (
                    httpx.get(f"{self.http_url}/healthz", timeout=2).status_code == 200
                )
            except httpx.HTTPError:
                return False

        wait_for(healthy, timeout=15, step=0.05)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGQUIT)  # graceful: workers finish
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        self.process = None


# --- HTTP writers --------------------------------------------------------------


class AdminSession:
    """A staff user editing items through one server's Django admin, as a person does."""

    def __init__(self, base_url: str, username: str, password: str) -> None:
        self.client = httpx.Client(
            base_url=base_url, follow_redirects=False, timeout=10
        )
        self.client.get("/admin/login/")
        response = self.client.post(
            "/admin/login/?next=/admin/",
            data={
                "username": username,
                "password": password,
                "csrfmiddlewaretoken": self.client.cookies["csrftoken"],
                "next": "/admin/",
            },
        )
        assert response.status_code == 302, response.text[:500]

    def _post(self, path: str, data: dict[str, Any]) -> httpx.Response:
        data = {**data, "csrfmiddlewaretoken": self.client.cookies["csrftoken"]}
        response = self.client.post(path, data=data)
        assert response.status_code == 302, (
            path,
            response.status_code,
            response.text[:800],
        )
        return response

    @staticmethod
    def _form(fields: dict[str, Any]) -> dict[str, Any]:
        form = {
            "title": fields["title"],
            "description": fields.get("description", ""),
            "category": fields.get("category_id") or "",
            "tags": fields.get("tags", ""),
            "price": fields.get("price", "1.00"),
            "rating": fields.get("rating", "3.0"),
            "year": fields.get("year") or "",
            "external_id": fields.get("external_id", ""),
        }
        if fields.get("active", True):
            form["active"] = "on"
        return form

    def add_item(self, **fields: Any) -> int:
        """Create an item with the add form; return its id."""
        response = self._post(
            "/admin/recommender/item/add/", {**self._form(fields), "_continue": "1"}
        )
        # "Save and continue editing" redirects to /admin/recommender/item/<id>/change/
        return int(response.headers["location"].rstrip("/").split("/")[-2])

    def change_item(self, item_id: int, **fields: Any) -> None:
        self._post(f"/admin/recommender/item/{item_id}/change/", self._form(fields))

    def action(self, name: str, item_ids: list[int]) -> None:
        self._post(
            "/admin/recommender/item/",
            {
                "action": name,
                "select_across": "0",
                "index": "0",
                "_selected_action": [str(i) for i in item_ids],
            },
        )

    def delete_item(self, item_id: int) -> None:
        self._post(f"/admin/recommender/item/{item_id}/delete/", {"post": "yes"})

    def close(self) -> None:
        self.client.close()


def items_snapshot(base_url: str) -> tuple[int, dict[int, dict]]:
    """Return ``(seq, {id: item})`` from ``GET /api/items/``."""
    body = httpx.get(f"{base_url}/api/items/", timeout=10).json()
    return body["seq"], {item["id"]: item for item in body["items"]}


# --- WebSocket clients -----------------------------------------------------------


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
    client starts from ``GET /api/items/`` and keeps the item state; without
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
                    f"{url}/ws/sync/",
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
                        f"{next(self._urls)}/ws/recommendations/",
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
        frame = json.dumps(
            {"type": "event", "action": "view", "item": item_id, "id": client_id}
        )
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


def recv_type(ws: ClientConnection, kind: str, timeout: float = 10.0) -> dict:
    """Return the next frame of type ``kind``, skipping heartbeats."""
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"no {kind!r} frame within {timeout} s")
        message = json.loads(ws.recv(timeout=left))
        if message["type"] == kind:
            return message
        if message["type"] != "heartbeat":
            raise AssertionError(f"expected {kind!r}, got {message}")


class ShellWriter:
    """``manage.py shell`` renaming items until told to stop: a third writing process.

    The process starts at once (Django's start-up is slow on a busy machine)
    but writes only after :meth:`go`, one rename every ``interval`` seconds,
    until :meth:`finish`. It prints one line per committed write; a write must
    never fail because the channel layer is down.
    """

    def __init__(self, item_ids: list[int], workdir: Path, interval: float, env: dict):
        stamp = time.monotonic_ns()
        self.go_file = workdir / f"writer-go-{stamp}"
        self.stop_file = workdir / f"writer-stop-{stamp}"
        code = (
            "import os, time\n"
            "from recommender.models import Item\n"
            "from sync.selectors import seq_latest\n"
            "print('ready', flush=True)\n"
            f"while not os.path.exists({str(self.go_file)!r}):\n"
            "    time.sleep(0.01)\n"
            f"ids = {item_ids!r}\n"
            "n = 0\n"
            f"while not os.path.exists({str(self.stop_file)!r}):\n"
            "    item = Item.objects.get(pk=ids[n % len(ids)])\n"
            "    item.title = f'written {n}'\n"
            "    item.save()\n"
            "    print('wrote', n, flush=True)\n"
            "    n += 1\n"
            f"    time.sleep({interval})\n"
        )
        self.ready = threading.Event()
        self.written = 0
        # Failed broadcasts are logged with tracebacks: to a file, not a pipe
        # that could fill up and block the writer.
        self.log_path = workdir / f"writer-{stamp}.log"
        self._log = open(self.log_path, "w")  # noqa: SIM115 - closed in finish/kill
        self.process = subprocess.Popen(
            [sys.executable, str(ROOT / "manage.py"), "shell", "-c", code],
            env=env,
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
            cwd=ROOT,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.process.stdout:
            if line.startswith("wrote "):
                self.written += 1
            elif line.startswith("ready"):
                self.ready.set()

    def go(self, timeout: float = 60) -> None:
        """Start writing once the process is up; return after the first writes."""
        wait_for(
            lambda: self.ready.is_set() or self.process.poll() is not None, timeout
        )
        if self.process.poll() is not None:
            raise RuntimeError(f"writer exited: {self.log_path.read_text()[-3000:]}")
        self.go_file.touch()
        wait_for(lambda: self.written >= 3 or self.process.poll() is not None, 30)

    def finish(self) -> int:
        """Stop writing; return how many writes committed."""
        self.go_file.touch()
        self.stop_file.touch()
        self.process.wait(timeout=30)
        self._reader.join(timeout=5)
        self._log.close()
        assert self.process.returncode == 0, self.log_path.read_text()[-3000:]
        return self.written

    def broadcast_failures(self) -> int:
        """Return how many failed broadcasts the writer logged."""
        return self.log_path.read_text().count("broadcast of changes")

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        self._log.close()


class Servers:
    """``manage.py serve`` processes on the test database, started without
    collecting static files each time (the fixture collects them once)."""

    def __init__(self, workdir: Path, child_env: Callable[..., dict]) -> None:
        self.workdir = workdir
        self.child_env = child_env
        self.started: list[LiveServer] = []

    def __call__(self, **env: str) -> LiveServer:
        return self.many(1, **env)[0]

    def many(self, count: int, **env: str) -> list[LiveServer]:
        """Start ``count`` processes at once and wait until all are healthy."""
        launched = []
        for _ in range(count):
            port = free_port()
            path = self.workdir / f"serve-{port}.log"
            log = open(path, "w")  # noqa: SIM115 - closed with the process
            process = subprocess.Popen(
                [
                    sys.executable,
                    str(ROOT / "manage.py"),
                    "serve",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(port),
                    "--no-collectstatic",
                ],
                env=self.child_env(**env),
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=ROOT,
            )
            server = LiveServer(port, process)
            self.started.append(server)
            launched.append((server, path))
        for server, path in launched:
            try:
                wait_until_healthy(server.http_url, server.process, timeout_secs=60)
            except Exception:
                server.stop()
                print(path.read_text())
                raise
        return [server for server, _ in launched]

    def stop_all(self) -> None:
        for server in self.started:
            server.stop()
