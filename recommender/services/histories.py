"""Users' recent histories, kept in process memory between their events.

Scoring a user needs their latest ``RECS_HISTORY_EVENTS`` events. Reading
200 rows per event costs more than the scoring itself, so each process keeps
the histories of the users it serves and reads only what is new: one query
per batch of users returns the events stored after each cached user's newest
one (by any process), and full histories for users not cached yet.

Staleness is bounded: an event stored with an old timestamp (a visitor's
history merged into an account on login) falls outside the "newer than"
window, so a cached history is read again in full after
``RECS_HISTORY_CACHE_SECS``, and at once when the user connects or another
process pushes them a list.
"""

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
from django.conf import settings
from numpy.typing import NDArray

from recommender.engine import History
from recommender.selectors import EventRow, history_rows_since

# Events are stamped before their INSERT commits, so one committed a moment
# late by another process can carry a stamp a little older than the newest
# cached one. Rows this far back are read again and de-duplicated by id.
_OVERLAP_SECS = 5.0


@dataclass(frozen=True)
class _Entry:
    """One user's cached events as arrays, oldest first.

    Arrays rather than a tuple per event: a few objects per user instead of
    five per event, so the cache neither costs ~250 bytes per event nor makes
    the garbage collector's full passes (which stop the event loop) longer.
    """

    history: History
    ids: NDArray[np.int64]  # shape (n_events,): event ids, parallel to history
    loaded_at: float  # time.monotonic() of the last full read


class HistoryCache:
    """A bounded, thread-safe map of user id -> recent events, LRU evicted."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: OrderedDict[int, _Entry] = OrderedDict()

    def histories(self, user_ids: list[int]) -> dict[int, History]:
        """Return each user's latest events, oldest first, reading only what is new.

        One database query covers every user in ``user_ids``.
        """
        limit = settings.RECS_HISTORY_EVENTS
        fresh_secs = settings.RECS_HISTORY_CACHE_SECS
        now = time.monotonic()
        since: dict[int, datetime | None] = {}
        with self._lock:
            for user_id in user_ids:
                entry = self._entries.get(user_id)
                if (
                    entry is None
                    or now - entry.loaded_at > fresh_secs
                    or not entry.ids.size
                ):
                    since[user_id] = None
                else:
                    newest = float(entry.history.timestamps[-1]) - _OVERLAP_SECS
                    since[user_id] = datetime.fromtimestamp(newest, tz=UTC)
        fetched = history_rows_since(since_by_user=since, limit=limit)
        out: dict[int, History] = {}
        with self._lock:
            for user_id in user_ids:
                rows = fetched[user_id][::-1]  # oldest first
                entry = self._entries.get(user_id)
                if since[user_id] is None or entry is None:
                    entry = _entry(rows, loaded_at=now)
                else:
                    entry = _merged(entry, rows, limit=limit)
                self._entries[user_id] = entry
                self._entries.move_to_end(user_id)
                out[user_id] = entry.history
            while len(self._entries) > settings.RECS_HISTORY_CACHE_USERS:
                self._entries.popitem(last=False)
        return out

    def forget(self, user_id: int) -> None:
        """Drop a user's cached history; the next read is a full one."""
        with self._lock:
            self._entries.pop(user_id, None)

    def clear(self) -> None:
        """Drop every cached history (tests swap databases under a process)."""
        with self._lock:
            self._entries.clear()


def _entry(rows: list[EventRow], *, loaded_at: float) -> _Entry:
    """Return the cache entry of rows read from the database (oldest first)."""
    n = len(rows)
    history = History(
        item_ids=np.fromiter((r[1] for r in rows), dtype=np.int64, count=n),
        actions=[r[2] for r in rows],
        weights=np.fromiter((r[3] for r in rows), dtype=np.float32, count=n),
        timestamps=np.fromiter((r[4] for r in rows), dtype=np.float64, count=n),
    )
    ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=n)
    return _Entry(history=history, ids=ids, loaded_at=loaded_at)


def _merged(entry: _Entry, rows: list[EventRow], *, limit: int) -> _Entry:
    """Return ``entry`` with the rows it lacks, in time order, trimmed to ``limit``."""
    known = set(entry.ids.tolist())  # at most RECS_HISTORY_EVENTS ids
    new = [row for row in rows if row[0] not in known]
    if not new:
        return entry
    add = _entry(new, loaded_at=entry.loaded_at)
    old, fresh = entry.history, add.history
    ids = np.concatenate([entry.ids, add.ids])
    stamps = np.concatenate([old.timestamps, fresh.timestamps])
    keep = np.lexsort((ids, stamps))[-limit:]  # by time, then id; newest kept
    actions = old.actions + fresh.actions
    history = History(
        item_ids=np.concatenate([old.item_ids, fresh.item_ids])[keep],
        actions=[actions[i] for i in keep.tolist()],
        weights=np.concatenate([old.weights, fresh.weights])[keep],
        timestamps=stamps[keep],
    )
    return _Entry(history=history, ids=ids[keep], loaded_at=entry.loaded_at)
