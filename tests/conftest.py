"""Shared fixtures: real Redis / PostgreSQL gates and live server processes."""

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parent.parent
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def _missing(reason: str) -> None:
    """Skip outside CI; in CI a missing service is a failure, not a skip."""
    if IN_CI:
        pytest.fail(f"{reason} (required in CI)")
    pytest.skip(reason)


@pytest.fixture
def redis_url() -> str:
    """Return REDIS_URL, or skip (fail in CI) when the suite runs without Redis."""
    if not settings.REDIS_URL:
        _missing("REDIS_URL is not set: this test needs the real Redis channel layer")
    return settings.REDIS_URL


@pytest.fixture
def postgres() -> None:
    """Skip (fail in CI) unless the test database is PostgreSQL."""
    if connection.vendor != "postgresql":
        _missing(
            "DATABASE_URL does not name PostgreSQL: this test needs a shared database"
        )


@pytest.fixture(scope="session", autouse=True)
def _drop_stray_connections(django_db_setup, django_db_blocker) -> Iterator[None]:
    """At the end, close connections left by worker threads so the test DB drops."""
    yield
    if connection.vendor != "postgresql":
        return
    with django_db_blocker.unblock(), connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )


@pytest.fixture(scope="session", autouse=True)
def _static_manifest(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Collect static files once, so pages render with DEBUG off (hashed names)."""
    from django.core.management import call_command
    from django.test.utils import override_settings

    with override_settings(STATIC_ROOT=tmp_path_factory.mktemp("static")):
        call_command("collectstatic", interactive=False, verbosity=0)
        yield


@pytest.fixture(autouse=True)
def _fresh_engine() -> Iterator[None]:
    """Forget the process-wide engine and seq: each test brings its own database."""
    from recommender.services.live import live
    from sync.hub import hub

    live.reset()
    hub.seq_forget()
    yield
    live.reset()
    hub.seq_forget()


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_database_url() -> str:
    """Return a DATABASE_URL naming the database this test session uses."""
    conf = connection.settings_dict
    user = conf.get("USER") or "postgres"
    password = f":{conf['PASSWORD']}" if conf.get("PASSWORD") else ""
    host = conf.get("HOST") or "127.0.0.1"
    port = conf.get("PORT") or 5432
    return f"postgres://{user}{password}@{host}:{port}/{conf['NAME']}"


def child_env(**extra: str) -> dict[str, str]:
    """Return the environment for a server or command process of this test."""
    env = dict(os.environ)
    env.update(
        DATABASE_URL=test_database_url(),
        DJANGO_DEBUG="0",
        PYTHONUNBUFFERED="1",
        SYNC_HEARTBEAT_SECS=os.environ.get("SYNC_HEARTBEAT_SECS", "1"),
        RECS_MODEL_CHECK_SECS="0.2",
    )
    if settings.REDIS_URL:
        env["REDIS_URL"] = settings.REDIS_URL
    env.update(extra)
    return env


def manage(*args: str, timeout: float = 60, **env: str) -> subprocess.CompletedProcess:
    """Run ``manage.py`` in a separate process against the test database."""
    return subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), *args],
        env=child_env(**env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=True,
        cwd=ROOT,
    )


def login(base_url: str, username: str, password: str) -> str:
    """Log in through Django's login form on a live server; return the session id."""
    with httpx.Client(base_url=base_url, follow_redirects=False, timeout=10) as client:
        client.get("/accounts/login/")
        response = client.post(
            "/accounts/login/",
            data={
                "username": username,
                "password": password,
                "csrfmiddlewaretoken": client.cookies["csrftoken"],
            },
            headers={"Referer": f"{base_url}/accounts/login/"},
        )
        assert response.status_code == 302, response.text[:500]
        return client.cookies["sessionid"]


def recv_json(ws: Any, timeout: float = 10.0) -> dict:
    """Return the next JSON frame of a ``websockets`` sync client."""
    return json.loads(ws.recv(timeout=timeout))


class LiveServer:
    """A ``manage.py serve`` process on 127.0.0.1."""

    def __init__(self, port: int, process: subprocess.Popen) -> None:
        self.port = port
        self.process = process
        self.http_url = f"http://127.0.0.1:{port}"
        self.ws_url = f"ws://127.0.0.1:{port}"
        self.origin = self.http_url

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def wait_until_healthy(
    url: str, process: subprocess.Popen, timeout_secs: float = 30
) -> None:
    """Poll ``url/healthz`` until it answers 200 or the process dies."""
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


@pytest.fixture
def live_servers(
    postgres: None, redis_url: str, tmp_path: Path
) -> Iterator[Callable[..., LiveServer]]:
    """Start ``manage.py serve`` processes sharing the test database and Redis."""
    started: list[LiveServer] = []

    def start(**env: str) -> LiveServer:
        port = free_port()
        log = open(tmp_path / f"serve-{port}.log", "w")  # noqa: SIM115 - closed with the process
        process = subprocess.Popen(
            [
                sys.executable,
                str(ROOT / "manage.py"),
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            env=child_env(**env),
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )
        server = LiveServer(port, process)
        started.append(server)
        try:
            wait_until_healthy(server.http_url, process)
        except Exception:
            server.stop()
            log.flush()
            print((tmp_path / f"serve-{port}.log").read_text())
            raise
        return server

    yield start
    for server in started:
        server.stop()
