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

import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import numpy as np
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.db import connection, models, transaction
from django.db.models import IntegerField
from django.db.models.functions import Cast, Substr
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
#: Items per COPY write of a large seed.
_COPY_CHUNK = 20_000
#: Memory for each index build after a bulk load (PostgreSQL's default of
#: 64 MB makes the full-text index spill to disk at a million items).
_INDEX_BUILD_MEM = "512MB"
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
    if existing:
        new = [i for i in range(n_items) if f"demo:{i + 1}" not in existing]
    else:
        new = list(range(n_items))
    if not new:
        return 0

    def row(i: int) -> tuple[Any, ...]:
        age_days = float(shop.age_days[i])
        return (
            shop.titles[i],
            shop.descriptions[i],
            categories[shop.department[i]].pk,
            shop.tags[i],
            Decimal(f"{shop.price[i]:.2f}"),
            float(shop.rating[i]),
            int(now.year - min(age_days // 365, 20)),
            True,
            f"demo:{i + 1}",
            now - timedelta(days=age_days),
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
        with transaction.atomic(), _bulk_load(Item, rows=len(new), say=say):
            if connection.vendor == "postgresql":
                _items_copy(shop=shop, new=new, categories=categories, now=now, say=say)
            else:
                _rows_write(Item, columns, (row(i) for i in new), total=len(new))
            # One reset point instead of a change per item: clients reload.
            sync.reset_point(Item)
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


def _items_copy(
    *,
    shop: DemoCatalog,
    new: list[int],
    categories: list[Category],
    now: datetime,
    say: Progress,
) -> None:
    """COPY the demo items at positions ``new`` into the item table (PostgreSQL).

    The rows are assembled as COPY text in chunks from column arrays, with
    numbers and timestamps formatted by numpy for the whole column at once:
    per-value adaptation through ``write_row`` was most of the seed's own CPU
    at a million items. The same values as the ORM path, so a seed gives the
    same shop either way.
    """
    idx = np.asarray(new, dtype=np.int64)
    age_us = np.round(shop.age_days[idx] * (_DAY_SECS * 1e6)).astype(np.int64)
    now_us = np.datetime64(now.astimezone(UTC).replace(tzinfo=None), "us")
    created = np.datetime_as_string(now_us - age_us.astype("timedelta64[us]"))
    now_text = f"{np.datetime_as_string(now_us)}+00"
    year = (now.year - np.minimum(shop.age_days[idx] // 365, 20)).astype(np.int64)
    category_pk = np.array([c.pk for c in categories], dtype=np.int64)
    columns = (
        _copy_text([shop.titles[i] for i in new]),
        _copy_text([shop.descriptions[i] for i in new]),
        category_pk[shop.department[idx]].tolist(),
        _copy_text([shop.tags[i] for i in new]),
        # Prices are rounded to cents: the shortest repr of each is its
        # two-decimal text, as numeric(10, 2) stores it.
        shop.price[idx].tolist(),
        shop.rating[idx].tolist(),
        year.tolist(),
        (idx + 1).tolist(),
        created.tolist(),
    )
    table = connection.ops.quote_name(Item._meta.db_table)
    names = ", ".join(
        connection.ops.quote_name(c)
        for c in (
            "title",
            "description",
            "category_id",
            "tags",
            "price",
            "rating",
            "year",
            "external_id",
            "created",
            "active",
            "updated",
        )
    )
    with (
        connection.cursor() as cursor,
        cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy,
    ):
        for start in range(0, len(new), _COPY_CHUNK):
            part = [column[start : start + _COPY_CHUNK] for column in columns]
            copy.write(
                "".join(
                    f"{t}\t{d}\t{c}\t{g}\t{p}\t{r}\t{y}\tdemo:{e}\t{at}+00"
                    f"\tt\t{now_text}\n"
                    for t, d, c, g, p, r, y, e, at in zip(*part, strict=True)
                )
            )
            done = min(len(new), start + _COPY_CHUNK)
            if done % 100_000 < _COPY_CHUNK:
                say(f"Items {done}/{len(new)}…")


def _copy_text(values: list[str]) -> list[str]:
    """Return ``values`` escaped for COPY's text format (demo text needs none)."""
    joined = "".join(values)
    if not any(ch in joined for ch in "\\\t\n\r"):
        return values
    table = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})
    return [value.translate(table) for value in values]


@contextmanager
def _bulk_load(
    model: type[models.Model], *, rows: int, say: Progress
) -> Iterator[None]:
    """Drop the table's secondary indexes and foreign keys around a bulk load.

    Building an index once over a million rows is several times faster than
    updating it row by row (the full-text GIN index most of all), and one
    validating join of a foreign key replaces a million queued per-row
    trigger checks. Only on PostgreSQL, only when the load at least doubles
    the table, and inside the caller's transaction, so readers see the old
    table until the commit. The primary key and unique constraints stay (rows
    of other tables refer to them); a unique index that backs no constraint
    (Django's conditional ``UniqueConstraint``) is rebuilt like the others,
    and rebuilding it fails the load on a duplicate just as it would have.
    """
    if connection.vendor != "postgresql":
        yield
        return
    table = model._meta.db_table
    quoted = connection.ops.quote_name(table)
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
            "WHERE i.indrelid = %s::regclass AND NOT i.indisprimary "
            "AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = "
            "i.indexrelid)",
            [table],
        )
        indexes = cursor.fetchall()
        cursor.execute(
            "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conrelid = %s::regclass AND contype = 'f'",
            [table],
        )
        foreign_keys = cursor.fetchall()
        # Django's foreign keys are DEFERRABLE INITIALLY DEFERRED: checks of
        # rows written earlier in this transaction would otherwise wait as
        # pending trigger events, which ALTER TABLE and CREATE INDEX refuse
        # to run beside.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        for name, _ in foreign_keys:
            cursor.execute(
                f"ALTER TABLE {quoted} DROP CONSTRAINT {connection.ops.quote_name(name)}"
            )
        for name, _ in indexes:
            cursor.execute(f"DROP INDEX {connection.ops.quote_name(name)}")
    yield
    say(f"Building {len(indexes)} indexes…")
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        for name, definition in foreign_keys:
            cursor.execute(
                f"ALTER TABLE {quoted} ADD CONSTRAINT "
                f"{connection.ops.quote_name(name)} {definition}"
            )
        cursor.execute(f"SET LOCAL maintenance_work_mem = '{_INDEX_BUILD_MEM}'")
        for _, definition in indexes:
            cursor.execute(definition)
        cursor.execute(f"ANALYZE {quoted}")
    say(f"Indexes built in {time.perf_counter() - started:.1f} s.")


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
    # "demo:<n>" is parsed by the database: a million rows come back as two
    # integers each instead of a string to split in Python.
    position = Cast(Substr("external_id", 6), output_field=IntegerField()) - 1
    pairs = np.array(
        list(
            Item.objects.filter(external_id__startswith="demo:")
            .annotate(position=position)
            .values_list("position", "id")
        ),
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
