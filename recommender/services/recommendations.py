"""Scoring users with the live engine, storing snapshots and pushing them.

One :class:`Engine` per process, built once per catalog version and replaced
atomically: a catalog change (any new change-log seq) rebuilds the content
part, and a newer :class:`FittedModel` row (written by
``recompute_recommendations``) swaps in new item neighbours. Scoring a user
reads their latest events and needs no refit, so every event changes the list
at once.
"""

import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime

from asgiref.sync import async_to_sync
from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Max, Q
from django.utils import timezone

from recommender import messages
from recommender.models import FittedModel, Impression, Item, RecommendationSnapshot
from recommender.selectors import interactions_all, snapshot_latest
from recommender.services.catalog import catalog_load
from recommender.services.engine import Behaviour, Engine
from recommender.services.events import (
    NewEvent,
    StoredEvent,
    UnknownItem,
    events_record,
)
from recommender.services.histories import history_cache
from recsite import live_stats, metrics
from recsite.db import rows_insert
from recsite.layer import bounded, group_send_many
from recsite.wire import encode
from sync.selectors import seq_latest

logger = logging.getLogger(__name__)

Progress = Callable[[str], None]
EventOutcome = tuple[StoredEvent, messages.RecommendationsMessage | None] | UnknownItem

# Older fitted models are kept briefly so a process mid-load never misses one.
_FITTED_MODELS_KEPT = 3


@dataclass(frozen=True)
class LiveState:
    """One consistent view: the engine and the catalog facts it was built from."""

    engine: Engine
    titles: dict[int, str]
    active_ids: frozenset[int]
    catalog_seq: int
    model_id: int | None


class _LiveEngine:
    """The process-wide engine, rebuilt when the catalog or fitted model changes.

    The catalog version is the change-log seq. Broadcast changes reach every
    socket of this process, and consumers report their seq here
    (:meth:`note_seq`), so a catalog edit is seen at once; the database is
    polled only every ``RECS_CATALOG_CHECK_SECS`` as a backstop for lost
    broadcasts and for processes without sockets.
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.state: LiveState | None = None
        self.seen_seq = 0
        self.seq_checked_at = float("-inf")
        self.model_checked_at = float("-inf")
        # user id -> last snapshot version this process stored or saw
        self.versions: dict[int, int] = {}

    def note_seq(self, seq: int) -> None:
        """Record that change ``seq`` has been committed (called from consumers)."""
        if seq > self.seen_seq:
            self.seen_seq = seq

    def _catalog_seq(self) -> int:
        now = time.monotonic()
        if now - self.seq_checked_at >= settings.RECS_CATALOG_CHECK_SECS:
            self.note_seq(seq_latest())
            self.seq_checked_at = now
        return self.seen_seq

    def current(self) -> LiveState:
        """Return the state for the latest catalog and fitted model."""
        seq = self._catalog_seq()
        state = self.state
        check_model = (
            time.monotonic() - self.model_checked_at >= settings.RECS_MODEL_CHECK_SECS
        )
        if state is not None and state.catalog_seq == seq and not check_model:
            return state
        with self.lock:
            state = self.state
            if state is None:
                model_id, behaviour = _model_latest()
                engine = Engine(catalog_load(), behaviour)
            else:
                engine, model_id = state.engine, state.model_id
                if state.catalog_seq != seq:
                    engine = engine.with_catalog(catalog_load())
                if check_model:
                    latest = _model_latest_id()
                    if latest != model_id:
                        model_id, behaviour = _model_latest()
                        engine = engine.with_behaviour(behaviour)
            if check_model or state is None:
                self.model_checked_at = time.monotonic()
            if state is None or engine is not state.engine or state.catalog_seq != seq:
                state = _state(engine, seq, model_id)
            self.state = state
            return state

    def snapshot_versions_next(self, user_ids: list[int]) -> dict[int, int]:
        """Return the versions this process would give the users' next snapshots.

        Users this process has not stored or seen a snapshot of are read in
        one query.
        """
        known = {u: self.versions[u] for u in user_ids if u in self.versions}
        missing = [u for u in user_ids if u not in known]
        if missing:
            known |= dict.fromkeys(missing, 0) | dict(
                RecommendationSnapshot.objects.filter(user_id__in=missing)
                .values("user_id")
                .annotate(top=Max("version"))
                .values_list("user_id", "top")
            )
        return {u: known[u] + 1 for u in user_ids}

    def reset(self) -> None:
        """Forget everything (tests swap databases under a live process)."""
        with self.lock:
            self.state = None
            self.seen_seq = 0
            self.seq_checked_at = float("-inf")
            self.model_checked_at = float("-inf")
            self.versions.clear()
        history_cache.clear()


def _model_latest_id() -> int | None:
    return FittedModel.objects.order_by("-id").values_list("id", flat=True).first()


def _model_latest() -> tuple[int | None, Behaviour]:
    """Return the newest fitted model (an empty one before the first fit)."""
    record = FittedModel.objects.order_by("-id").first()
    if record is None:
        return None, Behaviour.empty()
    return record.pk, Behaviour.from_bytes(bytes(record.data))


def _state(engine: Engine, seq: int, model_id: int | None) -> LiveState:
    catalog = engine.catalog
    ids = catalog.ids.tolist()
    return LiveState(
        engine=engine,
        titles=dict(zip(ids, catalog.titles, strict=True)),
        active_ids=frozenset(catalog.ids[catalog.active].tolist()),
        catalog_seq=seq,
        model_id=model_id,
    )


live_engine = _LiveEngine()


def model_refit(*, progress: Progress | None = None) -> FittedModel:
    """Fit the engine's batch part on every stored event and publish it.

    Every server process picks the new model up within
    ``RECS_MODEL_CHECK_SECS``.
    """
    started = time.perf_counter()
    if progress:
        progress("Loading events…")
    interactions = interactions_all()
    if progress:
        progress(f"Fitting item neighbours on {len(interactions.user_ids)} events…")
    behaviour = Behaviour.fit(interactions, now=time.time(), progress=progress)
    fit_ms = (time.perf_counter() - started) * 1000
    with transaction.atomic():
        record = FittedModel.objects.create(
            n_items=Item.objects.count(),
            n_events=len(interactions.user_ids),
            fit_ms=fit_ms,
            data=behaviour.to_bytes(),
        )
        stale = FittedModel.objects.order_by("-id").values_list("id", flat=True)[
            _FITTED_MODELS_KEPT:
        ]
        FittedModel.objects.filter(id__in=list(stale)).delete()
    live_engine.model_checked_at = float("-inf")
    return record


def recommendations_compute(
    *, user_id: int, shown: bool = False
) -> messages.RecommendationsMessage:
    """Score the user now, store a new snapshot and return its message.

    ``shown`` records the list as impressions (it goes to an open socket),
    for the online metrics.
    """
    computed = recommendations_compute_many(user_ids=[user_id], shown=shown)
    if user_id not in computed:
        raise RuntimeError(f"could not store a snapshot for user {user_id}")
    return computed[user_id]


def recommendations_compute_many(
    *, user_ids: list[int], shown: bool = False
) -> dict[int, messages.RecommendationsMessage]:
    """Score each user, store their snapshots in one transaction, return the messages.

    Histories come from the process's cache (one query for every user), and
    every snapshot and impression is written in one transaction. A user whose
    snapshot cannot be stored (deleted a moment ago) is left out of the result.
    """
    state = live_engine.current()
    histories = history_cache.histories(user_ids)
    now = time.time()
    started = time.perf_counter()
    ranked_all = state.engine.recommend_many(
        [histories[user_id] for user_id in user_ids],
        k=settings.RECS_LIST_LENGTH,
        now=now,
    )
    # Users are scored together; each list reports its share of the time.
    computed_ms = (time.perf_counter() - started) * 1000 / max(1, len(user_ids))
    lists: dict[int, tuple[list[messages.RecommendedItem], float]] = {}
    for user_id, ranked in zip(user_ids, ranked_all, strict=True):
        items: list[messages.RecommendedItem] = [
            {
                "id": rec.item_id,
                "title": state.titles.get(rec.item_id, ""),
                "score": rec.score,
                "reasons": rec.reasons,
            }
            for rec in ranked
        ]
        metrics.RECOMPUTE_SECS.observe(computed_ms / 1000)
        lists[user_id] = (items, computed_ms)
    try:
        snapshots = _lists_store(lists, shown=shown)
    except IntegrityError:
        # A user (or a shown item) deleted a moment ago: store user by user
        # so the others keep their lists.
        snapshots = {}
        for user_id, entry in lists.items():
            try:
                snapshots.update(_lists_store({user_id: entry}, shown=shown))
            except IntegrityError:
                logger.warning("no snapshot stored for user %s", user_id)
    return {user_id: snapshot_message(snap) for user_id, snap in snapshots.items()}


@dataclass(frozen=True)
class StoredList:
    """A snapshot as it was just stored (no model instance: this is per event)."""

    user_id: int
    version: int
    items: list[messages.RecommendedItem]
    computed_at: datetime
    computed_ms: float


def _lists_store(
    lists: dict[int, tuple[list[messages.RecommendedItem], float]], *, shown: bool
) -> dict[int, StoredList]:
    """Store the snapshots (and impressions) of ``lists`` in one transaction.

    A snapshot can always be recomputed from the events, so its write need
    not wait for the disk: the transaction commits without fsync.
    """
    with transaction.atomic(), _commit_without_fsync():
        snapshots = _snapshots_store(lists)
        if shown:
            impressions_record(snapshots=list(snapshots.values()))
    return snapshots


@contextmanager
def _commit_without_fsync() -> Iterator[None]:
    """Let the current transaction commit without waiting for the WAL flush.

    PostgreSQL only (``SET LOCAL synchronous_commit``): a crash may lose the
    last few snapshots, never an event, and the next recompute restores them.
    The event itself is written before this, with a normal durable commit.
    """
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL synchronous_commit TO OFF")
    yield


def events_process(*, events: list[NewEvent]) -> list[EventOutcome]:
    """Store a batch of socket events durably, then rescore their users.

    One durable commit covers the whole batch (group commit), and each user
    is scored once however many of their events it holds, after all of them
    are stored. Items are checked against the live catalog in memory; an id
    the engine does not know yet (created a moment ago) is checked in the
    database.

    Returns
    -------
    list of (StoredEvent, message or None) or UnknownItem
        One outcome per event, in order. The message is the user's new list;
        None when it could not be stored (the user was deleted meanwhile).
    """
    state = live_engine.current()
    recorded = events_record(events=events, active_ids=state.active_ids)
    user_ids = list(
        dict.fromkeys(
            event.user_id
            for event, outcome in zip(events, recorded, strict=True)
            if isinstance(outcome, StoredEvent)
        )
    )
    lists = recommendations_compute_many(user_ids=user_ids, shown=True)
    return [
        outcome
        if isinstance(outcome, UnknownItem)
        else (outcome, lists.get(event.user_id))
        for event, outcome in zip(events, recorded, strict=True)
    ]


def _snapshots_store(
    lists: dict[int, tuple[list[messages.RecommendedItem], float]],
) -> dict[int, StoredList]:
    """Store each user's snapshot with their next version; prune old ones.

    Next versions come from this process's memory (one query for users it
    has not seen), so the common case is one multi-row INSERT. When another
    process (another tab's server) stored a version first,
    ``ON CONFLICT DO NOTHING`` skips that row and the user's version is read
    again from the database; no savepoint is needed.
    """
    model = RecommendationSnapshot
    meta = model._meta
    computed_at = timezone.now()
    at_db = meta.get_field("computed_at").get_db_prep_save(computed_at, connection)
    stored: dict[int, StoredList] = {}
    todo = dict(lists)
    for _ in range(10):
        if not todo:
            break
        versions = live_engine.snapshot_versions_next(list(todo))
        rows = rows_insert(
            table=meta.db_table,
            columns=_SNAPSHOT_COLUMNS,
            rows=[
                [user_id, versions[user_id], items, at_db, computed_ms]
                for user_id, (items, computed_ms) in todo.items()
            ],
            ignore_conflicts=True,
            returning="user_id, version",
        )
        for user_id, version in rows:
            items, computed_ms = todo.pop(user_id)
            live_engine.versions[user_id] = version
            stored[user_id] = StoredList(
                user_id, version, items, computed_at, computed_ms
            )
        for user_id in todo:
            live_engine.versions.pop(user_id, None)
    if todo:
        raise RuntimeError(f"could not store snapshots for users {sorted(todo)}")
    _snapshots_prune(stored.values())
    return stored


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
            [snap.user_id, entry["id"], snap.version, rank, shown_at]
            for rank, entry in enumerate(snap.items, start=1)
        ]
    rows_insert(table=Impression._meta.db_table, columns=_IMPRESSION_COLUMNS, rows=rows)


_SNAPSHOT_COLUMNS = [
    ("user_id", "bigint"),
    ("version", "integer"),
    ("items", "jsonb"),
    ("computed_at", "timestamptz"),
    ("computed_ms", "float8"),
]
_IMPRESSION_COLUMNS = [
    ("user_id", "bigint"),
    ("item_id", "bigint"),
    ("version", "integer"),
    ("position", "integer"),
    ("shown_at", "timestamptz"),
]


def snapshot_message(
    snapshot: RecommendationSnapshot | StoredList,
) -> messages.RecommendationsMessage:
    """Return the wire message of a stored snapshot."""
    return messages.recommendations(
        version=snapshot.version, items=snapshot.items, computed_ms=snapshot.computed_ms
    )


def recommendations_current(
    *, user_id: int, shown: bool = False
) -> messages.RecommendationsMessage:
    """Return the user's latest list, computing one if none is valid.

    A stored snapshot that still shows an item deactivated or deleted since is
    not served; a fresh one replaces it.
    """
    snapshot = snapshot_latest(user_id=user_id)
    if snapshot is not None:
        live_engine.versions[user_id] = max(
            snapshot.version, live_engine.versions.get(user_id, 0)
        )
        active = live_engine.current().active_ids
        if all(entry["id"] in active for entry in snapshot.items):
            return snapshot_message(snapshot)
    return recommendations_compute(user_id=user_id, shown=shown)


@dataclass(frozen=True)
class Push:
    """A list to send to every socket of a user, encoded once."""

    user_id: int
    text: str
    version: int
    origin: str | None = None  # the channel that already sent it directly


def recommendations_push(
    *, user_id: int, message: messages.RecommendationsMessage, origin: str | None = None
) -> None:
    """Send a list to every socket of the user (except ``origin``); never raise."""
    push = Push(user_id, encode(message), message["version"], origin)
    async_to_sync(recommendations_push_async)(pushes=[push])


async def recommendations_push_async(*, pushes: list[Push]) -> None:
    """Send lists to their users' sockets in every process, in one round trip.

    Never raises: a failed push is counted and logged, and the sockets it
    missed show the list when they next reconnect or get a newer one.
    """
    if not pushes:
        return
    process = live_stats.stats.process_id
    envelopes = [
        (
            messages.user_group(push.user_id),
            messages.layer_recs(
                text=push.text,
                version=push.version,
                origin=push.origin,
                process=process,
            ),
        )
        for push in pushes
    ]
    try:
        await bounded(
            group_send_many(envelopes), timeout_secs=settings.BROADCAST_TIMEOUT_SECS
        )
    except Exception:
        metrics.BROADCAST_FAILURES.labels(kind="recommendations").inc()
        live_stats.stats.broadcast_failures += 1
        logger.warning(
            "push to users %s failed; their sockets refresh on reconnect",
            sorted({push.user_id for push in pushes}),
            exc_info=True,
        )


def users_recompute(
    *, user_ids: list[int] | None = None, progress: Progress | None = None
) -> int:
    """Recompute and push the lists of ``user_ids`` (all users with events if None)."""
    from recommender.models import BrowsingEvent

    if user_ids is None:
        user_ids = list(
            BrowsingEvent.objects.order_by()
            .values_list("user_id", flat=True)
            .distinct()
        )
    ordered = sorted(user_ids)
    total = len(ordered)
    reported = 0
    # Users go in chunks through the same path as a batch of socket events:
    # one history query, scoring together, one transaction for the snapshots,
    # one pipelined push.
    for start in range(0, total, _RECOMPUTE_CHUNK_USERS):
        chunk = ordered[start : start + _RECOMPUTE_CHUNK_USERS]
        lists = recommendations_compute_many(user_ids=chunk)
        pushes = [
            Push(user_id, encode(message), message["version"])
            for user_id, message in lists.items()
        ]
        async_to_sync(recommendations_push_async)(pushes=pushes)
        done = start + len(chunk)
        if progress and (done - reported >= max(1, total // 10) or done == total):
            reported = done
            progress(f"Recomputed {done}/{total} users…")
    return total


_RECOMPUTE_CHUNK_USERS = 200
