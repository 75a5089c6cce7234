"""The servers a benchmark measures: recsite's ``manage.py serve`` and the bare bound.

Both start through the test suite's one launcher
(``tests.support.servers.ServerProcess``); here they get the production-like
environment of a server under load, their logs in bench/results/, a raised
open-file limit, and CPU/RSS readings from /proc.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from bench.paths import APP_ROOT, BENCH, PY, RESULTS
from bench.procfs import proc_cpu_secs, proc_rss_kib, raise_nofile
from tests.support.servers import ServerProcess, serve_argv

if TYPE_CHECKING:
    from bench.database import BenchDB


class Server(ServerProcess):
    """A measured server process: the launcher's, plus its CPU and memory."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], port: int):
        super().__init__(
            argv,
            env=env,
            port=port,
            log_path=RESULTS / f"server-{name}-{port}.log",
            cwd=APP_ROOT,
            name=name,
            preexec_fn=_child_limits,
        )

    def wait_ready(self, timeout_secs: float = 60) -> Server:
        """Wait until the port accepts connections; raise with the log's tail."""
        self.wait_listening(timeout_secs)
        return self

    def cpu_secs(self) -> float:
        """Return the user+system CPU seconds the server has used so far."""
        return proc_cpu_secs(self.pid)

    def rss_kib(self) -> int:
        """Return the server's resident set size in KiB."""
        return proc_rss_kib(self.pid)


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
            # A developer's .env (make demo) must not reach the measured server.
            "DJANGO_ENV_FILE": "",
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
    argv = serve_argv(port, collectstatic=False, root=APP_ROOT)
    return Server("recsite", argv, recsite_env(db, **extra), port).wait_ready()


def start_bare(port: int, *, compression: bool = False) -> Server:
    """Start the bare ``websockets`` bound server (bench/bare_server.py)."""
    argv = [PY, str(BENCH / "bare_server.py"), "--port", str(port)]
    if compression:
        argv.append("--compression")
    return Server("bare", argv, base_env(), port).wait_ready()
