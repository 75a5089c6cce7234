"""The per-process live state: the engine, cached histories, list versions.

Everything a server process keeps in memory between events lives in the one
:data:`live` object, with one lifetime and one :meth:`LiveProcess.reset`:

* the :class:`EngineCache` — one engine per catalog version, replaced
  atomically: a catalog change (any new change-log seq) is applied to the
  rows it touched, and a newer :class:`FittedModel` row (written by
  ``recompute_recommendations``) swaps in new item neighbours;
* the :class:`HistoryCache` of the users this process serves;
* the last snapshot version this process stored or saw per user;
* the id that tells this process's pushes from other processes'.
"""

import logging
import os
import threading
import time
import uuid
from collections.abc import Collection, Iterator
from dataclasses import dataclass, replace

import numpy as np
from django.conf import settings
from django.db import connection

from recommender.engine import Behaviour, Catalog, Engine
from recommender.models import FittedModel
from recommender.services.catalog import catalog_changes, catalog_load
from recommender.services.histories import HistoryCache
from sync.selectors import seq_latest

logger = logging.getLogger(__name__)


class ActiveIds(Collection[int]):
    """The ids of a catalog's active items, read in place.

    A view, not a set: a million-item catalog would cost ~50 MB and half a
    second per version as a ``frozenset``; a binary search over the sorted
    ids costs a microsecond per lookup.
    """

    def __init__(self, catalog: Catalog) -> None:
        self._ids = catalog.ids
        self._active = catalog.active

    def __contains__(self, item_id: object) -> bool:
        if not isinstance(item_id, int | np.integer) or isinstance(item_id, bool):
            return False
        if not -(2**63) <= item_id < 2**63:
            return False
        row = int(np.searchsorted(self._ids, item_id))
        return (
            row < self._ids.shape[0]
            and int(self._ids[row]) == item_id
            and bool(self._active[row])
        )

    def __iter__(self) -> Iterator[int]:
        return iter(self._ids[self._active].tolist())

    def __len__(self) -> int:
        return int(np.count_nonzero(self._active))


@dataclass(frozen=True)
class EngineState:
    """One consistent view: the engine and the catalog version it reflects."""

    engine: Engine
    catalog_seq: int
    model_id: int | None

    @property
    def active_ids(self) -> ActiveIds:
        """The ids of the items that may be recommended (and clicked)."""
        return ActiveIds(self.engine.catalog)

    def title(self, item_id: int) -> str:
        """Return the title of ``item_id`` ("" when the catalog has no such item)."""
        ids = self.engine.ids
        row = int(np.searchsorted(ids, item_id))
        if row < ids.shape[0] and int(ids[row]) == item_id:
            return self.engine.catalog.titles[row]
        return ""


class EngineCache:
    """The process-wide engine, kept at the latest catalog and fitted model.

    The catalog version is the change-log seq. Broadcast changes reach every
    socket of this process, and consumers report their seq here
    (:meth:`note_seq`), so a catalog edit is seen at once; the database is
    polled only every ``RECS_CATALOG_CHECK_SECS`` as a backstop for lost
    broadcasts and for processes without sockets.

    A new seq is applied to the engine row by row: the change log names the
    items changed since the engine's version, those rows are read again and
    written over the engine's (:meth:`Engine.with_changes`), milliseconds at
    any catalog size. A full build (read every item, fit the feature space
    again) happens when edits cannot be applied in place or have piled up
    past a twentieth of the catalog; up to ``RECS_CATALOG_INLINE_BUILD_MAX``
    items it runs on the spot, beyond in a background thread while the
    current engine keeps serving.
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.state: EngineState | None = None
        self.seen_seq = 0
        self.seq_checked_at = float("-inf")
        self.model_checked_at = float("-inf")
        # Bumped by reset(): a background build from before it is dropped.
        self.generation = 0
        self.builder: threading.Thread | None = None
        # True while the engine waits for a background build to see the
        # latest catalog (edits that could not be applied in place).
        self.stale = False
        self.build_failed_at = float("-inf")

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
        if (
            state is not None
            and (state.catalog_seq == seq or self.stale)
            and not check_model
        ):
            return state
        with self.lock:
            state = self.state
            if state is None:
                model_id, behaviour = _model_latest()
                state = EngineState(Engine(catalog_load(), behaviour), seq, model_id)
            else:
                if state.catalog_seq != seq and not self.stale:
                    state = self._catalog_moved(state, seq)
                if check_model:
                    latest = _model_latest_id()
                    if latest != state.model_id:
                        model_id, behaviour = _model_latest()
                        state = replace(
                            state,
                            engine=state.engine.with_behaviour(behaviour),
                            model_id=model_id,
                        )
            if check_model or self.state is None:
                self.model_checked_at = time.monotonic()
            self.state = state
            return state

    def _catalog_moved(self, state: EngineState, seq: int) -> EngineState:
        """Return ``state`` brought to catalog version ``seq`` (called under lock)."""
        changes = catalog_changes(after=state.catalog_seq, until=seq)
        engine = None if changes is None else state.engine.with_changes(*changes)
        if engine is not None and engine.rows_patched <= _patched_max(engine.n_items):
            return replace(state, engine=engine, catalog_seq=seq)
        if state.engine.n_items <= settings.RECS_CATALOG_INLINE_BUILD_MAX:
            engine = state.engine.with_catalog(catalog_load())
            return replace(state, engine=engine, catalog_seq=seq)
        building = self._build_in_background(state)
        if engine is not None:
            return replace(state, engine=engine, catalog_seq=seq)
        # Serve this engine until the build lands (without asking the change
        # log on every call); after a failed build, ask again next time.
        self.stale = building
        return state

    def _build_in_background(self, state: EngineState) -> bool:
        """Start a full build from the database; return whether one is running.

        None starts within ``_BUILD_RETRY_SECS`` of a failed one.
        """
        if self.builder is not None and self.builder.is_alive():
            return True
        if time.monotonic() - self.build_failed_at < _BUILD_RETRY_SECS:
            return False
        generation = self.generation
        self.builder = threading.Thread(
            target=self._build,
            args=(state.engine, generation),
            name="recsite-catalog-build",
            daemon=True,
        )
        self.builder.start()
        return True

    def _build(self, engine: Engine, generation: int) -> None:
        started = time.perf_counter()
        try:
            seq = seq_latest()
            built = engine.with_catalog(catalog_load())
            with self.lock:
                state = self.state
                if state is None or self.generation != generation:
                    return
                if built.behaviour is not state.engine.behaviour:
                    built = built.with_behaviour(state.engine.behaviour)
                # Edits after ``seq`` are applied to it by the next current().
                self.state = replace(state, engine=built, catalog_seq=seq)
                self.stale = False
            logger.info(
                "catalog engine built in the background: %d items in %.1f s",
                built.n_items,
                time.perf_counter() - started,
            )
        except Exception:
            logger.exception("background catalog build failed")
            with self.lock:
                self.build_failed_at = time.monotonic()
                self.stale = False
        finally:
            connection.close()

    def reset(self) -> None:
        """Forget the engine and the seq it was built for."""
        with self.lock:
            self.state = None
            self.generation += 1
            self.stale = False
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


# A failed background build (the database away) is tried again after this.
_BUILD_RETRY_SECS = 10.0


def _patched_max(n_items: int) -> int:
    """Rows that may be edited in place before the feature space is fitted again."""
    return max(1_000, n_items // 20)


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
