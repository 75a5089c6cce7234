"""The one server launcher of the tests and the benchmarks.

:class:`ServerProcess` runs any server argv on a loopback port with its
output in a log file, waits until it answers (``/healthz`` or, for a server
without one, an accepted TCP connection) and always stops it. ``serve_argv``
is the argv of the product's own ``manage.py serve``; :class:`Servers` starts
several of them at once (the protocol, fault and security tests), and
``bench/servers.py`` starts its recsite and bare servers through the same
class.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from tests.support.env import ROOT

HOST = "127.0.0.1"


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def serve_argv(
    port: int, *, collectstatic: bool = True, root: Path = ROOT
) -> list[str]:
    """Return the argv of ``manage.py serve`` on 127.0.0.1:``port``.

    ``collectstatic=False`` skips collecting static files at start (the
    caller collected them once, or the server's pages are not looked at).
    """
    argv = [
        sys.executable,
        str(root / "manage.py"),
        "serve",
        "--host",
        HOST,
        "--port",
        str(port),
    ]
    if not collectstatic:
        argv.append("--no-collectstatic")
    return argv


def wait_until_healthy(
    url: str, process: subprocess.Popen, timeout_secs: float = 30
) -> None:
    """Poll ``url/healthz`` until it answers 200; raise if ``process`` dies first."""
    deadline = time.monotonic() + timeout_secs
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        try:
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"{url} did not become healthy in {timeout_secs} s")


def wait_listening(port: int, process: subprocess.Popen, timeout_secs: float) -> None:
    """Wait until something accepts on ``port``; raise if ``process`` dies first."""
    deadline = time.monotonic() + timeout_secs
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        try:
            with socket.create_connection((HOST, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"nothing listening on port {port} after {timeout_secs} s")


class ServerProcess:
    """A server subprocess on 127.0.0.1:``port``, its output in ``log_path``.

    The process starts in the constructor; :meth:`wait_healthy` or
    :meth:`wait_listening` waits for it (stopping it and raising with the
    log's tail if it does not come up); :meth:`stop` ends it for sure
    (SIGTERM, then SIGKILL after ``timeout_secs``).
    """

    def __init__(
        self,
        argv: list[str],
        *,
        env: dict[str, str],
        port: int,
        log_path: Path,
        cwd: Path = ROOT,
        name: str = "server",
        preexec_fn: Callable[[], None] | None = None,
    ) -> None:
        self.name = name
        self.port = port
        self.log_path = log_path
        self.http_url = f"http://{HOST}:{port}"
        self.ws_url = f"ws://{HOST}:{port}"
        self.origin = self.http_url
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            argv,
            cwd=cwd,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            preexec_fn=preexec_fn,
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    def log_tail(self, chars: int = 3000) -> str:
        """Return the last ``chars`` characters the server wrote."""
        self._log.flush()
        return self.log_path.read_text(errors="replace")[-chars:]

    def wait_healthy(self, timeout_secs: float = 60) -> ServerProcess:
        """Wait until ``/healthz`` answers 200 (database and channel layer up)."""
        return self._wait(
            lambda: wait_until_healthy(self.http_url, self.process, timeout_secs)
        )

    def wait_listening(self, timeout_secs: float = 60) -> ServerProcess:
        """Wait until the port accepts connections (servers without ``/healthz``)."""
        return self._wait(lambda: wait_listening(self.port, self.process, timeout_secs))

    def _wait(self, waiter: Callable[[], None]) -> ServerProcess:
        try:
            waiter()
        except Exception:
            self.stop()  # closes the log: read it from the file, not the handle
            tail = self.log_path.read_text(errors="replace")[-3000:]
            raise RuntimeError(
                f"{self.name} on port {self.port} did not start:\n{tail}"
            ) from None
        return self

    def stop(self, timeout_secs: float = 10) -> None:
        """Stop the process (SIGTERM, as an orderly restart does) and close its log."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout_secs)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self._log.close()

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


# The name the tests have always used for a started ``serve`` process.
LiveServer = ServerProcess


class Servers:
    """``manage.py serve`` processes of one test, with their logs in ``workdir``.

    ``child_env(**env)`` builds each process's environment (the test
    session's database and channel layer: ``tests.support.env.child_env``).
    Calling the pool starts one server; :meth:`many` starts several at once.
    """

    def __init__(
        self,
        workdir: Path,
        child_env: Callable[..., dict[str, str]],
        *,
        collectstatic: bool = False,
        timeout_secs: float = 60,
    ) -> None:
        self.workdir = workdir
        self.child_env = child_env
        self.collectstatic = collectstatic
        self.timeout_secs = timeout_secs
        self.started: list[ServerProcess] = []

    def __call__(self, **env: str) -> ServerProcess:
        return self.many(1, **env)[0]

    def many(self, count: int, **env: str) -> list[ServerProcess]:
        """Start ``count`` processes at once and wait until all are healthy.

        Static files are collected once, before any starts: processes that
        each collect into the same directory at once remove each other's
        files mid-compression.
        """
        if self.collectstatic:
            subprocess.run(
                [
                    sys.executable,
                    str(ROOT / "manage.py"),
                    "collectstatic",
                    "--noinput",
                    "--verbosity",
                    "0",
                ],
                env=self.child_env(**env),
                check=True,
                timeout=self.timeout_secs,
            )
        launched = []
        for _ in range(count):
            port = free_port()
            server = ServerProcess(
                serve_argv(port, collectstatic=False),
                env=self.child_env(**env),
                port=port,
                log_path=self.workdir / f"serve-{port}.log",
                name="serve",
            )
            self.started.append(server)
            launched.append(server)
        for server in launched:
            server.wait_healthy(self.timeout_secs)
        return launched

    def stop_all(self) -> None:
        for server in self.started:
            server.stop()
