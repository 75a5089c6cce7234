"""The shared half of every score: what is popular and what is new, at a moment.

These signals are the same for every user at one moment, so they are computed
once per popularity bucket / hour and cached (a few catalog-sized vectors),
then copied per user: four catalog-sized passes per user become one copy.
"""

from __future__ import annotations

import math
import threading

import numpy as np
from numpy.typing import NDArray

from recommender.engine.behaviour import Behaviour
from recommender.engine.types import ScoreParams

__all__ = ["Trends"]

_SECS_PER_DAY = 86400.0
_SECS_PER_HOUR = 3600.0


class Trends:
    """Popularity over time and newness of one catalog under one behaviour model.

    Parameters
    ----------
    behaviour : Behaviour
        Its time-bucketed popularity table.
    b2c : ndarray of shape (n_seen,), int64
        Catalog row of each behaviour item, -1 when it left the catalog.
    created : ndarray of shape (n_items,), float64
        Creation time of each catalog row, epoch seconds (NaN: unknown).
    available : ndarray of shape (n_items,), bool
        Rows that may be recommended at all (active items).
    params : ScoreParams
        Half-lives of popularity and newness.
    """

    _CACHE_SIZE = 64

    def __init__(
        self,
        *,
        behaviour: Behaviour,
        b2c: NDArray[np.int64],
        created: NDArray[np.float64],
        available: NDArray[np.bool_],
        params: ScoreParams,
    ) -> None:
        b = behaviour
        self.params = params
        self.n_items = int(created.shape[0])
        self._bucket_origin = b.bucket_origin
        self._bucket_secs = b.bucket_secs
        cell_ok = b2c[b.pop_item] >= 0 if b.pop_item.size else np.empty(0, dtype=bool)
        self._pop_row = b2c[b.pop_item][cell_ok] if b.pop_item.size else b.pop_item
        self._pop_bucket = b.pop_bucket[cell_ok]
        self._pop_count = b.pop_count[cell_ok]
        self._bucket_end = b.bucket_origin + (
            self._pop_bucket.astype(np.float64) + 1.0
        ) * (b.bucket_secs)
        self._available = available
        self._created = created
        finite = created[np.isfinite(created)]
        self._created_max = float(finite.max()) if finite.size else float("-inf")
        self._pop_cache: dict[int, NDArray[np.float32]] = {}
        self._new_cache: dict[int, NDArray[np.float32]] = {}
        self._base_cache: dict[tuple, NDArray[np.float32]] = {}
        self._lock = threading.Lock()

    def with_params(self, params: ScoreParams) -> Trends:
        """Return the same trends under other half-lives (fresh caches)."""
        clone = object.__new__(Trends)
        clone.__dict__.update(self.__dict__)
        clone.params = params
        clone._pop_cache = {}
        clone._new_cache = {}
        clone._base_cache = {}
        clone._lock = threading.Lock()
        return clone

    def with_catalog(
        self, *, created: NDArray[np.float64], available: NDArray[np.bool_]
    ) -> Trends:
        """Return these trends over an edited catalog (same behaviour rows).

        Rows past the old end are new items: no popularity yet.

        Parameters
        ----------
        created : ndarray of shape (n_items,), float64
        available : ndarray of shape (n_items,), bool
        """
        clone = self.with_params(self.params)
        clone.n_items = int(created.shape[0])
        clone._available = available
        clone._created = created
        finite = created[np.isfinite(created)]
        clone._created_max = float(finite.max()) if finite.size else float("-inf")
        return clone

    def _remember(self, cache: dict, key: object, value: NDArray) -> None:
        value.flags.writeable = False
        with self._lock:
            if len(cache) >= self._CACHE_SIZE:
                cache.pop(next(iter(cache)))
            cache[key] = value

    def pop_edge(self, now: float) -> int:
        """Return the popularity bucket ``now`` falls in (the cache key)."""
        return math.floor((now - self._bucket_origin) / self._bucket_secs)

    @staticmethod
    def hour(now: float) -> int:
        """Return the hour ``now`` falls in (the new-arrival cache key)."""
        return math.floor(now / _SECS_PER_HOUR)

    def popularity(self, now: float) -> NDArray[np.float32]:
        """Return each item's time-decayed popularity at ``now``, max 1.

        Only time buckets that ended by ``now`` count, so the value never
        depends on events after ``now``.

        Parameters
        ----------
        now : float
            Epoch seconds.

        Returns
        -------
        ndarray of shape (n_items,), float32
        """
        # Round down to a bucket boundary so the result is cacheable.
        edge = self.pop_edge(now)
        cached = self._pop_cache.get(edge)
        if cached is not None:
            return cached
        edge_secs = self._bucket_origin + edge * self._bucket_secs
        past = self._bucket_end <= edge_secs
        half_life = self.params.popularity_half_life_days * _SECS_PER_DAY
        ends = self._bucket_end[past]
        # Measure ages from the newest past bucket, not from `now`: only the
        # ratios matter after the max-normalisation, and a model months older
        # than `now` would otherwise underflow to all zeros.
        age = (ends.max() if ends.size else edge_secs) - ends
        weight = self._pop_count[past] * np.exp2(-age / half_life)
        pop = np.bincount(self._pop_row[past], weights=weight, minlength=self.n_items)
        pop = pop.astype(np.float32)
        top = float(pop.max()) if pop.size else 0.0
        if top > 0:
            pop /= top
        self._remember(self._pop_cache, edge, pop)
        return pop

    def newness(self, now: float) -> NDArray[np.float32]:
        """Return each item's new-arrival bonus at ``now`` (1 = just created).

        Computed at hour granularity and cached; items created within the
        current hour (or later: those are barred elsewhere) get the full bonus.

        Returns
        -------
        ndarray of shape (n_items,), float32
            0 for unknown creation times.
        """
        hour = self.hour(now)
        cached = self._new_cache.get(hour)
        if cached is not None:
            return cached
        age_days = (hour * _SECS_PER_HOUR - self._created) / _SECS_PER_DAY
        with np.errstate(invalid="ignore", over="ignore"):
            bonus = np.exp2(-np.maximum(age_days, 0.0) / self.params.new_half_life_days)
        bonus[~np.isfinite(bonus)] = 0.0
        bonus = bonus.astype(np.float32)
        self._remember(self._new_cache, hour, bonus)
        return bonus

    def base(
        self, now: float, *, w_popularity: float, w_new: float
    ) -> NDArray[np.float32]:
        """Return a fresh copy of the shared part of a user's score at ``now``.

        Popularity and newness weighted, ``-inf`` for unavailable items and
        items created after ``now``. It changes only with the hour and the
        blend weights, so it is built once and copied per user.

        Returns
        -------
        ndarray of shape (n_items,), float32
        """
        future = self._created_max > now
        key = (self.pop_edge(now), self.hour(now), w_popularity, w_new)
        base = None if future else self._base_cache.get(key)
        if base is None:
            base = self.popularity(now) * np.float32(w_popularity)
            base += self.newness(now) * np.float32(w_new)
            base[~self._available] = -np.inf
            if future:
                base[self._created > now] = -np.inf
                return base
            self._remember(self._base_cache, key, base)
        return base.copy()
