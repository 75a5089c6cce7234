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
from collections.abc import Callable

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import IntegrityError, transaction

from recommender import messages
from recommender.models import FittedModel, Impression, Item, RecommendationSnapshot
from recommender.selectors import history_for_user, interactions_all, snapshot_latest
from recommender.services.catalog import catalog_load
from recommender.services.engine import Behaviour, Engine
from recsite import live_stats, metrics
from recsite.wire import encode
from sync.selectors import seq_latest

logger = logging.getLogger(__name__)

Progress = Callable[[str], None]

# Older fitted models are kept briefly so a process mid-load never misses one.
_FITTED_MODELS_KEPT = 3


class _LiveEngine:
    """The process-wide engine and the versions it was built from."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.engine: Engine | None = None
        self.titles: dict[int, str] = {}
        self.catalog_seq = -1
        self.model_id: int | None = None
        self.model_checked_at = float("-inf")

    def current(self) -> tuple[Engine, dict[int, str]]:
        """Return the engine for the latest catalog and fitted model."""
        seq = seq_latest()
        check_model = (
            time.monotonic() - self.model_checked_at >= settings.RECS_MODEL_CHECK_SECS
        )
        if self.engine is not None and seq == self.catalog_seq and not check_model:
            return self.engine, self.titles
        with self.lock:
            engine = self.engine
            if check_model or engine is None:
                self.model_checked_at = time.monotonic()
                latest = (
                    FittedModel.objects.order_by("-id")
                    .values_list("id", flat=True)
                    .first()
                )
                if latest != self.model_id or engine is None:
                    behaviour = (
                        Behaviour.from_bytes(
                            bytes(FittedModel.objects.get(pk=latest).data)
                        )
                        if latest is not None
                        else Behaviour.empty()
                    )
                    if engine is None:
                        catalog = catalog_load()
                        engine = Engine(catalog, behaviour)
                        self.titles = dict(
                            zip(catalog.ids.tolist(), catalog.titles, strict=True)
                        )
                        self.catalog_seq = seq
                    else:
                        engine = engine.with_behaviour(behaviour)
                    self.model_id = latest
            if seq != self.catalog_seq:
                catalog = catalog_load()
                engine = engine.with_catalog(catalog)
                self.titles = dict(
                    zip(catalog.ids.tolist(), catalog.titles, strict=True)
                )
                self.catalog_seq = seq
            self.engine = engine
            return engine, self.titles

    def reset(self) -> None:
        """Forget the engine (tests swap databases under a live process)."""
        with self.lock:
            self.engine = None
            self.catalog_seq = -1
            self.model_id = None
            self.model_checked_at = float("-inf")


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
    behaviour = Behaviour.fit(interactions, now=time.time())
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
    engine, titles = live_engine.current()
    history = history_for_user(user_id=user_id)
    ranked = engine.recommend(history, k=settings.RECS_LIST_LENGTH, now=time.time())
    items: list[messages.RecommendedItem] = [
        {
            "id": rec.item_id,
            "title": titles.get(rec.item_id, ""),
            "score": rec.score,
            "reasons": rec.reasons,
        }
        for rec in ranked
    ]
    computed_ms = (time.perf_counter() - started) * 1000
    snapshot = _snapshot_store(user_id=user_id, items=items, computed_ms=computed_ms)
    if shown:
        impressions_record(snapshot=snapshot)
    metrics.RECOMPUTE_SECS.observe(computed_ms / 1000)
    return snapshot_message(snapshot)


def _snapshot_store(
    *, user_id: int, items: list[messages.RecommendedItem], computed_ms: float
) -> RecommendationSnapshot:
    """Store a snapshot with the user's next version and prune old ones."""
    for _ in range(10):
        latest = (
            RecommendationSnapshot.objects.filter(user_id=user_id)
            .order_by("-version")
            .values_list("version", flat=True)
            .first()
        ) or 0
        try:
            with transaction.atomic():
                snapshot = RecommendationSnapshot.objects.create(
                    user_id=user_id,
                    version=latest + 1,
                    items=items,
                    computed_ms=computed_ms,
                )
        except IntegrityError:
            continue  # another process stored this version first; take the next
        keep_from = snapshot.version - settings.RECS_SNAPSHOTS_KEPT_PER_USER
        if keep_from > 0 and snapshot.version % 10 == 0:
            RecommendationSnapshot.objects.filter(
                user_id=user_id, version__lte=keep_from
            ).delete()
        return snapshot
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
        ids = [entry["id"] for entry in snapshot.items]
        if Item.objects.filter(pk__in=ids, active=True).count() == len(set(ids)):
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
        await get_channel_layer().group_send(messages.user_group(user_id), envelope)
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
