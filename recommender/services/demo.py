"""A deterministic demo shop: a catalog with unique titles and shoppers whose
sessions read like real ones.

Shapes follow real shops: a dozen departments with their own products,
vocabulary and price ranges, log-normal prices, ratings clustered around 4,
Zipf-like popularity, and a funnel where views outnumber clicks, likes, carts
and purchases. A shopper has two or three favourite departments; a session
browses one kind of product in one of them (several headphones), often
settles on one (like, cart, purchase), then looks at a complement (a kettle,
then coffee beans), and sometimes moves on to another favourite department.
So the engine's neighbours, and the reasons it gives, make sense.

Writes scale to a million items: PostgreSQL gets the rows through COPY, and a
large seed leaves one reset point in the change log instead of a million
changes (a client that resumes across it reloads the snapshot).
"""

from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import numpy as np
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.db import connection, models, transaction
from django.db.models import F
from django.utils import timezone
from numpy.typing import NDArray

import sync
from recommender.engine.actions import ACTION_WEIGHTS
from recommender.models import BrowsingEvent, Category, Item
from recommender.services.demo_catalog import (
    DEPARTMENT_NAMES,
    DEPARTMENTS,
    DemoCatalog,
    demo_catalog,
)
from sync.models import SeqCounter

Progress = Callable[[str], None]

SEED = 20261122
_BATCH = 2000
#: A seed adding more items than this writes one reset point to the change
#: log, not one change per item. The sync app broadcasts a batch this large
#: as a single heartbeat anyway (``BROADCAST_MAX_BATCH``), so clients would
#: replay it from the log; reloading the first page after a reset is cheaper
#: than replaying thousands of upserts, and the seed is far faster.
RECORD_MAX_ITEMS = 1_000
#: From this many rows on, PostgreSQL gets them through COPY.
COPY_MIN_ROWS = 1_000
_DAY_SECS = 86_400.0
_HISTORY_DAYS = 30


def demo_seed(
    *, n_items: int, n_users: int, progress: Progress | None = None
) -> dict[str, int]:
    """Create the demo catalog and shoppers; an existing demo is left as it is.

    Returns
    -------
    dict
        Counts of what was created: ``categories``, ``items``, ``users``,
        ``events``.
    """
    say = progress or (lambda message: None)
    rng = np.random.default_rng(SEED)
    created = {"categories": 0, "items": 0, "users": 0, "events": 0}
    categories: list[Category] = []
    for name in DEPARTMENT_NAMES:
        category, was_created = Category.objects.get_or_create(name=name)
        categories.append(category)
        created["categories"] += int(was_created)

    now = timezone.now()
    shop = demo_catalog(n_items=n_items, rng=rng)
    say(f"Catalog of {n_items} items generated.")
    created["items"] = _items_write(shop=shop, categories=categories, now=now, say=say)

    positions, item_ids = _demo_item_ids(n_items)
    if not len(item_ids):
        return created
    users = _shoppers_create(n_users)
    created["users"] = len(users)
    events = _sessions(
        rng=rng,
        department=shop.department[positions],
        noun=shop.noun[positions],
        item_ids=item_ids,
        user_ids=[pk for pk, _ in users],
        now=now,
    )
    _rows_write(
        BrowsingEvent,
        ["user_id", "item_id", "action", "weight", "client_id", "created"],
        events,
    )
    created["events"] = len(events)
    say(f"Users {len(users)}, events {len(events)}.")
    return created


def _items_write(
    *, shop: DemoCatalog, categories: list[Category], now: datetime, say: Progress
) -> int:
    """Insert the demo items not already present; return how many were added."""
    n_items = len(shop.titles)
    existing: set[str] = set()
    if Item.objects.filter(external_id__startswith="demo:").exists():
        existing = set(
            Item.objects.filter(external_id__startswith="demo:").values_list(
                "external_id", flat=True
            )
        )
    new = [i for i in range(n_items) if f"demo:{i + 1}" not in existing]
    if not new:
        return 0
    created_at = [now - timedelta(days=float(d)) for d in shop.age_days]
    year = [int(now.year - min(d // 365, 20)) for d in shop.age_days]

    def row(i: int) -> tuple[Any, ...]:
        return (
            shop.titles[i],
            shop.descriptions[i],
            categories[shop.department[i]].pk,
            shop.tags[i],
            Decimal(f"{shop.price[i]:.2f}"),
            float(shop.rating[i]),
            year[i],
            True,
            f"demo:{i + 1}",
            created_at[i],
            now,
        )

    columns = [
        "title",
        "description",
        "category_id",
        "tags",
        "price",
        "rating",
        "year",
        "active",
        "external_id",
        "created",
        "updated",
    ]
    if len(new) > RECORD_MAX_ITEMS:
        with transaction.atomic(), _indexes_rebuilt_after(Item, rows=len(new), say=say):
            _rows_write(Item, columns, (row(i) for i in new), total=len(new), say=say)
            _changes_reset_point()
        return len(new)
    for start in range(0, len(new), _BATCH):
        batch = []
        for i in new[start : start + _BATCH]:
            item = Item(**dict(zip(columns, row(i), strict=True)))
            item.category = categories[shop.department[i]]  # no query per item
            batch.append(item)
        with transaction.atomic():
            Item.objects.bulk_create(batch)
            sync.record(Item, batch)
        say(f"Items {min(len(new), start + _BATCH)}/{len(new)}…")
    return len(new)


@contextmanager
def _indexes_rebuilt_after(
    model: type[models.Model], *, rows: int, say: Progress
) -> Iterator[None]:
    """Drop the table's plain secondary indexes for a bulk load into a small table.

    Building an index once over a million rows is several times faster than
    updating it row by row (the full-text GIN index most of all). Only on
    PostgreSQL, only when the load at least doubles the table, and inside the
    caller's transaction, so readers see the old table and indexes until the
    commit. Unique and primary-key indexes stay: they guard the load itself.
    """
    if connection.vendor != "postgresql":
        yield
        return
    table = model._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT reltuples::bigint FROM pg_class WHERE oid = %s::regclass", [table]
        )
        (present,) = cursor.fetchone()
        if rows < max(present, COPY_MIN_ROWS):
            yield
            return
        cursor.execute(
            "SELECT c.relname, pg_get_indexdef(i.indexrelid) FROM pg_index i "
            "JOIN pg_class c ON c.oid = i.indexrelid "
            "WHERE i.indrelid = %s::regclass AND NOT i.indisunique",
            [table],
        )
        indexes = cursor.fetchall()
        for name, _ in indexes:
            cursor.execute(f"DROP INDEX {connection.ops.quote_name(name)}")
    yield
    say(f"Building {len(indexes)} indexes…")
    with connection.cursor() as cursor:
        # Django's foreign keys are DEFERRABLE INITIALLY DEFERRED; their checks
        # wait as pending trigger events, which CREATE INDEX refuses to run
        # beside. Check them now.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute("SET LOCAL maintenance_work_mem = '256MB'")
        for _, definition in indexes:
            cursor.execute(definition)
        cursor.execute(f"ANALYZE {connection.ops.quote_name(table)}")


def _changes_reset_point() -> None:
    """Advance the change-log seq by one without a logged change.

    The missing row is what a pruned log looks like: a client resuming from
    before it gets ``reset`` and reloads the snapshot, which then holds the
    bulk-loaded items. Clients learn of the new seq from the next heartbeat.
    """
    if not SeqCounter.objects.filter(pk=1).update(value=F("value") + 1):
        SeqCounter.objects.create(pk=1, value=1)


def _rows_write(
    model: type[models.Model],
    columns: Sequence[str],
    rows: Iterable[tuple[Any, ...]],
    *,
    total: int | None = None,
    say: Progress | None = None,
) -> None:
    """Insert ``rows`` (tuples in ``columns`` order): COPY on PostgreSQL, else batches.

    Bypasses signals, like ``bulk_create``; callers record what the change
    log needs.
    """
    rows = rows if total is not None else list(rows)
    total = total if total is not None else len(rows)  # type: ignore[arg-type]
    if connection.vendor == "postgresql" and total >= COPY_MIN_ROWS:
        table = connection.ops.quote_name(model._meta.db_table)
        names = ", ".join(connection.ops.quote_name(c) for c in columns)
        with (
            connection.cursor() as cursor,
            cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy,
        ):
            for n, values in enumerate(rows, 1):
                copy.write_row(values)
                if say and n % 100_000 == 0:
                    say(f"Rows {n}/{total}…")
        return
    fields = list(columns)
    batch: list[models.Model] = []
    for values in rows:
        batch.append(model(**dict(zip(fields, values, strict=True))))
        if len(batch) >= _BATCH:
            model.objects.bulk_create(batch)
            batch = []
    if batch:
        model.objects.bulk_create(batch)


def _demo_item_ids(n_items: int) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Return (row positions, item ids) of the demo items among the first ``n_items``."""
    pairs = np.array(
        [
            (int(external_id[5:]) - 1, pk)
            for pk, external_id in Item.objects.filter(
                external_id__startswith="demo:"
            ).values_list("id", "external_id")
        ],
        dtype=np.int64,
    ).reshape(-1, 2)
    pairs = pairs[pairs[:, 0] < n_items]
    pairs = pairs[np.argsort(pairs[:, 0], kind="stable")]
    return pairs[:, 0], pairs[:, 1]


def _shoppers_create(n_users: int) -> list[tuple[int, str]]:
    """Create the shoppers not yet present; return the new ones as (id, name)."""
    User = get_user_model()
    password = make_password(None)  # demo shoppers cannot log in
    usernames = [f"shopper{u:04d}" for u in range(1, n_users + 1)]
    have = set(
        User.objects.filter(username__in=usernames).values_list("username", flat=True)
    )
    new_users = [
        User(username=name, password=password) for name in usernames if name not in have
    ]
    User.objects.bulk_create(new_users, batch_size=_BATCH)
    new_names = {user.username for user in new_users}
    return list(
        User.objects.filter(username__in=new_names)
        .order_by("username")
        .values_list("id", "username")
    )


class _Shelves:
    """The items of each (department, noun) with Zipf-like popularity, for sampling."""

    def __init__(
        self,
        rng: np.random.Generator,
        department: NDArray[np.int64],
        noun: NDArray[np.int64],
    ) -> None:
        n = len(department)
        # A few items get most of the attention, on every shelf.
        popularity = 1.0 / np.arange(1, n + 1) ** 0.9
        popularity = popularity[rng.permutation(n)]
        shelf = department * 64 + noun
        order = np.argsort(shelf, kind="stable")
        keys, starts = np.unique(shelf[order], return_index=True)
        ends = np.r_[starts[1:], n]
        self._members: dict[int, NDArray[np.int64]] = {}
        self._cdf: dict[int, NDArray[np.float64]] = {}
        for key, start, end in zip(keys.tolist(), starts, ends, strict=True):
            members = order[start:end]
            cdf = np.cumsum(popularity[members])
            self._members[key] = members
            self._cdf[key] = cdf / cdf[-1]
        nouns_of: dict[int, list[int]] = {}
        for key in self._members:
            nouns_of.setdefault(key // 64, []).append(key % 64)
        self.nouns_of = {d: np.array(v) for d, v in nouns_of.items()}
        dept_weight = np.bincount(department, minlength=len(DEPARTMENTS))
        self.departments = np.flatnonzero(dept_weight)
        self.dept_p = dept_weight[self.departments] / dept_weight.sum()

    def pick(self, rng: np.random.Generator, dept: int, size: int) -> NDArray[np.int64]:
        """Return up to ``size`` distinct positions of items of one noun of ``dept``.

        Popular items come up more often; the noun is drawn uniformly.
        """
        nouns = self.nouns_of[dept]
        key = dept * 64 + int(nouns[rng.integers(len(nouns))])
        cdf = self._cdf[key]
        found = np.searchsorted(cdf, rng.random(size), side="right")
        picks = np.unique(self._members[key][np.minimum(found, len(cdf) - 1)])
        return picks[rng.permutation(len(picks))]


_COMMIT_ACTIONS = ["like", "cart", "purchase", None]
_COMMIT_P = [0.3, 0.25, 0.15, 0.3]


def _sessions(
    *,
    rng: np.random.Generator,
    department: NDArray[np.int64],
    noun: NDArray[np.int64],
    item_ids: NDArray[np.int64],
    user_ids: list[int],
    now: datetime,
) -> list[tuple[Any, ...]]:
    """Return every shopper's events as rows, oldest first per shopper.

    Rows are ``(user_id, item_id, action, weight, client_id, created)``.
    """
    shelves = _Shelves(rng, department, noun)
    index = {name: d for d, name in enumerate(DEPARTMENT_NAMES)}
    present = set(shelves.departments.tolist())
    rows: list[tuple[Any, ...]] = []
    for user_id in user_ids:
        n_favourites = min(int(rng.integers(2, 4)), len(shelves.departments))
        favourites = rng.choice(
            shelves.departments, size=n_favourites, replace=False, p=shelves.dept_p
        )
        n_sessions = int(rng.integers(3, 9))
        starts = np.sort(rng.uniform(0, _HISTORY_DAYS * _DAY_SECS, n_sessions))[::-1]
        for ago_secs in starts:
            at = now - timedelta(seconds=float(ago_secs))
            steps: list[tuple[int, str]] = []
            dept = int(favourites[rng.integers(len(favourites))])
            browsed = shelves.pick(rng, dept, int(rng.integers(3, 8)))
            for position in browsed:
                steps.append(
                    (int(position), "click" if rng.random() < 0.25 else "view")
                )
            commit = _COMMIT_ACTIONS[rng.choice(4, p=_COMMIT_P)]
            if commit:
                steps.append((int(browsed[rng.integers(len(browsed))]), commit))
            complements = [
                index[c] for c in DEPARTMENTS[dept].complements if index[c] in present
            ]
            if complements and rng.random() < 0.6:
                other = complements[rng.integers(len(complements))]
                for position in shelves.pick(rng, other, int(rng.integers(1, 4))):
                    steps.append((int(position), "view"))
                if rng.random() < 0.35:
                    steps.append((steps[-1][0], "cart"))
            elsewhere = [int(d) for d in favourites if d != dept]
            if elsewhere and rng.random() < 0.4:
                other = elsewhere[rng.integers(len(elsewhere))]
                for position in shelves.pick(rng, other, int(rng.integers(2, 5))):
                    steps.append((int(position), "view"))
            gaps = np.cumsum(rng.uniform(15, 120, size=len(steps)))
            for (position, action), gap in zip(steps, gaps, strict=True):
                created = min(at + timedelta(seconds=float(gap)), now)
                rows.append(
                    (
                        user_id,
                        int(item_ids[position]),
                        action,
                        ACTION_WEIGHTS[action],
                        "",
                        created,
                    )
                )
    rows.sort(key=lambda r: (r[0], r[5]))
    return rows


DEMO_ACCOUNTS = {"staff": "recsite-staff", "shopper": "recsite-shopper"}


def demo_accounts_ensure() -> dict[str, str]:
    """Create (or reset) the demo staff and shopper logins; return name → password."""
    User = get_user_model()
    for username, password in DEMO_ACCOUNTS.items():
        user, _ = User.objects.get_or_create(username=username)
        user.is_staff = user.is_superuser = username == "staff"
        user.set_password(password)
        user.save()
    return dict(DEMO_ACCOUNTS)
