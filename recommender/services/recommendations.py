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
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from recommender import messages
from recommender.models import FittedModel, Impression, Item, RecommendationSnapshot
from recommender.selectors import history_for_user, interactions_all, snapshot_latest
from recommender.services.catalog import catalog_load
from recommender.services.engine import Behaviour, Engine
from recommender.services.events import StoredEvent, event_record
from recsite import live_stats, metrics
from recsite.layer import bounded
from recsite.wire import encode
from sync.selectors import seq_latest

logger = logging.getLogger(__name__)

Progress = Callable[[str], None]

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

    def snapshot_version_next(self, user_id: int) -> int:
        """Return the version this process would give the user's next snapshot."""
        known = self.versions.get(user_id)
        if known is None:
            known = (
                RecommendationSnapshot.objects.filter(user_id=user_id)
                .order_by("-version")
                .values_list("version", flat=True)
                .first()
            ) or 0
        return known + 1

    def reset(self) -> None:
        """Forget everything (tests swap databases under a live process)."""
        with self.lock:
            self.state = None
            self.seen_seq = 0
            self.seq_checked_at = float("-inf")
            self.model_checked_at = float("-inf")
            self.versions.clear()


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
    started = time.perf_counter()
    state = live_engine.current()
    history = history_for_user(user_id=user_id)
    ranked = state.engine.recommend(
        history, k=settings.RECS_LIST_LENGTH, now=time.time()
    )
    items: list[messages.RecommendedItem] = [
        {
            "id": rec.item_id,
            "title": state.titles.get(rec.item_id, ""),
            "score": rec.score,
            "reasons": rec.reasons,
        }
        for rec in ranked
    ]
    computed_ms = (time.perf_counter() - started) * 1000
    # A snapshot can always be recomputed from the events, so its write need
    # not wait for the disk: one transaction, committed without fsync.
    with transaction.atomic(), _commit_without_fsync():
        snapshot = _snapshot_store(
            user_id=user_id, items=items, computed_ms=computed_ms
        )
        if shown:
            impressions_record(snapshot=snapshot)
    metrics.RECOMPUTE_SECS.observe(computed_ms / 1000)
    return snapshot_message(snapshot)


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


def event_process(
    *, user_id: int, item_id: int, action: str, client_id: str
) -> tuple[StoredEvent, messages.RecommendationsMessage]:
    """Store a socket event, then rescore the user: one worker-thread hop.

    The item is checked against the live catalog in memory; an id the
    engine does not know yet (created a moment ago) is checked in the
    database by :func:`event_record`.

    Raises
    ------
    UnknownItem
        When the item does not exist or is not active.
    """
    state = live_engine.current()
    known = item_id in state.active_ids
    stored = event_record(
        user_id=user_id,
        item_id=item_id,
        action=action,
        client_id=client_id,
        check_item=not known,
    )
    return stored, recommendations_compute(user_id=user_id, shown=True)


def _snapshot_store(
    *, user_id: int, items: list[messages.RecommendedItem], computed_ms: float
) -> RecommendationSnapshot:
    """Store a snapshot with the user's next version and prune old ones.

    The next version comes from this process's memory, so the common case is
    one INSERT. When another process (another tab's server) stored that
    version first, ``ON CONFLICT DO NOTHING`` inserts nothing and the version
    is read again from the database; no savepoint is needed around it.
    """
    model = RecommendationSnapshot
    meta = model._meta
    computed_at = timezone.now()
    sql = (
        f"INSERT INTO {connection.ops.quote_name(meta.db_table)} "
        "(user_id, version, items, computed_at, computed_ms) "
        "VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING RETURNING id"
    )
    items_db = meta.get_field("items").get_db_prep_save(items, connection)
    at_db = meta.get_field("computed_at").get_db_prep_save(computed_at, connection)
    for _ in range(10):
        version = live_engine.snapshot_version_next(user_id)
        with connection.cursor() as cursor:
            cursor.execute(sql, [user_id, version, items_db, at_db, computed_ms])
            row = cursor.fetchone()
        if row is None:
            live_engine.versions.pop(user_id, None)
            continue
        live_engine.versions[user_id] = version
        keep_from = version - settings.RECS_SNAPSHOTS_KEPT_PER_USER
        if keep_from > 0 and version % 10 == 0:
            model.objects.filter(user_id=user_id, version__lte=keep_from).delete()
        return model(
            id=row[0],
            user_id=user_id,
            version=version,
            items=items,
            computed_at=computed_at,
            computed_ms=computed_ms,
        )
    raise RuntimeError(f"could not store a snapshot for user {user_id}")


def impressions_record(*, snapshot: RecommendationSnapshot) -> None:
    """Record every item of a shown list with its version and rank."""
    Impression.objects.bulk_create(
        Impression(
            user_id=snapshot.user_id,
            item_id=entry["id"],
            version=snapshot.version,
            position=rank,
            shown_at=snapshot.computed_at,
        )
        for rank, entry in enumerate(snapshot.items, start=1)
    )


def snapshot_message(
    snapshot: RecommendationSnapshot,
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


def recommendations_push(
    *, user_id: int, message: messages.RecommendationsMessage, origin: str | None = None
) -> None:
    """Send a list to every socket of the user (except ``origin``); never raise."""
    async_to_sync(recommendations_push_async)(
        user_id=user_id, text=encode(message), version=message["version"], origin=origin
    )


async def recommendations_push_async(
    *, user_id: int, text: str, version: int, origin: str | None
) -> None:
    """Async twin of :func:`recommendations_push` for consumers; never raises."""
    envelope = messages.layer_recs(text=text, version=version, origin=origin)
    try:
        await bounded(
            get_channel_layer().group_send(messages.user_group(user_id), envelope),
            timeout_secs=settings.BROADCAST_TIMEOUT_SECS,
        )
    except Exception:
        metrics.BROADCAST_FAILURES.labels(kind="recommendations").inc()
        live_stats.stats.broadcast_failures += 1
        logger.warning(
            "push to user %s failed; their sockets refresh on reconnect",
            user_id,
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
    total = len(user_ids)
    step = max(1, total // 10)
    for done, user_id in enumerate(sorted(user_ids), start=1):
        recommendations_push(
            user_id=user_id, message=recommendations_compute(user_id=user_id)
        )
        if progress and (done % step == 0 or done == total):
            progress(f"Recomputed {done}/{total} users…")
    return total
