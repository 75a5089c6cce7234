"""Fixtures for the end-to-end tests: a live daphne server and headless Chromium.

The server runs in a thread of the test process (so it sees pytest-django's test
database and the same channel layer) and listens on a free port of 127.0.0.1
(``tests.support.inprocess.ThreadedDaphne``).
Static files are served the production way: ``collectstatic`` into a temporary
``STATIC_ROOT`` and WhiteNoise in front of Django, whatever ``DEBUG`` is. With
``DEBUG`` off that is the hashed, compressed manifest storage, so the tests also
prove that the dashboard works with the settings a deployment uses.

Chromium is Debian's ``/usr/bin/chromium`` driven by Playwright; the tests never
download a browser. Without it (or without Playwright) the tests skip, except
under ``CI=true``, where a missing browser is a failure.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest

from tests.support.inprocess import ThreadedDaphne

T = TypeVar("T")

CHROMIUM = os.environ.get("E2E_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    # Nothing but the test server is reachable: no stray requests leave the machine.
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
]
ARTIFACTS_DIR = Path(__file__).resolve().parents[2] / "test-artifacts"
SERVER_START_TIMEOUT_SECS = 15.0
PASSWORD = "e2e-Passw0rd!"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Silence Django's warning about WhiteNoise's file responses under ASGI.

    WhiteNoise hands Django a file iterator that is synchronous; Django's ASGI
    handler then reads it in a thread and says so once per static file. That
    is how every deployment serves static files (docs/operations.md), not a
    defect of a test, and it would otherwise fill the summary of every run.
    """
    mark = pytest.mark.filterwarnings(
        "ignore:StreamingHttpResponse must consume synchronous iterators"
    )
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.path)).parents:
            item.add_marker(mark)


def _require(condition: bool, reason: str) -> None:
    if condition:
        return
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"end-to-end prerequisites missing under CI: {reason}")
    pytest.skip(reason)


# --- the server -------------------------------------------------------------


def _build_application() -> Any:
    """Return the project's ASGI application with a fresh HTTP handler.

    The HTTP side is rebuilt so that WhiteNoise indexes the STATIC_ROOT this
    fixture just filled (recsite.asgi may have been imported earlier by another
    test, with WhiteNoise already looking at another folder). The WebSocket side
    is the project's own stack, unchanged.
    """
    from channels.routing import ProtocolTypeRouter
    from django.core.asgi import get_asgi_application

    from recsite.asgi import application

    return ProtocolTypeRouter(
        {
            "http": get_asgi_application(),
            "websocket": application.application_mapping["websocket"],
        }
    )


@pytest.fixture(scope="session")
def live_server_url(django_db_setup: None) -> Iterator[str]:
    """Start daphne in a thread on a free port; yield its base URL."""
    from django.conf import settings
    from django.core.management import call_command
    from django.test.utils import override_settings

    static_root = Path(tempfile.mkdtemp(prefix="recsite-e2e-static-"))
    # override_settings sends setting_changed, which resets the static files
    # storage and the cached password hashers.
    overrides = override_settings(
        STATIC_ROOT=static_root,
        # Logins are part of every test; the production hasher costs ~1 s each.
        PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"],
    )
    overrides.enable()
    call_command("collectstatic", interactive=False, verbosity=0)
    if "127.0.0.1" not in settings.ALLOWED_HOSTS and "*" not in settings.ALLOWED_HOSTS:
        # In place: the WebSocket origin validator holds this very list.
        settings.ALLOWED_HOSTS.append("127.0.0.1")

    # No django_db_blocker.unblock() here: the server only touches the database
    # while a test that asked for it (transactional_db) runs.
    server = ThreadedDaphne(_build_application())
    yield server.start(SERVER_START_TIMEOUT_SECS)
    server.stop()
    overrides.disable()
    shutil.rmtree(static_root, ignore_errors=True)


# --- the browser ------------------------------------------------------------


@pytest.fixture(scope="module")
def browser(live_server_url: str) -> Iterator[Any]:
    """Yield a headless Chromium (Debian's package) driven by Playwright.

    Playwright's sync API keeps an asyncio loop marked as running in this
    thread while the browser lives, and Django then refuses every ORM call
    here (SynchronousOnlyOperation), including pytest-django's own flush. The
    loop is Playwright's, not ours, so the check is switched off for exactly
    the lifetime of the browser: module scope keeps it away from other tests.
    """
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:  # pragma: no cover - depends on the machine
        _require(False, "playwright is not installed")
    _require(
        Path(CHROMIUM).exists(), f"{CHROMIUM} not found (apt-get install chromium)"
    )
    ARTIFACTS_DIR.mkdir(exist_ok=True)
    saved = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
            )
            yield browser
            browser.close()
    finally:
        if saved is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = saved


@dataclass
class Tab:
    """A page in its own browser context, with the console errors it logged."""

    context: Any
    page: Any
    base_url: str
    errors: list[str] = field(default_factory=list)
    allowed_errors: list[str] = field(default_factory=list)

    def goto(self, path: str) -> Any:
        return self.page.goto(self.base_url + path)

    def login(
        self, username: str, password: str = PASSWORD, next_path: str = "/"
    ) -> None:
        """Log in through Django's login form, as a person would."""
        self.goto(f"/accounts/login/?next={next_path}")
        self.page.fill("#id_username", username)
        self.page.fill("#id_password", password)
        with self.page.expect_navigation():
            self.page.click("form button[type=submit], form input[type=submit]")
        assert "/accounts/login/" not in self.page.url, "login failed"

    def expect_admin(self) -> None:
        """Allow what Django's own admin pages log: they link no favicon (a 404)."""
        self.allowed_errors.append("favicon.ico")

    def screenshot(self, name: str, *, full_page: bool = False) -> Path:
        path = ARTIFACTS_DIR / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=full_page)
        return path

    def unexpected_errors(self) -> list[str]:
        return [e for e in self.errors if not any(a in e for a in self.allowed_errors)]


@pytest.fixture
def new_tab(browser: Any, live_server_url: str) -> Iterator[Callable[..., Tab]]:
    """Yield a factory of isolated tabs (one browser context each).

    Every tab must end the test without console errors or uncaught exceptions.
    """
    tabs: list[Tab] = []

    def make(**context_options: Any) -> Tab:
        context = browser.new_context(
            **{"viewport": {"width": 1280, "height": 860}, **context_options}
        )
        context.set_default_timeout(10_000)
        page = context.new_page()
        tab = Tab(context=context, page=page, base_url=live_server_url)
        page.on(
            "console",
            lambda msg: (
                tab.errors.append(
                    f"console.{msg.type}: {msg.text} at {msg.location.get('url', '?')}"
                )
                if msg.type == "error"
                else None
            ),
        )
        page.on("pageerror", lambda exc: tab.errors.append(f"pageerror: {exc}"))
        tabs.append(tab)
        return tab

    yield make
    errors = {i: tab.unexpected_errors() for i, tab in enumerate(tabs)}
    for tab in tabs:
        tab.context.close()
    assert not any(errors.values()), f"console errors: {errors}"


# --- data -------------------------------------------------------------------


@dataclass
class Catalog:
    """What the tests created: ids by name and the users' names."""

    items: dict[str, int]
    shopper: str = "shopper"
    staff: str = "staff"


ITEMS = [
    # title, category, tags, price, rating, year
    (
        "Quiet Storm Headphones",
        "Audio",
        "wireless, noise-cancelling, travel",
        199,
        4.6,
        2023,
    ),
    ("Pocket Beat Speaker", "Audio", "wireless, compact, outdoor", 59, 4.2, 2022),
    ("Studio Monitor Pair", "Audio", "studio, wired", 349, 4.7, 2021),
    ("Trail Runner Shoes", "Outdoor", "running, trail, lightweight", 129, 4.4, 2023),
    ("Summit Daypack 24L", "Outdoor", "hiking, travel, compact", 89, 4.5, 2022),
    ("Featherlight Tent", "Outdoor", "camping, lightweight", 299, 4.3, 2020),
    ("Pour-Over Coffee Kit", "Kitchen", "coffee, gift", 45, 4.8, 2021),
    ("Cast Iron Skillet", "Kitchen", "cooking, durable", 39, 4.9, 2019),
    ("Espresso Grinder", "Kitchen", "coffee, burr", 159, 4.1, 2023),
    ("Mystery of the Lake", "Books", "mystery, paperback", 14, 4.0, 2018),
    ("The Long Voyage", "Books", "adventure, travel, hardcover", 24, 4.6, 2022),
    ("Cooking for Two", "Books", "cooking, gift", 29, 4.3, 2021),
]


def run_db(fn: Callable[[], T]) -> T:
    """Return ``fn()`` run in a fresh thread.

    While Playwright runs, this thread looks like async code to Django and
    asgiref: on_commit hooks that call ``async_to_sync`` (the change broadcast)
    would fail here, so writes that should be broadcast run in a plain thread.
    """
    from django.db import connections

    def call() -> T:
        try:
            return fn()
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="e2e-db") as pool:
        return pool.submit(call).result(timeout=60)


@pytest.fixture
def catalog(transactional_db: None) -> Catalog:
    """Create a small catalog (4 categories, 12 items), a shopper and a staff user."""
    return run_db(_create_catalog)


def _create_catalog() -> Catalog:

    from django.contrib.auth import get_user_model

    from recommender.models import Category, Item

    user_model = get_user_model()
    user_model.objects.create_user("shopper", password=PASSWORD)
    user_model.objects.create_user(
        "staff", password=PASSWORD, is_staff=True, is_superuser=True
    )
    categories = {
        name: Category.objects.create(name=name)
        for name in sorted({i[1] for i in ITEMS})
    }
    ids = {}
    for title, category, tags, price, rating, year in ITEMS:
        item = Item.objects.create(
            title=title,
            description=f"{title}: a {category.lower()} favourite.",
            category=categories[category],
            tags=tags,
            price=price,
            rating=rating,
            year=year,
        )
        ids[title] = item.pk
    return Catalog(items=ids)
