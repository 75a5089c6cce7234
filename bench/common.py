"""Shared helpers of the network benchmarks: servers, clients, figures.

Everything here binds 127.0.0.1 and every wait is bounded. Times are taken
with ``time.monotonic()``, which on Linux is CLOCK_MONOTONIC and therefore
comparable between the load-client processes and the process that commits
catalog changes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import multiprocessing as mp
import os
import platform
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from websockets.client import ClientProtocol
from websockets.extensions.permessage_deflate import ClientPerMessageDeflateFactory
from websockets.frames import Frame, Opcode
from websockets.http11 import Response
from websockets.typing import Origin
from websockets.uri import parse_uri

ROOT = Path(__file__).resolve().parent.parent
# The tree whose server is measured (default: this one). Pointing it at a
# copy lets a proposed change be measured without touching this tree.
APP_ROOT = Path(os.environ.get("BENCH_APP_ROOT", ROOT))
BENCH = ROOT / "bench"
RESULTS = BENCH / "results"
PY = sys.executable
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_KIB = os.sysconf("SC_PAGE_SIZE") // 1024

now = time.monotonic


# --- process limits and ports ------------------------------------------------


def raise_nofile(wanted: int = 65536) -> int:
    """Raise this process's open-file limit as far as the hard limit allows."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_port(port: int, *, timeout_secs: float, proc: subprocess.Popen) -> None:
    """Wait until something accepts on ``port``; fail if ``proc`` dies first."""
    deadline = now() + timeout_secs
    while now() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before listening")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"nothing listening on port {port} after {timeout_secs} s")


# --- /proc figures -----------------------------------------------------------


def proc_cpu_secs(pid: int) -> float:
    """Return user+system CPU seconds of ``pid`` (its threads included)."""
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def proc_rss_kib(pid: int) -> int:
    """Return the resident set size of ``pid`` in KiB."""
    with open(f"/proc/{pid}/statm") as fh:
        return int(fh.read().split()[1]) * PAGE_KIB


def named_cpu_secs(comm: str) -> float:
    """Return the CPU seconds of every process whose name is ``comm``."""
    total = 0.0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                raw = fh.read()
        except OSError:
            continue
        name = raw[raw.find("(") + 1 : raw.rfind(")")]
        if name == comm:
            fields = raw.rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / CLK_TCK
    return total


def machine_busy() -> tuple[float, float]:
    """Return (busy, total) jiffies of the whole machine from /proc/stat."""
    with open("/proc/stat") as fh:
        values = [int(v) for v in fh.readline().split()[1:]]
    idle = values[3] + values[4]
    total = sum(values[:8])
    return total - idle, total


class CpuMeter:
    """CPU used by a server, PostgreSQL, Redis and the machine over a window."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.start()

    def start(self) -> None:
        self.t0 = now()
        self.server0 = proc_cpu_secs(self.pid)
        self.pg0 = named_cpu_secs("postgres")
        self.redis0 = named_cpu_secs("redis-server")
        self.busy0, self.total0 = machine_busy()

    def stop(self) -> dict[str, float]:
        busy, total = machine_busy()
        wall = now() - self.t0
        return {
            "wall_secs": round(wall, 3),
            "server_cpu_secs": round(proc_cpu_secs(self.pid) - self.server0, 3),
            "postgres_cpu_secs": round(named_cpu_secs("postgres") - self.pg0, 3),
            "redis_cpu_secs": round(named_cpu_secs("redis-server") - self.redis0, 3),
            "machine_busy_pct": round(
                100 * (busy - self.busy0) / max(1, total - self.total0), 1
            ),
        }


# --- server subprocesses ------------------------------------------------------


class Server:
    """A server subprocess started with a bounded wait and stopped for sure."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], port: int):
        self.name = name
        self.port = port
        self.log_path = RESULTS / f"server-{name}-{port}.log"
        RESULTS.mkdir(parents=True, exist_ok=True)
        self.log = open(self.log_path, "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(
            argv,
            cwd=APP_ROOT,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            preexec_fn=_child_limits,
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def wait_ready(self, timeout_secs: float = 60) -> Server:
        try:
            wait_port(self.port, timeout_secs=timeout_secs, proc=self.proc)
        except Exception:
            self.stop()
            tail = self.log_path.read_text(errors="replace")[-3000:]
            raise RuntimeError(f"{self.name} did not start:\n{tail}") from None
        return self

    def cpu_secs(self) -> float:
        return proc_cpu_secs(self.pid)

    def rss_kib(self) -> int:
        return proc_rss_kib(self.pid)

    def stop(self, timeout_secs: float = 10) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout_secs)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.log.close()

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _child_limits() -> None:
    raise_nofile()


def base_env() -> dict[str, str]:
    """Return the environment every server and helper process gets."""
    env = dict(os.environ)
    env.setdefault("OPENBLAS_NUM_THREADS", "1")
    env.setdefault("OMP_NUM_THREADS", "1")
    env["PYTHONUNBUFFERED"] = "1"
    return env


def recsite_env(db: BenchDB, **extra: str) -> dict[str, str]:
    """Return the production-like environment of a recsite server under load."""
    env = base_env()
    env.update(
        {
            "REDIS_URL": os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0"),
            "DATABASE_URL": db.url,
            "DJANGO_SECRET_KEY": "bench-not-secret",
            "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
            "DJANGO_DEBUG": "0",
            "DJANGO_LOG_LEVEL": "WARNING",
            # The benchmark measures the server, not the abuse limits.
            "WS_EVENT_RATE_PER_SEC": "100000",
            "WS_EVENT_BURST": "100000",
            "WS_USER_EVENT_RATE_PER_SEC": "100000",
            "WS_USER_EVENT_BURST": "100000",
            "WS_MAX_SOCKETS_PER_USER": "100000",
        }
    )
    env.update(extra)
    return env


def start_recsite(db: BenchDB, port: int, **extra: str) -> Server:
    """Start ``manage.py serve`` (one tuned daphne process) on ``port``."""
    argv = [
        PY,
        "manage.py",
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--no-collectstatic",
    ]
    return Server("recsite", argv, recsite_env(db, **extra), port).wait_ready()


def start_bare(port: int, *, compression: bool = False) -> Server:
    """Start the bare ``websockets`` bound server (bench/bare_server.py)."""
    argv = [PY, str(BENCH / "bare_server.py"), "--port", str(port)]
    if compression:
        argv.append("--compression")
    return Server("bare", argv, base_env(), port).wait_ready()


# --- load-client processes ------------------------------------------------------


class WorkerPool:
    """Load-client processes, each holding a share of the sockets.

    Each worker runs ``target(pipe, *args)``, sends one hello (with at least
    ``connected``) once its sockets are open, then answers commands sent on
    its pipe; ``("stop",)`` ends it.
    """

    def __init__(
        self, target: Callable[..., None], shares: list[tuple], *, hello_secs: float
    ) -> None:
        ctx = mp.get_context("fork")
        self.pipes: list[Any] = []
        self.procs: list[Any] = []
        for args in shares:
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=target, args=(child, *args), daemon=True)
            proc.start()
            self.pipes.append(parent)
            self.procs.append(proc)
        self.hello = [self.recv(p, hello_secs) for p in self.pipes]

    @staticmethod
    def recv(pipe: Any, timeout_secs: float) -> Any:
        """Return the worker's next answer, or raise after ``timeout_secs``."""
        if not pipe.poll(timeout_secs):
            raise TimeoutError("load client did not answer")
        return pipe.recv()

    @property
    def connected(self) -> int:
        return sum(h["connected"] for h in self.hello)

    def ask(self, *cmd: Any, timeout_secs: float = 120) -> list[Any]:
        """Send ``cmd`` to every worker and return their answers."""
        for p in self.pipes:
            p.send(cmd)
        return [self.recv(p, timeout_secs) for p in self.pipes]

    def close(self) -> None:
        # The processes are killed below if they do not stop.
        with contextlib.suppress(Exception):
            self.ask("stop", timeout_secs=20)
        for proc in self.procs:
            proc.join(5)
            if proc.is_alive():
                proc.kill()


# --- the benchmark database ---------------------------------------------------


class BenchDB:
    """A PostgreSQL database of the benchmarks' own, recreated per run."""

    def __init__(self, name: str = "recsite_bench") -> None:
        if name in {"test", "test_test", "postgres"}:
            raise ValueError(f"refusing to use database {name!r}")
        self.name = name
        self.host = os.environ.get("BENCH_PGHOST", "127.0.0.1")
        self.url = f"postgres://postgres@{self.host}:5432/{name}"

    def prepare(self, *, fresh: bool) -> None:
        """Recreate the benchmark catalog (10,000 items) unless reusing it."""
        if fresh:
            print(f"preparing database {self.name} (10,000 items)…", flush=True)
            self.recreate(items=10_000, users=200)

    def recreate(self, *, items: int, users: int) -> float:
        """Drop, create, migrate and seed the database; return the seconds taken."""
        started = now()
        for tool in ("dropdb", "createdb"):
            if shutil.which(tool) is None:
                raise RuntimeError(f"{tool} not found (PostgreSQL client tools)")
        subprocess.run(
            ["dropdb", "-h", self.host, "-U", "postgres", "--if-exists", self.name],
            check=True,
            timeout=60,
        )
        subprocess.run(
            ["createdb", "-h", self.host, "-U", "postgres", self.name],
            check=True,
            timeout=60,
        )
        env = recsite_env(self)
        for args in (
            ["migrate", "--verbosity", "0"],
            ["seed_demo", "--items", str(items), "--users", str(users)],
        ):
            subprocess.run(
                [PY, "manage.py", *args],
                cwd=ROOT,
                env=env,
                check=True,
                timeout=900,
                stdout=subprocess.DEVNULL,
            )
        return now() - started

    def task(self, *args: str, timeout_secs: float = 300) -> Any:
        """Run ``bench/djangotasks.py`` against this database; return its JSON."""
        out = subprocess.run(
            [PY, str(BENCH / "djangotasks.py"), *args],
            cwd=ROOT,
            env=recsite_env(self),
            check=True,
            timeout=timeout_secs,
            capture_output=True,
            text=True,
        )
        return json.loads(out.stdout.strip().splitlines()[-1])

    def committer(self) -> Committer:
        return Committer(self)


class Committer:
    """A long-lived Django process that saves items on request (catalog changes).

    Each ``save N`` line makes it save N items, one transaction each, with the
    send time (``time.monotonic()``) written into the title just before
    ``save()``; the change is broadcast through Redis after commit.
    """

    def __init__(self, db: BenchDB) -> None:
        self.proc = subprocess.Popen(
            [PY, str(BENCH / "djangotasks.py"), "committer"],
            cwd=ROOT,
            env=recsite_env(db),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            bufsize=1,
        )
        self._expect("ready")

    def _expect(self, word: str, timeout_secs: float = 60) -> str:
        import select

        deadline = now() + timeout_secs
        while now() < deadline:
            ready, _, _ = select.select([self.proc.stdout], [], [], 1.0)
            if ready:
                line = self.proc.stdout.readline()
                if not line:
                    raise RuntimeError("committer exited")
                if line.startswith(word):
                    return line
        raise TimeoutError(f"committer did not say {word!r}")

    def save(self, count: int = 1) -> list[float]:
        """Commit ``count`` changes; return their send times."""
        self.proc.stdin.write(f"save {count}\n")
        self.proc.stdin.flush()
        line = self._expect("done")
        return json.loads(line.split(" ", 1)[1])

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.proc.stdin.write("quit\n")
                self.proc.stdin.flush()
                self.proc.wait(10)
            except Exception:
                self.proc.kill()
                self.proc.wait(5)


# --- a lean WebSocket client --------------------------------------------------


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
        t = now()
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


# --- figures -------------------------------------------------------------------


def summarize_ms(values: Iterable[float]) -> dict[str, float | int]:
    """Return count, p50, p95, p99, max and mean of latencies in milliseconds."""
    arr = np.asarray(list(values), dtype=np.float64)
    if arr.size == 0:
        return {"count": 0, "p50": None, "p95": None, "p99": None, "max": None}
    p50, p95, p99 = np.percentile(arr, [50, 95, 99])
    return {
        "count": int(arr.size),
        "p50": round(float(p50), 3),
        "p95": round(float(p95), 3),
        "p99": round(float(p99), 3),
        "max": round(float(arr.max()), 3),
        "mean": round(float(arr.mean()), 3),
    }


def ratio(value: float | None, bound: float | None) -> float | None:
    """Return ``value / bound`` rounded, or None when either is missing."""
    if value is None or not bound:
        return None
    return round(value / bound, 2)


def fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if abs(value) >= 100:
            return f"{value:,.0f}"
        if abs(value) >= 10:
            return f"{value:.1f}"
        return f"{value:.2f}"
    return str(value)


def print_table(title: str, rows: list[dict[str, Any]], columns: list[str]) -> None:
    """Print ``rows`` as a fixed-width table with ``columns``."""
    cells = [[fmt(row.get(col)) for col in columns] for row in rows]
    widths = [
        max(len(col), *(len(r[i]) for r in cells)) if cells else len(col)
        for i, col in enumerate(columns)
    ]
    print(f"\n{title}")
    print("  ".join(col.ljust(w) for col, w in zip(columns, widths, strict=True)))
    print("  ".join("-" * w for w in widths))
    for r in cells:
        print("  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)))
    sys.stdout.flush()


def machine_info() -> dict[str, Any]:
    """Return what the figures were measured on."""
    model = ""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    versions = {}
    for pkg in (
        "django",
        "channels",
        "channels_redis",
        "daphne",
        "redis",
        "websockets",
    ):
        try:
            from importlib.metadata import version

            versions[pkg] = version(pkg)
        except Exception:
            versions[pkg] = None
    return {
        "date_utc": datetime.now(UTC).strftime("%Y-%m-%d %H:%M"),
        "cpu": model,
        "cores": os.cpu_count(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        # Other work on a shared machine skews absolute times; ratios hold better.
        "loadavg_1_5_15": list(os.getloadavg()),
        "versions": versions,
    }


def write_json(name: str, data: dict[str, Any]) -> Path:
    """Write ``data`` (with machine info) to bench/results/<name>.json."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    payload = {"benchmark": name, "machine": machine_info(), **data}
    path.write_text(json.dumps(payload, indent=2, default=str))
    print(f"\nwrote {path.relative_to(ROOT)}")
    return path


# --- profiling -------------------------------------------------------------------


class Profiler:
    """Sample a server with py-spy for a fixed time, if py-spy is installed."""

    def __init__(self, pid: int, name: str, duration_secs: float) -> None:
        self.path = RESULTS / f"profile-{name}.txt"
        self.proc: subprocess.Popen | None = None
        exe = shutil.which("py-spy") or str(Path(PY).parent / "py-spy")
        if not Path(exe).exists():
            print("  (py-spy not installed: no profile)")
            return
        self.proc = subprocess.Popen(
            [
                exe,
                "record",
                "--pid",
                str(pid),
                "--duration",
                str(max(1, int(duration_secs))),
                "--rate",
                "200",
                "--format",
                "raw",
                "--nonblocking",
                "--output",
                str(self.path),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def finish(self, top: int = 25) -> dict[str, Any] | None:
        if self.proc is None:
            return None
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return None
        if not self.path.exists():
            return None
        return summarize_profile(self.path, top=top)


_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>.*?)(?::(?P<line>\d+))?\)$")


def _short(frame: str) -> str:
    m = _FRAME.match(frame)
    if not m:
        return frame
    path = m.group("file")
    for marker in ("site-packages/", "/main/", "python3.11/"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{m.group('func')} ({path})"


def summarize_profile(path: Path, *, top: int = 25) -> dict[str, Any]:
    """Return the top self and inclusive functions of a py-spy raw profile."""
    self_time: Counter = Counter()
    inclusive: Counter = Counter()
    total = 0
    idle = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count_s = line.rpartition(" ")
        if not count_s.isdigit():
            continue
        count = int(count_s)
        frames = [_short(f) for f in stack.split(";") if f]
        total += count
        if not frames:
            continue
        leaf = frames[-1]
        if "select (" in leaf or "epoll" in leaf or leaf.startswith("wait ("):
            idle += count
        self_time[leaf] += count
        for f in set(frames):
            inclusive[f] += count

    def pct(counter: Counter) -> list[list[Any]]:
        return [
            [name, round(100 * n / max(1, total), 1)]
            for name, n in counter.most_common(top)
        ]

    return {
        "samples": total,
        "idle_pct": round(100 * idle / max(1, total), 1),
        "top_self_pct": pct(self_time),
        "top_inclusive_pct": pct(inclusive),
        "raw": str(path.resolve().relative_to(ROOT)),
    }


def print_profile(title: str, prof: dict[str, Any] | None, n: int = 12) -> None:
    if not prof:
        return
    print(f"\n{title}: {prof['samples']} samples, idle {prof['idle_pct']} %")
    print("  self %   function")
    for name, p in prof["top_self_pct"][:n]:
        print(f"  {p:6.1f}   {name}")
    print("  incl %   function")
    for name, p in prof["top_inclusive_pct"][:n]:
        print(f"  {p:6.1f}   {name}")
