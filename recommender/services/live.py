"""The per-process live state: the engine, cached histories, list versions.

Everything a server process keeps in memory between events lives in the one
:data:`live` object, with one lifetime and one :meth:`LiveProcess.reset`:

* the :class:`EngineCache` — one engine per catalog version, replaced
  atomically: a catalog change (any new change-log seq) rebuilds the content
  part, and a newer :class:`FittedModel` row (written by
  ``recompute_recommendations``) swaps in new item neighbours;
* the :class:`HistoryCache` of the users this process serves;
* the last snapshot version this process stored or saw per user;
* the id that tells this process's pushes from other processes'.
"""

import os
import threading
import time
import uuid
from dataclasses import dataclass

from django.conf import settings

from recommender.engine import Behaviour, Engine
from recommender.models import FittedModel
from recommender.services.catalog import catalog_load
from recommender.services.histories import HistoryCache
from sync.selectors import seq_latest


@dataclass(frozen=True)
class EngineState:
    """One consistent view: the engine and the catalog facts it was built from."""

    engine: Engine
    titles: dict[int, str]
    active_ids: frozenset[int]
    catalog_seq: int
    model_id: int | None


class EngineCache:
    """The process-wide engine, rebuilt when the catalog or fitted model changes.

    The catalog version is the change-log seq. Broadcast changes reach every
    socket of this process, and consumers report their seq here
    (:meth:`note_seq`), so a catalog edit is seen at once; the database is
    polled only every ``RECS_CATALOG_CHECK_SECS`` as a backstop for lost
    broadcasts and for processes without sockets.
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.state: EngineState | None = None
        self.seen_seq = 0
        self.seq_checked_at = float("-inf")
        self.model_checked_at = float("-inf")

    def note_seq(self, seq: int) -> None:
        """Record that change ``seq`` has been committed (called from consumers)."""
        if seq > self.seen_seq:
            self.seen_seq = seq

    def model_changed(self) -> None:
        """Look for a newer fitted model on the next :meth:`current` call."""
        self.model_checked_at = float("-inf")

    def _catalog_seq(self) -> int:
        now = time.monotonic()
        if now - self.seq_checked_at >= settings.RECS_CATALOG_CHECK_SECS:
            self.note_seq(seq_latest())
            self.seq_checked_at = now
        return self.seen_seq

    def current(self) -> EngineState:
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

    def reset(self) -> None:
        """Forget the engine and the seq it was built for."""
        with self.lock:
            self.state = None
            self.seen_seq = 0
            self.seq_checked_at = float("-inf")
            self.model_checked_at = float("-inf")


def _model_latest_id() -> int | None:
    return FittedModel.objects.order_by("-id").values_list("id", flat=True).first()


def _model_latest() -> tuple[int | None, Behaviour]:
    """Return the newest fitted model (an empty one before the first fit)."""
    record = FittedModel.objects.order_by("-id").first()
    if record is None:
        return None, Behaviour.empty()
    return record.pk, Behaviour.from_bytes(bytes(record.data))


def _state(engine: Engine, seq: int, model_id: int | None) -> EngineState:
    catalog = engine.catalog
    ids = catalog.ids.tolist()
    return EngineState(
        engine=engine,
        titles=dict(zip(ids, catalog.titles, strict=True)),
        active_ids=frozenset(catalog.ids[catalog.active].tolist()),
        catalog_seq=seq,
        model_id=model_id,
    )


class LiveProcess:
    """What one server process keeps in memory between events."""

    def __init__(self) -> None:
        self.process_id = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.engine = EngineCache()
        self.histories = HistoryCache()
        # user id -> last snapshot version this process stored or saw
        self.versions: dict[int, int] = {}

    def version_seen(self, user_id: int, version: int) -> None:
        """Record that the user's list reached ``version`` (never lowers it)."""
        if version > self.versions.get(user_id, 0):
            self.versions[user_id] = version

    def push_received(self, *, user_id: int, process: str | None) -> None:
        """Note a list pushed to one of the user's sockets by ``process``.

        A list computed elsewhere may come from events written there with
        old timestamps (a visitor merged on login), which the cache's "newer
        than" read would miss: the user's history is read in full next time.
        """
        if process != self.process_id:
            self.histories.forget(user_id)

    def reset(self) -> None:
        """Forget everything (tests swap databases under a live process)."""
        self.engine.reset()
        self.histories.clear()
        self.versions.clear()
        # Imported here so the merchandising services may use the live state.
        from recommender.services.ranking import merchandising_reset

        merchandising_reset()


live = LiveProcess()
