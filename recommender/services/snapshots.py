"""Stored lists: snapshot versions, snapshot rows and impressions.

A snapshot is one user's list at one version; an impression is one item of
a list that went to an open socket (for the online metrics). Both are
written here, in bulk, with one multi-row INSERT each.
"""

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

import orjson
from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Max, Q
from django.utils import timezone

from recommender import messages
from recommender.db import rows_insert
from recommender.models import Impression, RecommendationSnapshot
from recommender.services.live import live

logger = logging.getLogger(__name__)

#: One user's scored list, its share of the scoring time (ms) and the
#: experiment variant that shaped it (None: the default engine).
ScoredList = tuple[list[messages.RecommendedItem], float, int | None]


@dataclass(frozen=True)
class StoredList:
    """A snapshot as it was just stored (no model instance: this is per event)."""

    user_id: int
    version: int
    items: list[messages.RecommendedItem]
    computed_at: datetime
    computed_ms: float
    variant_id: int | None = None


def lists_store(*, lists: dict[int, ScoredList], shown: bool) -> dict[int, StoredList]:
    """Store each user's list as their next snapshot; return what was stored.

    One transaction for every list (and, when ``shown``, their impressions).
    A user whose snapshot cannot be stored (deleted a moment ago) is left
    out of the result; the others keep their lists.
    """
    try:
        return _lists_store(lists, shown=shown)
    except IntegrityError:
        # A user (or a shown item) deleted a moment ago: store user by user
        # so the others keep their lists.
        stored: dict[int, StoredList] = {}
        for user_id, entry in lists.items():
            try:
                stored.update(_lists_store({user_id: entry}, shown=shown))
            except IntegrityError:
                logger.warning("no snapshot stored for user %s", user_id)
        return stored


def _lists_store(lists: dict[int, ScoredList], *, shown: bool) -> dict[int, StoredList]:
    """Store the snapshots (and impressions) of ``lists`` atomically.

    A snapshot can always be recomputed from the events, so its write need
    not wait for the disk: on PostgreSQL it commits without fsync.
    """
    if connection.vendor == "postgresql" and not connection.in_atomic_block:
        return _snapshots_store(lists, shown=shown)
    with transaction.atomic():
        snapshots = _snapshots_store(lists, shown=False)
        if shown:
            impressions_record(snapshots=list(snapshots.values()))
    return snapshots


def snapshot_versions_next(*, user_ids: list[int]) -> dict[int, int]:
    """Return the versions this process would give the users' next snapshots.

    Users this process has not stored or seen a snapshot of are read in one
    query.
    """
    versions = live.versions
    known = {u: versions[u] for u in user_ids if u in versions}
    missing = [u for u in user_ids if u not in known]
    if missing:
        known |= dict.fromkeys(missing, 0) | dict(
            RecommendationSnapshot.objects.filter(user_id__in=missing)
            .values("user_id")
            .annotate(top=Max("version"))
            .values_list("user_id", "top")
        )
    return {u: known[u] + 1 for u in user_ids}


def _snapshots_store(
    lists: dict[int, ScoredList], *, shown: bool
) -> dict[int, StoredList]:
    """Store each user's snapshot with their next version; prune old ones.

    Next versions come from this process's memory (one query for users it
    has not seen), so the common case is one statement. When another
    process (another tab's server) stored a version first,
    ``ON CONFLICT DO NOTHING`` skips that row and the user's version is read
    again from the database; no savepoint is needed. ``shown`` (PostgreSQL
    in autocommit only) records the impressions of the stored rows in the
    same statement.
    """
    meta = RecommendationSnapshot._meta
    computed_at = timezone.now()
    at_db = meta.get_field("computed_at").get_db_prep_save(computed_at, connection)
    stored: dict[int, StoredList] = {}
    todo = dict(lists)
    for _ in range(10):
        if not todo:
            break
        versions = snapshot_versions_next(user_ids=list(todo))
        rows = [
            [user_id, versions[user_id], items, at_db, computed_ms, variant_id]
            for user_id, (items, computed_ms, variant_id) in todo.items()
        ]
        if connection.vendor == "postgresql" and not connection.in_atomic_block:
            inserted = _snapshots_insert_pg(rows, shown=shown)
        else:
            inserted = rows_insert(
                table=meta.db_table,
                columns=_SNAPSHOT_COLUMNS,
                rows=rows,
                ignore_conflicts=True,
                returning="user_id, version",
            )
        for user_id, version in inserted:
            items, computed_ms, variant_id = todo.pop(user_id)
            live.versions[user_id] = version
            stored[user_id] = StoredList(
                user_id, version, items, computed_at, computed_ms, variant_id
            )
        for user_id in todo:
            live.versions.pop(user_id, None)
    if todo:
        raise RuntimeError(f"could not store snapshots for users {sorted(todo)}")
    _snapshots_prune(stored.values())
    return stored


def _snapshots_insert_pg(rows: list[list[object]], *, shown: bool) -> list[tuple]:
    """INSERT snapshot rows (and their impressions) in one autocommit statement.

    One round trip instead of five (BEGIN, SET, two INSERTs, COMMIT): the
    impressions are the stored rows' items, unpacked by PostgreSQL, so a
    snapshot skipped by a conflict records none. ``set_config(..., true)``
    is ``SET LOCAL synchronous_commit TO OFF`` for this statement's own
    transaction: a crash may lose the last few snapshots, never an event
    (stored before, with a durable commit), and the next recompute restores
    them.

    Returns
    -------
    list of (user_id, version)
        The rows stored.
    """
    q = connection.ops.quote_name
    snapshot = q(RecommendationSnapshot._meta.db_table)
    names = ", ".join(q(name) for name, _ in _SNAPSHOT_COLUMNS)
    picks = ", ".join(
        f"r->{i}" if kind == "jsonb" else f"(r->>{i})::{kind}"
        for i, (_, kind) in enumerate(_SNAPSHOT_COLUMNS)
    )
    sql = (
        "WITH quick AS (SELECT set_config('synchronous_commit', 'off', true)), "
        f"stored AS (INSERT INTO {snapshot} ({names}) "
        f"SELECT {picks} FROM jsonb_array_elements(%s::jsonb) AS r, quick "
        "ON CONFLICT DO NOTHING RETURNING user_id, version, items, computed_at, "
        "variant_id)"
    )
    if shown:
        impression = q(Impression._meta.db_table)
        columns = ", ".join(q(name) for name, _ in _IMPRESSION_COLUMNS)
        sql += (
            f", shown AS (INSERT INTO {impression} ({columns}) "
            "SELECT s.user_id, (e.entry->>'id')::bigint, s.version, e.position, "
            "s.computed_at, s.variant_id FROM stored AS s "
            "CROSS JOIN LATERAL jsonb_array_elements(s.items) "
            "WITH ORDINALITY AS e(entry, position))"
        )
    sql += " SELECT user_id, version FROM stored"
    with connection.cursor() as cursor:
        cursor.execute(sql, [orjson.dumps(rows).decode()])
        return [tuple(row) for row in cursor.fetchall()]


def _snapshots_prune(snapshots: Iterable[StoredList]) -> None:
    """Delete old snapshots of the users whose version reached a multiple of 10.

    Pruning every tenth version keeps the table at most
    ``RECS_SNAPSHOTS_KEPT_PER_USER + 10`` rows per user for a tenth of the
    DELETEs.
    """
    keep = settings.RECS_SNAPSHOTS_KEPT_PER_USER
    stale = Q()
    for snap in snapshots:
        if snap.version % 10 == 0 and snap.version > keep:
            stale |= Q(user_id=snap.user_id, version__lte=snap.version - keep)
    if stale:
        RecommendationSnapshot.objects.filter(stale).delete()


def impressions_record(*, snapshots: list[StoredList]) -> None:
    """Record every item of the shown lists with its version and rank.

    One INSERT for all of them: the ORM's ``bulk_create`` builds a model
    instance per row, which cost more than the scoring.
    """
    field = Impression._meta.get_field("shown_at")
    rows: list[list[object]] = []
    for snap in snapshots:
        shown_at = field.get_db_prep_save(snap.computed_at, connection)
        if isinstance(shown_at, datetime):
            shown_at = shown_at.isoformat()  # once, not once per row
        rows += [
            [snap.user_id, entry["id"], snap.version, rank, shown_at, snap.variant_id]
            for rank, entry in enumerate(snap.items, start=1)
        ]
    rows_insert(table=Impression._meta.db_table, columns=_IMPRESSION_COLUMNS, rows=rows)


_SNAPSHOT_COLUMNS = [
    ("user_id", "bigint"),
    ("version", "integer"),
    ("items", "jsonb"),
    ("computed_at", "timestamptz"),
    ("computed_ms", "float8"),
    ("variant_id", "bigint"),
]
_IMPRESSION_COLUMNS = [
    ("user_id", "bigint"),
    ("item_id", "bigint"),
    ("version", "integer"),
    ("position", "integer"),
    ("shown_at", "timestamptz"),
    ("variant_id", "bigint"),
]


def snapshot_message(
    snapshot: RecommendationSnapshot | StoredList,
) -> messages.RecommendationsMessage:
    """Return the wire message of a stored snapshot.

    A :class:`StoredList` was just built by this process with wire types; a
    row read back from the database is coerced field by field.
    """
    return messages.recommendations(
        version=snapshot.version,
        items=snapshot.items,
        computed_ms=snapshot.computed_ms,
        typed=isinstance(snapshot, StoredList),
    )
