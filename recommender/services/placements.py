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

from recommender.engine.actions import ACTION_WEIGHTS
from recommender.engine.indexing import lookup
from recommender.engine.placements import (
    basket_rows,
    complement_scores,
    complements_fit,
    similar_scores,
    strongest_source,
    trending_scores,
)
from recommender.engine.reasons import SIMILAR_MIN_COSINE
from recommender.engine.rules import CompiledRules, promoted_reasons
from recommender.engine.scoring import Engine
from recommender.engine.types import History
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


# --------------------------------------------------------------------------
# Scoring the lists of placements besides "for you"
# --------------------------------------------------------------------------
class UnknownPlacementItem(LookupError):
    """The item a placement is about is not in the catalog (or not active)."""


@dataclass(frozen=True)
class PlacementList:
    """One scored list of a placement, ready for the wire.

    Attributes
    ----------
    placement : str
    item : int or None
        The item the list is about (``similar``, ``complements`` of an item).
    items : list of dict
        ``{"id", "title", "score", "reasons", "because"}``, best first.
    computed_ms : float
    variant_id : int or None
        The experiment variant whose rules shaped it.
    """

    placement: str
    item: int | None
    items: list[dict]
    computed_ms: float
    variant_id: int | None


#: Weight of "popular right now" under every placement's own score: it only
#: orders items the placement has no opinion about, so lists stay full.
_FILLER_WEIGHT = 1e-4


def _shopper_text(count: int) -> str:
    return f"Rising: {count} shopper{'s' if count != 1 else ''} in the last hour"


def placement_score(
    *,
    engine: Engine,
    placement: str,
    item: int | None,
    history: History | None,
    rules: CompiledRules,
    variant_id: int | None,
    k: int,
    now: float,
    data: PlacementData | None = None,
) -> PlacementList:
    """Return the list of ``placement`` (``similar``, ``complements``, ``trending``).

    Parameters
    ----------
    engine : Engine
        The live engine (catalog rows, neighbours, features, popularity).
    placement : str
    item : int or None
        Required for ``similar``; for ``complements`` replaces the basket.
    history : History or None
        The user's events (their basket for ``complements``).
    rules : CompiledRules
        The rules of this placement and variant over ``engine``'s rows.
    variant_id : int or None
    k : int
    now : float
        Epoch seconds.
    data : PlacementData, optional
        Trending counts and complements model (the process's by default).

    Raises
    ------
    UnknownPlacementItem
        ``item`` is not an active catalog item, or ``similar`` has none.
    """
    started = time.perf_counter()
    data = data or placement_data
    catalog = engine.catalog
    anchor = -1
    if item is not None:
        anchor = int(lookup(engine.ids, np.array([item], dtype=np.int64))[0])
        if anchor < 0 or not catalog.active[anchor]:
            raise UnknownPlacementItem(f"item {item} is not in the catalog")
    popularity = engine.popularity(now)
    sources = np.empty(0, dtype=np.int64)
    links = None
    if placement == "similar":
        if anchor < 0:
            raise UnknownPlacementItem("similar needs an item")
        scores, behaviour, content = similar_scores(
            anchor, neighbours=engine.neighbours, features=engine.features
        )
    elif placement == "complements":
        if anchor >= 0:
            sources = np.array([anchor], dtype=np.int64)
        elif history is not None and len(history.item_ids):
            sources = basket_rows(
                lookup(engine.ids, np.asarray(history.item_ids, dtype=np.int64)),
                np.asarray(history.weights, dtype=np.float32),
                min_weight=ACTION_WEIGHTS["cart"],
            )
        scores, links = complement_scores(
            sources,
            complements=data.complements(ids=engine.ids),
            neighbours=engine.neighbours,
        )
    elif placement == "trending":
        counts = data.trending(ids=engine.ids)
        scores = trending_scores(
            counts.recent, counts.past, past_hours=counts.past_hours
        )
    else:
        raise ValueError(f"placement {placement!r} is not scored here")
    scores = scores + popularity * np.float32(_FILLER_WEIGHT)
    scores[~catalog.active] = -np.inf
    scores[catalog.created > now] = -np.inf
    selection = rules.select(rules.apply(scores), k)
    best = selection.rows
    if links is not None:
        from_complements = strongest_source(best, links["complements"])
        from_fallback = strongest_source(best, links["fallback"])
    items: list[dict] = []
    titles = catalog.titles
    for col, row in enumerate(best.tolist()):
        cat_index = int(catalog.category[row])
        category = catalog.category_names[cat_index] if cat_index >= 0 else ""
        filler = (
            (f"Popular in {category}" if category else "Popular right now")
            if popularity[row] > 0
            else (f"More in {category}" if category else "New arrival")
        )
        because: list[int] = []
        if placement == "similar":
            if behaviour[row] > 0 and behaviour[row] >= content[row]:
                reasons = [f"Often chosen with {titles[anchor]}"]
                because = [int(engine.ids[anchor])]
            elif content[row] >= SIMILAR_MIN_COSINE:
                reasons = [f"Similar to {titles[anchor]}"]
                because = [int(engine.ids[anchor])]
            else:
                reasons = [filler]
        elif placement == "complements":
            src = int(from_complements[col])
            verb = "Goes well with"
            if src < 0:
                src, verb = int(from_fallback[col]), "Often chosen with"
            if src >= 0:
                reasons = [f"{verb} {titles[int(sources[src])]}"]
                because = [int(engine.ids[int(sources[src])])]
            else:
                reasons = [filler]
        else:
            recent = int(counts.recent[row])
            reasons = [_shopper_text(recent)] if recent > 0 else [filler]
        if selection.promoted[col]:
            reasons = promoted_reasons(reasons)
        items.append(
            {
                "id": int(engine.ids[row]),
                "title": titles[row],
                "score": float(scores[row]) if np.isfinite(scores[row]) else 0.0,
                "reasons": reasons,
                "because": because,
            }
        )
    return PlacementList(
        placement=placement,
        item=item,
        items=items,
        computed_ms=(time.perf_counter() - started) * 1000,
        variant_id=variant_id,
    )
