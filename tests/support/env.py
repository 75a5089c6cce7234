"""Where the harness runs: the repository, the CI gate, a child process's environment.

A child process of a test (a ``manage.py serve`` server, a ``manage.py``
command) must use the very database of the test session, whichever it is:
the PostgreSQL test database named after ``DATABASE_URL``, or, without it,
the on-disk SQLite test database whose absolute path ``tests/testenv.py``
chose. Tests that hand data to a child commit it first
(``django_db(transaction=True)``).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def missing(reason: str) -> None:
    """Skip the current test outside CI; in CI a missing service is a failure."""
    import pytest

    if IN_CI:
        pytest.fail(f"{reason} (required in CI)")
    pytest.skip(reason)


def test_database_url() -> str:
    """Return a DATABASE_URL naming the database this test session uses.

    On SQLite that is the on-disk test database (an in-memory one could not
    be shared with another process: a ``RuntimeError`` says so).
    """
    from django.db import connection

    conf = connection.settings_dict
    if connection.vendor == "sqlite":
        name = str(conf["NAME"])
        if connection.is_in_memory_db() or not name:
            raise RuntimeError(
                "the SQLite test database is in memory: a child process cannot "
                "share it (set DJANGO_TEST_DATABASE_NAME to a file path)"
            )
        return f"sqlite:///{Path(name).resolve()}"
    user = conf.get("USER") or "postgres"
    password = f":{conf['PASSWORD']}" if conf.get("PASSWORD") else ""
    host = conf.get("HOST") or "127.0.0.1"
    port = conf.get("PORT") or 5432
    return f"postgres://{user}{password}@{host}:{port}/{conf['NAME']}"


def child_env(**extra: str) -> dict[str, str]:
    """Return the environment of a server or command process of this test session.

    It shares the session's database and channel-layer prefix, runs with
    DEBUG off as in production, and sends sync heartbeats every second
    (``SYNC_HEARTBEAT_SECS``) unless the caller's environment says otherwise.
    """
    from django.conf import settings

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
    else:
        # No Redis: the child keeps its in-memory layer, not the caller's URL.
        env.pop("REDIS_URL", None)
    env.update(extra)
    return env


def manage(*args: str, timeout: float = 180, **env: str) -> subprocess.CompletedProcess:
    """Run ``manage.py`` in a separate process against the test database.

    ``timeout`` is in seconds, generous because a Django start-up on a busy
    2-core machine has taken over a minute; a non-zero exit raises
    ``CalledProcessError`` with the command's output.
    """
    return subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), *args],
        env=child_env(**env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=True,
        cwd=ROOT,
    )
