"""The data behind the placements besides "for you", cached per process.

* trending: shoppers per item in the last hour and in the day before it, one
  grouped query, refreshed at most every ``TRENDING_REFRESH_SECS``;
* complements: a co-occurrence model of everyone's cart and purchase events
  (:func:`~recommender.engine.placements.complements_fit`), refitted at most
  every ``COMPLEMENTS_REFRESH_SECS`` or when the catalog changes.

Both are shared by every user of the process; scoring one user's list then
costs a sparse row gather and a top-K.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import scipy.sparse as sp
from django.db.models import Count, Q
from django.utils import timezone
from numpy.typing import NDArray

from recommender.engine.placements import complements_fit
from recommender.models import Action, BrowsingEvent

#: The day before the last hour is the baseline a rise is measured against.
TRENDING_PAST_HOURS = 24
#: Trending changes with everyone's events; a minute-old ranking is fresh
#: enough and keeps the grouped query off the per-event path.
TRENDING_REFRESH_SECS = 30.0
#: Cart and purchase events from this far back build the complements model.
COMPLEMENTS_HISTORY_DAYS = 180
COMPLEMENTS_REFRESH_SECS = 300.0
#: Neighbours kept per item in the complements model.
COMPLEMENTS_KEEP = 50
#: Actions that put an item in the basket.
BASKET_ACTIONS = (Action.CART, Action.PURCHASE)


def _rows_of(ids: NDArray[np.int64], wanted: NDArray[np.int64]) -> NDArray[np.int64]:
    """Return the row of each wanted id in ascending ``ids``, -1 when absent."""
    if not ids.size:
        return np.full(wanted.shape, -1, dtype=np.int64)
    slot = np.minimum(np.searchsorted(ids, wanted), ids.size - 1)
    return np.where(ids[slot] == wanted, slot, -1).astype(np.int64)


@dataclass(frozen=True)
class TrendingCounts:
    """Shoppers per catalog row around one moment.

    Attributes
    ----------
    recent : ndarray of shape (n_items,), float32
        Distinct users with any event on the item in the last hour.
    past : ndarray of shape (n_items,), float32
        Distinct users in the ``past_hours`` before that.
    past_hours : float
    at : datetime
    """

    recent: NDArray[np.float32]
    past: NDArray[np.float32]
    past_hours: float
    at: datetime


def trending_counts(*, ids: NDArray[np.int64], now: datetime) -> TrendingCounts:
    """Return shoppers per item in the last hour and the day before it.

    Parameters
    ----------
    ids : ndarray of shape (n_items,), int64, ascending
        The catalog rows' item ids.
    now : datetime
    """
    hour_ago = now - timedelta(hours=1)
    start = hour_ago - timedelta(hours=TRENDING_PAST_HOURS)
    rows = list(
        BrowsingEvent.objects.filter(created__gte=start, created__lt=now)
        .order_by()
        .values("item_id")
        .annotate(
            recent=Count("user_id", distinct=True, filter=Q(created__gte=hour_ago)),
            past=Count("user_id", distinct=True, filter=Q(created__lt=hour_ago)),
        )
        .values_list("item_id", "recent", "past")
    )
    n = ids.shape[0]
    recent = np.zeros(n, dtype=np.float32)
    past = np.zeros(n, dtype=np.float32)
    if rows:
        table = np.array(rows, dtype=np.int64)
        where = _rows_of(ids, table[:, 0])
        ok = where >= 0
        recent[where[ok]] = table[ok, 1]
        past[where[ok]] = table[ok, 2]
    return TrendingCounts(recent, past, float(TRENDING_PAST_HOURS), now)


def complements_load(*, ids: NDArray[np.int64], now: datetime) -> sp.csr_matrix:
    """Return the complements model over the catalog rows ``ids``.

    Returns
    -------
    scipy.sparse.csr_matrix of shape (n_items, n_items), float32
    """
    since = now - timedelta(days=COMPLEMENTS_HISTORY_DAYS)
    pairs = np.array(
        list(
            BrowsingEvent.objects.filter(action__in=BASKET_ACTIONS, created__gte=since)
            .order_by()
            .values_list("user_id", "item_id")
        ),
        dtype=np.int64,
    ).reshape(-1, 2)
    return complements_fit(
        pairs[:, 0], _rows_of(ids, pairs[:, 1]), ids.shape[0], keep=COMPLEMENTS_KEEP
    )


class PlacementData:
    """The process's trending counts and complements model, refreshed lazily.

    Keyed by the catalog's id array (a new catalog version is a new array),
    so a catalog edit rebuilds both on the next request. One object with one
    lifetime; tests call :meth:`reset`.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        """Forget the cached counts and model."""
        with self._lock:
            self._trending: tuple[object, float, TrendingCounts] | None = None
            self._complements: tuple[object, float, sp.csr_matrix] | None = None

    def trending(self, *, ids: NDArray[np.int64]) -> TrendingCounts:
        """Return trending counts for ``ids``, at most ``TRENDING_REFRESH_SECS`` old."""
        cached = self._trending
        now = time.monotonic()
        if (
            cached is not None
            and cached[0] is ids
            and now - cached[1] < TRENDING_REFRESH_SECS
        ):
            return cached[2]
        counts = trending_counts(ids=ids, now=timezone.now())
        with self._lock:
            self._trending = (ids, now, counts)
        return counts

    def complements(self, *, ids: NDArray[np.int64]) -> sp.csr_matrix:
        """Return the complements model for ``ids``, refitted when stale."""
        cached = self._complements
        now = time.monotonic()
        if (
            cached is not None
            and cached[0] is ids
            and now - cached[1] < COMPLEMENTS_REFRESH_SECS
        ):
            return cached[2]
        model = complements_load(ids=ids, now=timezone.now())
        with self._lock:
            self._complements = (ids, now, model)
        return model

    def expire_trending(self) -> None:
        """Make the next :meth:`trending` call count again."""
        with self._lock:
            self._trending = None


#: The process-wide instance.
placement_data = PlacementData()
