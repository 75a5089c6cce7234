"""Shared fixtures: real Redis / PostgreSQL gates and live server processes.

The launchers and clients themselves live in ``tests/support/`` (the one
harness, shared with ``bench/``); the names tests import from here
(``manage``, ``child_env``, ``login``, ``recv_json``, ``LiveServer``…) stay
importable from this module.
"""

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from tests.support.accounts import login
from tests.support.env import (
    IN_CI,
    ROOT,
    child_env,
    manage,
    missing,
    test_database_url,
)
from tests.support.servers import (
    LiveServer,
    Servers,
    free_port,
    wait_until_healthy,
)
from tests.support.sockets import recv_json

__all__ = [
    "IN_CI",
    "ROOT",
    "LiveServer",
    "child_env",
    "free_port",
    "login",
    "manage",
    "recv_json",
    "test_database_url",
    "wait_until_healthy",
]


def _missing(reason: str) -> None:
    """Skip outside CI; in CI a missing service is a failure, not a skip."""
    missing(reason)


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


@pytest.fixture
def live_servers(
    postgres: None, redis_url: str, tmp_path: Path
) -> Iterator[Callable[..., LiveServer]]:
    """Start ``manage.py serve`` processes sharing the test database and Redis.

    Call the fixture (``live_servers(**env)``) for one healthy server, or
    ``live_servers.many(n, **env)`` for several at once; all stop after the test.
    """
    pool = Servers(tmp_path, child_env, collectstatic=True)
    yield pool
    pool.stop_all()
