"""Live scoring: one user's top-K from their history and the fitted model.

:class:`Engine` holds what depends on the catalog (the item feature matrix,
the id <-> row maps, the behaviour model re-indexed into catalog rows) and
scores a user from their recent :class:`History` alone, so a new event
changes their list at once with no refit. The score is the blend described
in :mod:`recommender.engine.signals`: behavioural neighbours of recent items
(recent and stronger events weigh more), content similarity to the same
profile, popularity at ``now`` and a small bonus for new items. Items the
behaviour model has never seen still get content, recency and popularity
scores, so new catalog entries are recommendable from the first minute.

The socket, the HTTP API, ``recompute_recommendations`` and ``evaluate``
(static and replay) all score through :meth:`Engine.recommend_many` or
:meth:`Engine.recommend`: there is no second model.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from recommender.engine.batch import chunk_blend, chunk_rank
from recommender.engine.behaviour import Behaviour
from recommender.engine.catalog_edits import catalog_patched
from recommender.engine.features import FeatureSpace, FeatureWeights
from recommender.engine.indexing import (
    catalog_take,
    csr_rows_replace,
    gather_rows,
    lookup,
    sorted_catalog,
)
from recommender.engine.rules import CompiledRules
from recommender.engine.signals import ChunkSignals
from recommender.engine.similarity import EPSILON
from recommender.engine.trends import Trends
from recommender.engine.types import Catalog, History, Recommendation, ScoreParams

__all__ = ["Engine"]


# Users scored together hold a few (users x items) dense arrays: at most this
# many cells per chunk. Larger chunks stop paying: at 10k items, chunks of ~30
# users scored fastest (~0.4 ms per user, against ~0.55 ms one by one); bigger
# arrays fall out of the CPU caches.
_SCORE_BATCH_CELLS = 300_000


def _check(history: History, k: int) -> None:
    if k < 0:
        raise ValueError(f"k must be non-negative, got {k}")
    if len(history.actions) != len(history.item_ids):
        raise ValueError("History.actions and History.item_ids differ in length")


class Engine:
    """Score one user's candidates from their history and the fitted model.

    Immutable: build a new one with :meth:`with_catalog`,
    :meth:`with_changes` or :meth:`with_behaviour` and swap the reference.
    Per-process caches (the popularity vector at a given hour) are filled
    lazily under a lock.

    Parameters
    ----------
    catalog : Catalog
    behaviour : Behaviour
    params : ScoreParams, optional
    feature_weights : FeatureWeights, optional
    """

    def __init__(
        self,
        catalog: Catalog,
        behaviour: Behaviour,
        *,
        params: ScoreParams | None = None,
        feature_weights: FeatureWeights | None = None,
        features: tuple[FeatureSpace, sp.csr_matrix] | None = None,
    ) -> None:
        self.params = params or ScoreParams()
        self.feature_weights = feature_weights or FeatureWeights()
        self.catalog = sorted_catalog(catalog)
        self.behaviour = behaviour
        cat = self.catalog
        self.ids: NDArray[np.int64] = cat.ids
        self.n_items = int(cat.ids.shape[0])
        self.feature_space, self.features = (
            features
            if features is not None
            else FeatureSpace.fit_encode(cat, weights=self.feature_weights)
        )
        # Rows edited in place since the feature space was fitted.
        self.rows_patched = 0
        # The catalog this one was edited from and the rows edited or added
        # (None after a full build): lets views of the catalog be patched too.
        self.edited_from: tuple[Catalog, NDArray[np.int64]] | None = None
        self._bind_behaviour()

    def _bind_behaviour(self) -> None:
        """Re-index the behaviour model into catalog rows."""
        b = self.behaviour
        # behaviour index -> catalog row (-1: the item left the catalog)
        b2c = lookup(self.ids, b.item_ids)
        self._b2c = b2c
        coo = b.neighbours.tocoo()
        src = b2c[coo.row]
        dst = b2c[coo.col]
        ok = (src >= 0) & (dst >= 0)
        self.neighbours = sp.csr_matrix(
            (coo.data[ok], (src[ok], dst[ok])),
            shape=(self.n_items, self.n_items),
            dtype=np.float32,
        )
        counts = np.zeros(self.n_items, dtype=np.float32)
        present = b2c >= 0
        counts[b2c[present]] = b.counts[present]
        self.counts = counts
        self.trends = Trends(
            behaviour=b,
            b2c=b2c,
            created=self.catalog.created,
            available=self.catalog.active.copy(),
            params=self.params,
        )

    def with_catalog(self, catalog: Catalog) -> Engine:
        """Return an engine for a new catalog version, keeping the behaviour."""
        return Engine(
            catalog,
            self.behaviour,
            params=self.params,
            feature_weights=self.feature_weights,
        )

    def with_behaviour(self, behaviour: Behaviour) -> Engine:
        """Return an engine with a newly fitted behaviour, keeping the catalog."""
        engine = Engine(
            self.catalog,
            behaviour,
            params=self.params,
            feature_weights=self.feature_weights,
            features=(self.feature_space, self.features),
        )
        engine.rows_patched = self.rows_patched
        engine.edited_from = self.edited_from
        return engine

    def with_changes(
        self, changed: Catalog, removed: NDArray[np.int64]
    ) -> Engine | None:
        """Return an engine with catalog edits applied to their rows only.

        Edited and new items get feature rows encoded in this engine's
        feature space; deleted items become inactive rows; everything else
        (the behaviour model, the other rows) is shared. Costs a copy of the
        catalog's columns, not a rebuild: milliseconds at a million items.

        Parameters
        ----------
        changed : Catalog
            The current state of every edited or new item; its
            ``category_names`` is the whole current category list.
        removed : ndarray of shape (n_removed,), int64
            Ids of deleted items.

        Returns
        -------
        Engine or None
            None when the edits cannot be applied in place (see
            :func:`~recommender.engine.catalog_edits.catalog_patched`): build
            a new engine with :meth:`with_catalog`.
        """
        patch = catalog_patched(self.catalog, changed, removed)
        if patch is None:
            return None
        cat = patch.catalog
        clone = object.__new__(Engine)
        clone.__dict__.update(self.__dict__)
        clone.catalog = cat
        clone.ids = cat.ids
        clone.n_items = int(cat.ids.shape[0])
        clone.rows_patched = self.rows_patched + int(patch.rows.shape[0])
        clone.edited_from = (self.catalog, patch.rows)
        clone.features = csr_rows_replace(
            self.features,
            patch.rows,
            self.feature_space.encode(catalog_take(cat, patch.rows)),
            clone.n_items,
        )
        added = cat.ids[patch.n_before :]
        if added.size and np.isin(added, self.behaviour.item_ids).any():
            # The fitted model knows an item this catalog had not seen yet.
            clone._bind_behaviour()
            return clone
        if added.size:
            n = clone.n_items
            clone.neighbours = sp.csr_matrix(
                (
                    self.neighbours.data,
                    self.neighbours.indices,
                    np.concatenate(
                        [
                            self.neighbours.indptr,
                            np.full(added.size, self.neighbours.indptr[-1]),
                        ]
                    ),
                ),
                shape=(n, n),
            )
            clone.counts = np.concatenate(
                [self.counts, np.zeros(added.size, dtype=np.float32)]
            )
        clone.trends = self.trends.with_catalog(
            created=cat.created, available=cat.active.copy()
        )
        return clone

    def with_params(self, params: ScoreParams) -> Engine:
        """Return an engine that blends with ``params`` (shares everything else)."""
        clone = object.__new__(Engine)
        clone.__dict__.update(self.__dict__)
        clone.params = params
        clone.trends = self.trends.with_params(params)
        return clone

    # -- signals ------------------------------------------------------------
    def popularity(self, now: float) -> NDArray[np.float32]:
        """Return each item's time-decayed popularity at ``now``, max 1.

        See :meth:`Trends.popularity`; shape (n_items,), float32.
        """
        return self.trends.popularity(now)

    def newness(self, now: float) -> NDArray[np.float32]:
        """Return each item's new-arrival bonus at ``now`` (1 = just created).

        See :meth:`Trends.newness`; shape (n_items,), float32.
        """
        return self.trends.newness(now)

    # -- scoring ------------------------------------------------------------
    def _profiles(
        self, histories: list[History]
    ) -> tuple[
        NDArray[np.int64],
        NDArray[np.float32],
        NDArray[np.int64],
        list[NDArray[np.int64]],
    ]:
        """Return the users' distinct items, their profile weights and event rows.

        All users at once: one id lookup, one decay and one grouping for the
        whole chunk, each user's items in ascending row order.

        Returns
        -------
        rows : ndarray of shape (n_rows,), int64
            Catalog rows of each user's distinct history items, user by user.
        weights : ndarray of shape (n_rows,), float32
            Sum over the item's events of action weight x recency decay.
        sizes : ndarray of shape (n_users,), int64
            How many of ``rows`` belong to each user.
        event_rows : list of ndarray of shape (n_events,), int64
            Per user, the catalog row of every event, -1 when the item left
            the catalog.
        """
        p = self.params
        n = self.n_items
        counts = np.array([len(h.item_ids) for h in histories], dtype=np.int64)
        ends = np.cumsum(counts)
        if not ends.size or not ends[-1]:
            empty = np.empty(0, dtype=np.int64)
            return (
                empty,
                np.empty(0, dtype=np.float32),
                np.zeros(len(histories), dtype=np.int64),
                [empty for _ in histories],
            )
        ids = np.concatenate(
            [np.asarray(h.item_ids, dtype=np.int64) for h in histories]
        )
        event_rows = lookup(self.ids, ids)
        strength = np.maximum(
            np.concatenate(
                [np.asarray(h.weights, dtype=np.float32) for h in histories]
            ),
            EPSILON,
        )
        starts = ends - counts
        owner = np.repeat(np.arange(len(histories), dtype=np.int64), counts)
        # Position from the newest event, not wall-clock age: sessions rate or
        # browse many items within seconds, and the order is what is reliable.
        back = (ends[owner] - 1 - np.arange(ends[-1])).astype(np.float32)
        decay = np.exp2(-back / p.history_half_life_events)
        w = decay * strength**p.action_power
        # What the user did last weighs most: a view right after a cart must
        # still lead the next list, or it would look stuck on the older item.
        some = np.flatnonzero(counts)
        w[ends[some] - 1] = np.maximum.reduceat(w, starts[some])
        ok = event_rows >= 0
        keys, inverse = np.unique(owner[ok] * n + event_rows[ok], return_inverse=True)
        weights = np.bincount(inverse, weights=w[ok], minlength=keys.shape[0])
        sizes = np.bincount(keys // n, minlength=len(histories))
        per_user = np.split(event_rows, ends[:-1])
        return keys % n, weights.astype(np.float32), sizes, per_user

    def _chunk_signals(
        self,
        rows_all: NDArray[np.int64],
        weights_all: NDArray[np.float32],
        sizes: NDArray[np.int64],
        nows: list[float],
    ) -> ChunkSignals:
        """Return the signals of a chunk of users, computed together.

        Every user's neighbour links and profile features are gathered at
        once, and the content scores of all of them come from one sparse x
        dense product: per-call overhead is paid once per chunk of users, and
        the bulk work runs in numpy without the GIL.

        Parameters
        ----------
        rows_all, weights_all, sizes
            The users' profiles (see :meth:`_profiles`).
        nows : list of float
            Per user, the moment of scoring, epoch seconds.
        """
        n = self.n_items
        n_features = self.features.shape[1]
        # Shared signals are cached per bucket and hour: users scored at one
        # moment (the live path) share them; a replay's users each have theirs.
        shared = [(self.popularity(now), self.newness(now)) for now in nows]
        users = np.flatnonzero(sizes)
        if not users.size:
            return ChunkSignals.cold(shared)
        owner = np.repeat(np.arange(users.shape[0], dtype=np.int64), sizes[users])
        first_row = np.concatenate([[0], np.cumsum(sizes[users])])
        pos, cols, vals = gather_rows(self.neighbours, rows_all)
        contrib = vals * weights_all[pos]
        behaviour = (
            np.bincount(
                owner[pos] * n + cols, weights=contrib, minlength=users.shape[0] * n
            )
            .astype(np.float32)
            .reshape(users.shape[0], n)
        )
        top = behaviour.max(axis=1)
        scaled = top > 0
        behaviour[scaled] /= top[scaled, np.newaxis]
        fpos, fcols, fvals = gather_rows(self.features, rows_all)
        profile = (
            np.bincount(
                owner[fpos] * n_features + fcols,
                weights=fvals * weights_all[fpos],
                minlength=users.shape[0] * n_features,
            )
            .astype(np.float32)
            .reshape(users.shape[0], n_features)
        )
        norms = np.sqrt(np.einsum("ij,ij->i", profile, profile))
        unit = norms > EPSILON
        profile[unit] /= norms[unit, np.newaxis]
        if users.shape[0] == 1:
            # One user (the live path's common case): a plain matvec, no
            # transposed copy of a catalog-sized result.
            content = np.asarray(self.features @ profile[0], dtype=np.float32)[
                np.newaxis, :
            ]
        else:
            # (n, F) sparse @ (F, users) dense: one pass over the feature matrix.
            content = np.ascontiguousarray(
                (self.features @ profile.T).T, dtype=np.float32
            )
        return ChunkSignals(
            shared=shared,
            warm=users,
            personal={"behaviour": behaviour, "content": content},
            rows=rows_all,
            weights=weights_all,
            first_row=first_row,
            links={"behaviour": (pos, cols, contrib)},
            features=(fpos, fcols, fvals),
        )

    def scores(
        self,
        history: History,
        *,
        now: float,
        exclude: NDArray[np.int64] | None = None,
    ) -> NDArray[np.float32]:
        """Return the blended score of every catalog row, ``-inf`` where barred.

        Parameters
        ----------
        history : History
        now : float
            Epoch seconds.
        exclude : ndarray of shape (n_excluded,), int64, optional
            Item ids never to recommend (besides the history and inactive).

        Returns
        -------
        ndarray of shape (n_items,), float32
            Row ``i`` scores item ``self.ids[i]``.
        """
        rows, weights, sizes, event_rows = self._profiles([history])
        chunk = self._chunk_signals(rows, weights, sizes, [now])
        return chunk_blend(
            self, chunk, event_rows=event_rows, nows=[now], exclude=[exclude]
        )[0]

    def recommend(
        self,
        history: History,
        *,
        k: int,
        now: float,
        exclude: NDArray[np.int64] | None = None,
        with_reasons: bool = True,
        rules: CompiledRules | None = None,
    ) -> list[Recommendation]:
        """Return the ``k`` best items for a user, best first, with reasons.

        Never returns items in ``history``, inactive items, items created
        after ``now`` or ``exclude``. An empty history gets what is popular
        right now plus new arrivals.

        Parameters
        ----------
        history : History
            The user's recent events, oldest first.
        k : int
            Length of the list (shorter only if fewer items are eligible).
        now : float
            Epoch seconds of the request.
        exclude : ndarray of shape (n_excluded,), int64, optional
            More item ids to leave out.
        with_reasons : bool
            Compute the human-readable reasons (skip for bulk evaluation).
        rules : CompiledRules, optional
            Merchandising rules over this engine's rows, applied inside the
            ranking (exclusions and factors before the top-K, pins and the
            diversity cap while selecting it).

        Returns
        -------
        list of Recommendation
        """
        return self.recommend_many(
            [history],
            k=k,
            now=now,
            exclude=[exclude],
            with_reasons=with_reasons,
            rules=rules,
        )[0]

    def recommend_many(
        self,
        histories: list[History],
        *,
        k: int,
        now: float | Sequence[float],
        exclude: Sequence[NDArray[np.int64] | None] | None = None,
        with_reasons: bool = True,
        rules: CompiledRules | None = None,
    ) -> list[list[Recommendation]]:
        """Return :meth:`recommend` for each of many users.

        The same lists, computed together: the signals of a chunk of users
        come from one gather and one sparse product (see
        :meth:`_chunk_signals`), and the chunk is blended, ranked and
        explained in one pass (:func:`~recommender.engine.batch.chunk_rank`);
        chunks keep the dense intermediates under ~``_SCORE_BATCH_CELLS``
        cells. :meth:`recommend` is this with one user.

        Parameters
        ----------
        histories : list of History
        k : int
        now : float or sequence of float
            Epoch seconds of the request: one moment for every user (the
            live path), or one per history (a replay of past events).
        exclude : sequence of (ndarray of shape (n_excluded,), int64, or None)
            Per history, more item ids to leave out (see :meth:`recommend`).
        with_reasons : bool
        rules : CompiledRules, optional

        Returns
        -------
        list of list of Recommendation
            One list per history, in order.
        """
        for history in histories:
            _check(history, k)
        nows = [float(t) for t in now] if isinstance(now, Sequence) else None
        if nows is not None and len(nows) != len(histories):
            raise ValueError("now must give one moment per history")
        if exclude is not None and len(exclude) != len(histories):
            raise ValueError("exclude must give one array (or None) per history")
        out: list[list[Recommendation]] = []
        step = max(1, _SCORE_BATCH_CELLS // max(1, self.n_items))
        for start in range(0, len(histories), step):
            chunk = histories[start : start + step]
            at = nows[start : start + step] if nows else [float(now)] * len(chunk)
            barred = exclude[start : start + step] if exclude else [None] * len(chunk)
            rows, weights, sizes, event_rows = self._profiles(chunk)
            signals = self._chunk_signals(rows, weights, sizes, at)
            out += chunk_rank(
                self,
                signals,
                histories=chunk,
                event_rows=event_rows,
                nows=at,
                exclude=barred,
                k=k,
                with_reasons=with_reasons,
                rules=rules,
            )
        return out
