"""Ranking a chunk of users at once: blend, mask, top-K, reasons.

The live path scores every user of a batch of events together. Blending is
a few (users x items) array operations for the whole chunk, the history and
exclusion masks are one scatter, and the reasons of every list come from
one padded pass (:func:`~recommender.engine.reasons.reasons_explain_many`):
numpy's per-call overhead, which dominated one user's scoring at 10^4 items,
is paid once per chunk. Only the top-K selection (and the rules' pins and
cap, where there are some) runs per user.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from recommender.engine.indexing import lookup
from recommender.engine.reasons import reasons_explain_many
from recommender.engine.rules import CompiledRules, promoted_reasons
from recommender.engine.signals import PERSONAL, ChunkSignals, blend_weights
from recommender.engine.similarity import top_k
from recommender.engine.types import History, Recommendation

if TYPE_CHECKING:
    from recommender.engine.scoring import Engine

__all__ = ["chunk_blend", "chunk_rank"]


def chunk_blend(
    engine: Engine,
    chunk: ChunkSignals,
    *,
    event_rows: list[NDArray[np.int64]],
    nows: list[float],
    exclude: list[NDArray[np.int64] | None],
) -> NDArray[np.float32]:
    """Return every user's blended score over the catalog, ``-inf`` where barred.

    The same sums, in the same order, as one user's blend: the shared base
    at the user's moment, then each personal signal times its weight.

    Parameters
    ----------
    engine : Engine
    chunk : ChunkSignals
    event_rows : list of ndarray of shape (n_events,), int64
        Per user, the catalog row of every event (-1: left the catalog);
        never recommended.
    nows : list of float
        Per user, epoch seconds.
    exclude : list of (ndarray of shape (n_excluded,), int64, or None)
        Per user, more item ids to leave out.

    Returns
    -------
    ndarray of shape (n_users, n_items), float32
    """
    n = engine.n_items
    totals = np.empty((chunk.n_users, n), dtype=np.float32)
    warm = np.zeros(chunk.n_users, dtype=np.bool_)
    warm[chunk.warm] = True
    weights = {cold: blend_weights(engine.params, cold=cold) for cold in (False, True)}
    bases: dict[tuple[float, bool], NDArray[np.float32]] = {}
    for u, now in enumerate(nows):
        key = (now, bool(warm[u]))
        base = bases.get(key)
        if base is None:
            w = weights[not warm[u]]
            base = bases[key] = engine.trends.base(
                now, w_popularity=w["popularity"], w_new=w["new"]
            )
        totals[u] = base
    if chunk.warm.size:
        part = totals[chunk.warm]
        for name in PERSONAL:
            part += chunk.personal[name] * np.float32(weights[False][name])
        totals[chunk.warm] = part
    barred = [u * n + rows[rows >= 0] for u, rows in enumerate(event_rows)]
    for u, ids in enumerate(exclude):
        if ids is not None and len(ids):
            rows = lookup(engine.ids, np.asarray(ids, dtype=np.int64))
            barred.append(u * n + rows[rows >= 0])
    if barred:
        totals.ravel()[np.concatenate(barred)] = -np.inf
    return totals


def chunk_rank(
    engine: Engine,
    chunk: ChunkSignals,
    *,
    histories: list[History],
    event_rows: list[NDArray[np.int64]],
    nows: list[float],
    exclude: list[NDArray[np.int64] | None],
    k: int,
    with_reasons: bool,
    rules: CompiledRules | None,
) -> list[list[Recommendation]]:
    """Return each user's ``k`` best items, best first, with reasons.

    See :meth:`Engine.recommend` for what is never recommended and how
    ``rules`` apply.

    Returns
    -------
    list of list of Recommendation
        One list per user of the chunk, in order.
    """
    totals = chunk_blend(
        engine, chunk, event_rows=event_rows, nows=nows, exclude=exclude
    )
    best: list[NDArray[np.int64]] = []
    promoted: list[NDArray[np.bool_] | None] = []
    ruled = rules is not None and not rules.is_identity
    for u in range(chunk.n_users):
        if ruled:
            assert rules is not None
            selection = rules.select(rules.apply(totals[u]), k)
            best.append(selection.rows)
            promoted.append(selection.promoted)
        else:
            best.append(top_k(totals[u], k))
            promoted.append(None)
    ids = engine.ids
    if not with_reasons:
        return [
            [
                Recommendation(item, score, [])
                for item, score in zip(
                    ids[rows].tolist(), totals[u, rows].tolist(), strict=True
                )
            ]
            for u, rows in enumerate(best)
        ]
    explained = reasons_explain_many(
        engine, chunk=chunk, best=best, histories=histories, event_rows=event_rows
    )
    out: list[list[Recommendation]] = []
    for u, rows in enumerate(best):
        up = promoted[u]
        ups = up.tolist() if up is not None else [False] * rows.shape[0]
        out.append(
            [
                Recommendation(
                    item, score, promoted_reasons(texts) if lift else texts, because
                )
                for item, score, (texts, because), lift in zip(
                    ids[rows].tolist(),
                    totals[u, rows].tolist(),
                    explained[u],
                    ups,
                    strict=True,
                )
            ]
        )
    return out
