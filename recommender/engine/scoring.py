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

from recommender.engine.behaviour import Behaviour
from recommender.engine.features import FeatureWeights, item_features_build
from recommender.engine.indexing import gather_rows, lookup, sorted_catalog
from recommender.engine.reasons import reasons_explain
from recommender.engine.rules import CompiledRules, promoted_reasons
from recommender.engine.signals import PERSONAL, Links, Signals, blend_weights
from recommender.engine.similarity import EPSILON, top_k
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

    Immutable: build a new one with :meth:`with_catalog` or
    :meth:`with_behaviour` and swap the reference. Per-process caches (the
    popularity vector at a given hour) are filled lazily under a lock.

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
        features: sp.csr_matrix | None = None,
    ) -> None:
        self.params = params or ScoreParams()
        self.feature_weights = feature_weights or FeatureWeights()
        self.catalog = sorted_catalog(catalog)
        self.behaviour = behaviour
        cat = self.catalog
        self.ids: NDArray[np.int64] = cat.ids
        self.n_items = int(cat.ids.shape[0])
        self.features = (
            features
            if features is not None
            else item_features_build(cat, weights=self.feature_weights)
        )
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
        return Engine(
            self.catalog,
            behaviour,
            params=self.params,
            feature_weights=self.feature_weights,
            features=self.features,
        )

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
    def _profile(
        self, history: History
    ) -> tuple[NDArray[np.int64], NDArray[np.float32], NDArray[np.int64]]:
        """Return the user's distinct items, their profile weights and event rows.

        Returns
        -------
        rows : ndarray of shape (m,), int64
            Catalog rows of the distinct items in the history.
        weights : ndarray of shape (m,), float32
            Sum over the item's events of action weight x recency decay.
        event_rows : ndarray of shape (n_events,), int64
            Catalog row of every event, -1 when the item left the catalog.
        """
        ids = np.asarray(history.item_ids, dtype=np.int64)
        event_rows = lookup(self.ids, ids)
        n = ids.shape[0]
        if n == 0:
            empty = np.empty(0, dtype=np.int64)
            return empty, np.empty(0, dtype=np.float32), event_rows
        p = self.params
        # Position from the newest event, not wall-clock age: sessions rate or
        # browse many items within seconds, and the order is what is reliable.
        back = np.arange(n - 1, -1, -1, dtype=np.float32)
        decay = np.exp2(-back / p.history_half_life_events)
        strength = np.maximum(np.asarray(history.weights, dtype=np.float32), EPSILON)
        w = decay * strength**p.action_power
        # What the user did last weighs most: a view right after a cart must
        # still lead the next list, or it would look stuck on the older item.
        w[-1] = w.max()
        ok = event_rows >= 0
        rows, inverse = np.unique(event_rows[ok], return_inverse=True)
        weights = np.bincount(inverse, weights=w[ok], minlength=rows.shape[0])
        return rows, weights.astype(np.float32), event_rows

    def _signals(
        self, rows: NDArray[np.int64], weights: NDArray[np.float32], now: float
    ) -> tuple[Signals, Links | None]:
        """Return one user's signals and links (see :meth:`_signals_many`)."""
        return self._signals_many([(rows, weights)], [now])[0]

    def _signals_many(
        self,
        profiles: list[tuple[NDArray[np.int64], NDArray[np.float32]]],
        nows: list[float],
    ) -> list[tuple[Signals, Links | None]]:
        """Return each user's signals and the cells used for reasons.

        Every user's neighbour links and profile features are gathered at
        once, and the content scores of all of them come from one sparse x
        dense product: per-call overhead is paid once per batch of users, and
        the bulk work runs in numpy without the GIL.

        Parameters
        ----------
        profiles : list of (rows, weights)
            Per user, the catalog rows of their distinct items, shape (m,),
            int64, and profile weights, shape (m,), float32 (see
            :meth:`_profile`).
        nows : list of float
            Per user, the moment of scoring, epoch seconds.

        Returns
        -------
        list of (signals, links), one per user
            ``links`` (None for an empty history) holds every neighbour link
            and feature cell of the user's history items (see :class:`Links`).
        """
        p = self.params
        n = self.n_items
        n_features = self.features.shape[1]
        # Shared signals are cached per bucket and hour: users scored at one
        # moment (the live path) share them; a replay's users each have theirs.
        shared = [(self.popularity(now), self.newness(now)) for now in nows]
        cold = blend_weights(p, cold=True)
        warm = blend_weights(p, cold=False)
        nothing = dict.fromkeys(PERSONAL)
        sizes = np.array([rows.shape[0] for rows, _ in profiles], dtype=np.int64)
        out: list[tuple[Signals, Links | None]] = [
            (Signals(nothing, *shared[u], cold), None) for u in range(len(profiles))
        ]
        users = np.flatnonzero(sizes)
        if not users.size:
            return out
        rows_all = np.concatenate([profiles[u][0] for u in users.tolist()])
        weights_all = np.concatenate([profiles[u][1] for u in users.tolist()])
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
        # Links and feature cells come out grouped by user, in row order.
        link_end = np.searchsorted(pos, first_row[1:], side="left")
        feature_end = np.searchsorted(fpos, first_row[1:], side="left")
        link_start = np.concatenate([[0], link_end[:-1]])
        feature_start = np.concatenate([[0], feature_end[:-1]])
        for j, u in enumerate(users.tolist()):
            ls, le = int(link_start[j]), int(link_end[j])
            fs, fe = int(feature_start[j]), int(feature_end[j])
            offset = first_row[j]
            links = Links(
                weights=weights_all[offset : offset + sizes[u]],
                neighbours={
                    "behaviour": (pos[ls:le] - offset, cols[ls:le], contrib[ls:le])
                },
                features=(fpos[fs:fe] - offset, fcols[fs:fe], fvals[fs:fe]),
            )
            personal = {"behaviour": behaviour[j], "content": content[j]}
            signals = Signals(personal, *shared[u], warm)
            out[u] = (signals, links)
        return out

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
        rows, weights, event_rows = self._profile(history)
        signals, _ = self._signals(rows, weights, now)
        return self._blend(signals, event_rows, now, exclude)

    def _blend(
        self,
        signals: Signals,
        event_rows: NDArray[np.int64],
        now: float,
        exclude: NDArray[np.int64] | None,
    ) -> NDArray[np.float32]:
        """Return the weighted sum of the signals, ``-inf`` where barred."""
        total = self.trends.base(
            now,
            w_popularity=signals.weights["popularity"],
            w_new=signals.weights["new"],
        )
        for name, values in signals.personal.items():
            if values is not None:
                total += values * np.float32(signals.weights[name])
        total[event_rows[event_rows >= 0]] = -np.inf
        if exclude is not None and len(exclude):
            ex = lookup(self.ids, np.asarray(exclude, dtype=np.int64))
            total[ex[ex >= 0]] = -np.inf
        return total

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
        _check(history, k)
        rows, weights, event_rows = self._profile(history)
        signals, links = self._signals(rows, weights, now)
        return self._ranked(
            history,
            rows,
            event_rows,
            signals,
            links,
            k,
            now,
            exclude,
            with_reasons,
            rules,
        )

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

        The same lists, computed together: the signals of a batch of users
        come from one gather and one sparse product (see
        :meth:`_signals_many`), in chunks of users that keep the dense
        intermediates under ~``_SCORE_BATCH_CELLS`` cells.

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
            profiles = [self._profile(history) for history in chunk]
            signals = self._signals_many([(r, w) for r, w, _ in profiles], at)
            for history, (rows, _, event_rows), (sig, links), t, ex in zip(
                chunk, profiles, signals, at, barred, strict=True
            ):
                out.append(
                    self._ranked(
                        history,
                        rows,
                        event_rows,
                        sig,
                        links,
                        k,
                        t,
                        ex,
                        with_reasons,
                        rules,
                    )
                )
        return out

    def _ranked(
        self,
        history: History,
        rows: NDArray[np.int64],
        event_rows: NDArray[np.int64],
        signals: Signals,
        links: Links | None,
        k: int,
        now: float,
        exclude: NDArray[np.int64] | None,
        with_reasons: bool,
        rules: CompiledRules | None = None,
    ) -> list[Recommendation]:
        """Blend one user's signals, take the top ``k`` and explain them."""
        total = self._blend(signals, event_rows, now, exclude)
        promoted = None
        if rules is not None and not rules.is_identity:
            selection = rules.select(rules.apply(total), k)
            best, promoted = selection.rows, selection.promoted
        else:
            best = top_k(total, k)
        if not with_reasons:
            return [Recommendation(int(self.ids[i]), float(total[i]), []) for i in best]
        explained = reasons_explain(
            self,
            best=best,
            signals=signals,
            links=links,
            rows=rows,
            history=history,
            event_rows=event_rows,
        )
        if promoted is not None:
            explained = [
                (promoted_reasons(texts) if up else texts, because)
                for (texts, because), up in zip(
                    explained, promoted.tolist(), strict=True
                )
            ]
        return [
            Recommendation(int(self.ids[i]), float(total[i]), texts, because)
            for i, (texts, because) in zip(best, explained, strict=True)
        ]
