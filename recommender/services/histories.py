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
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np
from django.conf import settings

from recommender.selectors import EventRow, history_rows_since
from recommender.services.engine import History

# Events are stamped before their INSERT commits, so one committed a moment
# late by another process can carry a stamp a little older than the newest
# cached one. Rows this far back are read again and de-duplicated by id.
_OVERLAP_SECS = 5.0


@dataclass
class _Entry:
    rows: list[EventRow]  # oldest first, at most RECS_HISTORY_EVENTS
    loaded_at: float  # time.monotonic() of the last full read
    ids: set[int] = field(default_factory=set)


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
                if entry is None or now - entry.loaded_at > fresh_secs:
                    since[user_id] = None
                elif entry.rows:
                    newest = entry.rows[-1][4] - _OVERLAP_SECS
                    since[user_id] = datetime.fromtimestamp(newest, tz=UTC)
                else:
                    since[user_id] = None
        fetched = history_rows_since(since_by_user=since, limit=limit)
        out: dict[int, History] = {}
        with self._lock:
            for user_id in user_ids:
                rows = fetched[user_id]
                rows.reverse()  # oldest first
                entry = self._entries.get(user_id)
                if since[user_id] is None or entry is None:
                    entry = _Entry(rows=rows, loaded_at=now)
                    entry.ids = {row[0] for row in rows}
                else:
                    new = [row for row in rows if row[0] not in entry.ids]
                    if new:
                        new.sort(key=_row_order)
                        last = entry.rows[-1] if entry.rows else None
                        entry.rows.extend(new)
                        if last is not None and _row_order(new[0]) < _row_order(last):
                            entry.rows.sort(key=_row_order)  # one arrived late
                        entry.ids.update(row[0] for row in new)
                        if len(entry.rows) > limit:
                            for row in entry.rows[:-limit]:
                                entry.ids.discard(row[0])
                            del entry.rows[:-limit]
                self._entries[user_id] = entry
                self._entries.move_to_end(user_id)
                out[user_id] = _history(entry.rows)
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


def _row_order(row: EventRow) -> tuple[float, int]:
    """Return the history order of a row: by time, then by id."""
    return row[4], row[0]


def _history(rows: list[EventRow]) -> History:
    """Return the engine's view of cached rows (oldest first)."""
    n = len(rows)
    return History(
        item_ids=np.fromiter((r[1] for r in rows), dtype=np.int64, count=n),
        actions=[r[2] for r in rows],
        weights=np.fromiter((r[3] for r in rows), dtype=np.float32, count=n),
        timestamps=np.fromiter((r[4] for r in rows), dtype=np.float64, count=n),
    )


history_cache = HistoryCache()
