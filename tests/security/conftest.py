"""Helpers and fixtures of the security suite: users, a catalog, logged-in clients.

The live tests start real ``manage.py serve`` processes (``live_servers`` in
``tests/conftest.py``) on the test PostgreSQL and Redis, and talk to them with
real WebSocket and HTTP clients; the in-process tests drive
``recsite.asgi.application`` with ``WebsocketCommunicator``.
"""

import asyncio
import copy
import secrets
import threading
import uuid
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth import get_user_model
from django.db import connections

from recommender.models import Category, Item
from tests.support.accounts import login as live_login
from tests.support.accounts import session_cookie
from tests.support.recs_client import event_frame
from tests.support.sockets import recv_json, recv_type

__all__ = [
    "event_frame",
    "recv_json",
    "recv_type",
    "session_cookie",
]

PASSWORD = "correct-horse-battery-staple-9"
# An origin in the test ALLOWED_HOSTS (tests/testenv.py).
TEST_ORIGIN = b"http://testserver"


@dataclass
class Catalog:
    """Active item ids, an inactive item id and an id no item has."""

    active: list[int]
    inactive: int
    missing: int


def make_catalog(n: int = 30) -> Catalog:
    """Create ``n`` active items in two categories and one inactive item."""
    books = Category.objects.create(name="Books")
    games = Category.objects.create(name="Games")
    items = [
        Item.objects.create(
            title=f"Item {i}",
            category=books if i % 2 else games,
            tags="alpha, beta" if i % 3 else "gamma",
            price=5 + i,
            rating=3 + (i % 3) * 0.5,
        )
        for i in range(n)
    ]
    hidden = Item.objects.create(
        title="Withdrawn", category=books, tags="alpha", price=1, rating=1, active=False
    )
    return Catalog(
        active=[item.pk for item in items],
        inactive=hidden.pk,
        missing=hidden.pk + 10_000,
    )


@pytest.fixture
def catalog(db: None) -> Catalog:
    """Return a small catalog stored in the test database."""
    return make_catalog()


def make_user(username: str, **extra: Any):
    """Create a user with the suite's password and a random, far-away id.

    Channel-layer groups are named by user id (``recs.user.<id>``); a random id
    keeps another test run sharing the same Redis out of this user's group.
    """
    extra.setdefault("id", 10**9 + secrets.randbelow(10**9))  # int32 column
    return get_user_model().objects.create_user(username, password=PASSWORD, **extra)


def private_prefix() -> dict[str, str]:
    """Return server env with a channel-layer prefix no other test run uses."""
    return {"REDIS_PREFIX": f"sec{uuid.uuid4().hex[:12]}"}


@pytest.fixture
def private_layer(settings) -> None:
    """Give this test's in-process channel layer its own Redis prefix.

    Redis pub/sub ignores the database number, so two test runs on one Redis
    would otherwise hear each other's ``sync.changes`` and user groups.
    """
    layers = copy.deepcopy(settings.CHANNEL_LAYERS)
    if (
        "pubsub" in layers["default"]["BACKEND"]
        or "redis" in layers["default"]["BACKEND"]
    ):
        layers["default"].setdefault("CONFIG", {})["prefix"] = (
            f"sec{uuid.uuid4().hex[:12]}"
        )
        settings.CHANNEL_LAYERS = layers


def ws_headers(
    session: str | None = None, origin: bytes | None = TEST_ORIGIN
) -> list[tuple[bytes, bytes]]:
    """Return ASGI handshake headers with an Origin and an optional session cookie."""
    headers = [(b"host", b"testserver")]
    if origin is not None:
        headers.append((b"origin", origin))
    if session is not None:
        headers.append((b"cookie", f"sessionid={session}".encode()))
    return headers


def login(base_url: str, username: str, password: str = PASSWORD) -> str:
    """Log in a test user (default password) on a live server; return the session id."""
    return live_login(base_url, username, password)


class LoopThread:
    """An asyncio loop in a thread, so synchronous code (hypothesis) can drive it.

    ``WebsocketCommunicator`` objects are bound to the loop they were created
    on; keeping one loop for a whole test keeps the same sockets open across
    every hypothesis example.
    """

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, Any], timeout: float = 60) -> Any:
        """Run ``coro`` on the loop and return its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        # Consumers query the database from the loop's sync worker thread;
        # close its connection so the test database can be dropped.
        self.run(sync_to_async(connections.close_all)())
        # Tasks the application started on this loop (the hub's heartbeat and
        # pump) end here, not as "Task was destroyed but it is pending!" at exit.
        self.run(_cancel_other_tasks())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()


async def _cancel_other_tasks() -> None:
    """Cancel every task of the running loop but this one and wait for them."""
    current = asyncio.current_task()
    tasks = [task for task in asyncio.all_tasks() if task is not current]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await asyncio.get_running_loop().shutdown_asyncgens()


@pytest.fixture
def loop_thread() -> Iterator[LoopThread]:
    """Return a background event loop, stopped after the test."""
    runner = LoopThread()
    yield runner
    runner.close()
