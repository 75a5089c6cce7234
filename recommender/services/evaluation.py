"""Offline evaluation of the live engine on a temporal split.

The runner feeds the training interactions through the same objects the
sockets use (:class:`~recommender.engine.Catalog`, ``Behaviour.fit``,
``Engine.recommend`` on a :class:`History` of the user's latest
``history_events`` events) and scores the top-k lists with the conventions of
``shared/datasets/ml-latest-small/peers/peers.md``:

* a user's train items are never recommended;
* relevant items of a user = test items minus train items; users with none
  are not evaluated; relevant items missing from train stay in the
  denominators;
* precision@k = hits / k, recall@k = hits / |relevant|, F1 from the *mean*
  precision and the *mean* recall, NDCG@k with binary gains and
  ``log2(rank + 1)`` discounts over an ideal of ``min(k, |relevant|)`` hits,
  hit rate = share of users with at least one hit;
* coverage = distinct recommended items / distinct items in train U test.

Nothing here touches the database.
"""

from __future__ import annotations

import csv
import itertools
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from recommender.engine import (
    Behaviour,
    Engine,
    FitParams,
    History,
    Interactions,
    ScoreParams,
)
from recommender.services.movielens import (
    MovieLens,
    movielens_catalog,
    movielens_read,
    rating_actions,
    rating_weights,
)

__all__ = [
    "EvalData",
    "EvaluationResult",
    "Split",
    "evaluation_engine",
    "evaluation_load",
    "evaluation_run",
    "evaluation_tune",
    "ranking_metrics",
    "read_split",
    "recs_write",
    "temporal_split",
    "train_ratings",
]

ProgressFn = Callable[[str], None]

METRIC_NAMES = ["precision", "recall", "f1", "ndcg", "hit_rate", "coverage"]


def _noop(_: str) -> None:
    return None


# --------------------------------------------------------------------------
# Metrics
# --------------------------------------------------------------------------
def _pair_keys(users: NDArray[np.int64], items: NDArray[np.int64]) -> NDArray[np.int64]:
    # Item ids fit in 32 bits for every data set we read; shift users above.
    return (users.astype(np.int64) << 32) | (items.astype(np.int64) & 0xFFFFFFFF)


def ranking_metrics(
    rec_users: NDArray[np.int64],
    rec_items: NDArray[np.int64],
    rec_ranks: NDArray[np.int64],
    rel_users: NDArray[np.int64],
    rel_items: NDArray[np.int64],
    *,
    k: int,
    universe_size: int,
) -> dict[str, float]:
    """Return P@k, R@k, F1@k, NDCG@k, HR@k and coverage of top-k lists.

    Parameters
    ----------
    rec_users, rec_items : ndarray of shape (n_recs,), int64
        One row per recommendation (user id, item id).
    rec_ranks : ndarray of shape (n_recs,), int64
        1-based rank in the user's list; ranks above ``k`` are ignored.
    rel_users, rel_items : ndarray of shape (n_relevant,), int64
        The relevant (user, item) pairs; their users are the evaluated ones.
    k : int
        List length.
    universe_size : int
        Distinct items in train U test (the coverage denominator).

    Returns
    -------
    dict
        ``precision``, ``recall``, ``f1``, ``ndcg``, ``hit_rate``,
        ``coverage`` (floats) and ``users`` (int, evaluated users).
    """
    if k <= 0:
        raise ValueError("k must be positive")
    rel_keys = np.unique(_pair_keys(rel_users, rel_items))
    users = np.unique(rel_users)
    n_users = users.shape[0]
    if n_users == 0:
        return dict.fromkeys(METRIC_NAMES, 0.0) | {"users": 0}
    rel_count = np.bincount(np.searchsorted(users, rel_keys >> 32), minlength=n_users)
    in_k = (rec_ranks >= 1) & (rec_ranks <= k)
    keys = _pair_keys(rec_users[in_k], rec_items[in_k])
    # A list that names an item twice earns it once, at its best rank.
    keys, first = np.unique(keys, return_index=True)
    ranks = rec_ranks[in_k][first]
    evaluated = np.isin(keys >> 32, users)
    keys, ranks = keys[evaluated], ranks[evaluated]
    hit = np.isin(keys, rel_keys)
    user_row = np.searchsorted(users, keys >> 32)
    hits = np.bincount(user_row[hit], minlength=n_users).astype(np.float64)
    dcg = np.bincount(
        user_row[hit], weights=1.0 / np.log2(ranks[hit] + 1.0), minlength=n_users
    )
    discounts = 1.0 / np.log2(np.arange(2, k + 2, dtype=np.float64))
    ideal = np.cumsum(discounts)[np.minimum(rel_count, k) - 1]
    precision = float(np.mean(hits / k))
    recall = float(np.mean(hits / rel_count))
    f1 = (
        2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    )
    recommended = np.unique(keys & 0xFFFFFFFF)
    return {
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "ndcg": float(np.mean(dcg / ideal)),
        "hit_rate": float(np.mean(hits > 0)),
        "coverage": recommended.shape[0] / universe_size if universe_size else 0.0,
        "users": int(n_users),
    }


# --------------------------------------------------------------------------
# Splits
# --------------------------------------------------------------------------
@dataclass(frozen=True)
class Split:
    """Interactions of one side of a split (parallel arrays)."""

    users: NDArray[np.int64]
    items: NDArray[np.int64]
    timestamps: NDArray[np.float64]

    def subset(self, mask: NDArray[np.bool_]) -> Split:
        """Return the rows selected by ``mask``."""
        return Split(self.users[mask], self.items[mask], self.timestamps[mask])


def read_split(path: Path | str) -> Split:
    """Return a ``user,item,timestamp`` CSV file (header, LF or CRLF)."""
    lines = [line for line in Path(path).read_text().splitlines()[1:] if line.strip()]
    if not lines:
        empty = np.empty(0, dtype=np.int64)
        return Split(empty, empty, np.empty(0, dtype=np.float64))
    table = np.array(",".join(lines).split(","), dtype=np.float64).reshape(
        len(lines), -1
    )
    return Split(
        table[:, 0].astype(np.int64), table[:, 1].astype(np.int64), table[:, 2].copy()
    )


def temporal_split(
    split: Split, *, fraction: float = 0.2, min_events: int = 5
) -> tuple[Split, Split]:
    """Return (train, test) with each user's last ``fraction`` of events as test.

    The rule of the shared split: per user, sorted by (timestamp, item id),
    the last ``max(1, floor(fraction * n))`` events are test; users with
    fewer than ``min_events`` events stay wholly in train.

    Parameters
    ----------
    split : Split
    fraction : float
    min_events : int

    Returns
    -------
    train, test : Split
    """
    order = np.lexsort((split.items, split.timestamps, split.users))
    users = split.users[order]
    _, start, count = np.unique(users, return_index=True, return_counts=True)
    position = np.arange(users.shape[0]) - np.repeat(start, count)
    n = np.repeat(count, count)
    n_test = np.maximum(1, np.floor(fraction * n).astype(np.int64))
    is_test = (n >= min_events) & (position >= n - n_test)
    ordered = split.subset(order)
    return ordered.subset(~is_test), ordered.subset(is_test)


# --------------------------------------------------------------------------
# Runner
# --------------------------------------------------------------------------
@dataclass(frozen=True)
class EvalData:
    """A data set and a split, loaded once for several runs."""

    data: MovieLens
    train: Split
    test: Split
    ratings: NDArray[np.float32]  # (n_train,) stars of each train row


def train_ratings(data: MovieLens, train: Split) -> NDArray[np.float32]:
    """Return the stars of each (user, item) pair of ``train``, 3.0 when unknown.

    Returns
    -------
    ndarray of shape (n_rows,), float32
    """
    keys = _pair_keys(data.user_ids, data.item_ids)
    order = np.argsort(keys)
    sorted_keys = keys[order]
    wanted = _pair_keys(train.users, train.items)
    pos = np.clip(np.searchsorted(sorted_keys, wanted), 0, max(0, keys.size - 1))
    found = sorted_keys[pos] == wanted if keys.size else np.zeros(wanted.shape, bool)
    stars = np.full(wanted.shape, 3.0, dtype=np.float32)
    stars[found] = data.ratings[order[pos[found]]]
    return stars


def evaluation_load(
    data_dir: Path | str, train_path: Path | str, test_path: Path | str
) -> EvalData:
    """Return the data set in ``data_dir`` with the given split.

    Parameters
    ----------
    data_dir : path
        A MovieLens directory (either format).
    train_path, test_path : path
        ``user,item,timestamp`` CSV files.

    Returns
    -------
    EvalData
    """
    data = movielens_read(data_dir)
    train = read_split(train_path)
    test = read_split(test_path)
    return EvalData(
        data=data, train=train, test=test, ratings=train_ratings(data, train)
    )


@dataclass
class EvaluationResult:
    """Metrics and the lists they were computed from."""

    metrics: dict[str, float]
    params: dict[str, object]
    rec_users: NDArray[np.int64]
    rec_items: NDArray[np.int64]
    rec_ranks: NDArray[np.int64]
    seconds: dict[str, float] = field(default_factory=dict)
    scoring_ms: dict[str, float] = field(default_factory=dict)


def _user_groups(split: Split) -> tuple[NDArray, NDArray, NDArray, NDArray]:
    """Return order (by user, time, item), users, start and count per user."""
    order = np.lexsort((split.items, split.timestamps, split.users))
    users, start, count = np.unique(
        split.users[order], return_index=True, return_counts=True
    )
    return order, users, start, count


def evaluation_engine(
    ev: EvalData,
    train: Split,
    ratings: NDArray[np.float32],
    *,
    fit_params: FitParams | None,
    score_params: ScoreParams | None,
    progress: ProgressFn,
) -> tuple[Engine, float]:
    """Return the live engine fitted on ``train`` and the fit time in seconds.

    The catalog is built as of training: mean stars from train ratings only,
    user tags only when applied no later than the tagger's last train event.
    """
    data = ev.data
    # Catalog facts as of training: mean stars from train ratings only; user
    # tags only when applied no later than the tagger's last train event.
    train_keys = np.unique(_pair_keys(train.users, train.items))
    rating_mask = np.isin(_pair_keys(data.user_ids, data.item_ids), train_keys)
    last_users, last_idx = np.unique(train.users[::-1], return_index=True)
    last_ts = train.timestamps[::-1][last_idx]
    pos = np.clip(
        np.searchsorted(last_users, data.tag_user_ids), 0, max(0, last_users.size - 1)
    )
    tag_mask = (
        (last_users[pos] == data.tag_user_ids) & (data.tag_timestamps <= last_ts[pos])
        if last_users.size
        else np.zeros(data.tag_user_ids.shape, dtype=bool)
    )
    catalog = movielens_catalog(data, rating_mask=rating_mask, tag_mask=tag_mask)
    started = time.perf_counter()
    behaviour = Behaviour.fit(
        Interactions(
            user_ids=train.users,
            item_ids=train.items,
            weights=rating_weights(ratings),
            timestamps=train.timestamps,
        ),
        now=float(train.timestamps.max()),
        progress=progress,
        params=fit_params,
    )
    engine = Engine(catalog, behaviour, params=score_params)
    return engine, time.perf_counter() - started


def _recommend_all(
    engine: Engine,
    train: Split,
    ratings: NDArray[np.float32],
    users_wanted: NDArray[np.int64],
    *,
    k: int,
    history_events: int,
    progress: ProgressFn,
) -> tuple[NDArray, NDArray, NDArray, NDArray[np.float64]]:
    order, users, start, count = _user_groups(train)
    items = train.items[order]
    stamps = train.timestamps[order]
    stars = ratings[order]
    actions = np.array(rating_actions(stars)) if stars.size else np.empty(0, dtype=str)
    row_of = {int(u): i for i, u in enumerate(users.tolist())}
    out_u, out_i, out_r = [], [], []
    timings = np.zeros(users_wanted.shape[0], dtype=np.float64)
    # One engine call per user, on purpose: this is the live per-user path
    # (History in, top-k out) that the sockets run after every event.
    for n, user in enumerate(users_wanted.tolist()):
        row = row_of.get(user)
        if row is None:
            history, exclude, now = History.empty(), None, float(stamps.max())
        else:
            lo, hi = int(start[row]), int(start[row] + count[row])
            window = slice(max(lo, hi - history_events), hi)
            history = History(
                item_ids=items[window],
                actions=actions[window].tolist(),
                weights=rating_weights(stars[window]),
                timestamps=stamps[window],
            )
            exclude = items[lo:hi]
            now = float(stamps[hi - 1])
        tick = time.perf_counter()
        recs = engine.recommend(
            history, k=k, now=now, exclude=exclude, with_reasons=False
        )
        timings[n] = time.perf_counter() - tick
        out_u.extend([user] * len(recs))
        out_i.extend(r.item_id for r in recs)
        out_r.extend(range(1, len(recs) + 1))
        if (n + 1) % 200 == 0:
            progress(f"recommended for {n + 1}/{users_wanted.shape[0]} users")
    return (
        np.array(out_u, dtype=np.int64),
        np.array(out_i, dtype=np.int64),
        np.array(out_r, dtype=np.int64),
        timings,
    )


def evaluation_prepare(
    ev: EvalData,
    *,
    validation: bool,
    engine: Engine | None,
    fit_params: FitParams | None,
    score_params: ScoreParams | None,
    progress: ProgressFn,
) -> tuple[Split, Split, NDArray[np.float32], Engine, float]:
    """Return the (train, test, train ratings) to score and an engine fitted on train.

    ``validation`` carves test out of train (the last 20 % of each user's
    train events) so tuning never reads the test file. A given ``engine`` is
    used as is (fit seconds 0).
    """
    if validation:
        train, test = temporal_split(ev.train)
        ratings = train_ratings(ev.data, train)
    else:
        train, test, ratings = ev.train, ev.test, ev.ratings
    fit_secs = 0.0
    if engine is None:
        engine, fit_secs = evaluation_engine(
            ev,
            train,
            ratings,
            fit_params=fit_params,
            score_params=score_params,
            progress=progress,
        )
    return train, test, ratings, engine, fit_secs


def evaluation_run(
    ev: EvalData,
    *,
    k: int = 10,
    history_events: int = 200,
    validation: bool = False,
    fit_params: FitParams | None = None,
    score_params: ScoreParams | None = None,
    engine: Engine | None = None,
    progress: ProgressFn | None = None,
) -> EvaluationResult:
    """Fit the engine on train, recommend top-k per test user, score the lists.

    Parameters
    ----------
    ev : EvalData
    k : int
        List length.
    history_events : int
        How many of the user's latest events form their :class:`History`
        (the live setting ``RECS_HISTORY_EVENTS``).
    validation : bool
        Evaluate on the last 20 % of each user's *train* events instead of
        the test file, fitting on the rest (for tuning; test is not read).
    fit_params, score_params : optional
        Engine parameters; the engine defaults when omitted.
    engine : Engine, optional
        A ready engine fitted on the same train data (skips the fit).
    progress : callable, optional

    Returns
    -------
    EvaluationResult
    """
    say = progress or _noop
    started = time.perf_counter()
    train, test, ratings, engine, fit_secs = evaluation_prepare(
        ev,
        validation=validation,
        engine=engine,
        fit_params=fit_params,
        score_params=score_params,
        progress=say,
    )
    # Relevant = test items the user did not already have in train.
    train_keys = np.unique(_pair_keys(train.users, train.items))
    fresh = ~np.isin(_pair_keys(test.users, test.items), train_keys)
    rel_users, rel_items = test.users[fresh], test.items[fresh]
    eval_users = np.unique(rel_users)
    say(f"recommending for {eval_users.shape[0]} users")
    rec_started = time.perf_counter()
    rec_u, rec_i, rec_r, timings = _recommend_all(
        engine,
        train,
        ratings,
        eval_users,
        k=k,
        history_events=history_events,
        progress=say,
    )
    rec_secs = time.perf_counter() - rec_started
    universe = np.unique(np.concatenate([train.items, test.items])).shape[0]
    metrics = ranking_metrics(
        rec_u, rec_i, rec_r, rel_users, rel_items, k=k, universe_size=universe
    )
    return EvaluationResult(
        metrics=metrics,
        params={
            "fit": (fit_params or FitParams()).__dict__,
            "score": engine.params.__dict__,
            "history_events": history_events,
            "k": k,
            "split": "validation" if validation else "test",
        },
        rec_users=rec_u,
        rec_items=rec_i,
        rec_ranks=rec_r,
        seconds={
            "fit": fit_secs,
            "recommend": rec_secs,
            "total": time.perf_counter() - started,
        },
        scoring_ms={
            "mean": float(timings.mean() * 1000) if timings.size else 0.0,
            "p50": float(np.percentile(timings, 50) * 1000) if timings.size else 0.0,
            "p95": float(np.percentile(timings, 95) * 1000) if timings.size else 0.0,
        },
    )


def recs_write(result: EvaluationResult, path: Path | str) -> None:
    """Write the lists as ``user,item,rank`` CSV with the data set's own ids."""
    with Path(path).open("w", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(["user", "item", "rank"])
        writer.writerows(
            zip(
                result.rec_users.tolist(),
                result.rec_items.tolist(),
                result.rec_ranks.tolist(),
                strict=True,
            )
        )


def evaluation_tune(
    ev: EvalData,
    *,
    grid: dict[str, Iterable[object]],
    base: ScoreParams | None = None,
    fit_params: FitParams | None = None,
    k: int = 10,
    history_events: int = 200,
    metric: str = "ndcg",
    progress: ProgressFn | None = None,
) -> list[tuple[dict[str, object], dict[str, float]]]:
    """Grid-search scoring parameters on the validation split carved from train.

    The behaviour model is fitted once; each grid point only re-blends.

    Parameters
    ----------
    ev : EvalData
    grid : dict
        ``ScoreParams`` field name -> values to try.
    base : ScoreParams, optional
        Values of the fields not in ``grid``.
    fit_params : FitParams, optional
    k, history_events : int
    metric : str
        The metric to sort by (descending).
    progress : callable, optional

    Returns
    -------
    list of (params, metrics)
        Best first.
    """
    say = progress or _noop
    train, _ = temporal_split(ev.train)
    engine, _ = evaluation_engine(
        ev,
        train,
        train_ratings(ev.data, train),
        fit_params=fit_params,
        score_params=base,
        progress=say,
    )
    base = base or ScoreParams()
    names = list(grid)
    results = []
    for values in itertools.product(*(list(grid[n]) for n in names)):
        point = dict(zip(names, values, strict=True))
        run = evaluation_run(
            ev,
            k=k,
            history_events=history_events,
            validation=True,
            engine=engine.with_params(replace(base, **point)),
        )
        results.append((point, run.metrics))
        say(f"{point} -> {metric}={run.metrics[metric]:.4f}")
    results.sort(key=lambda pm: -pm[1][metric])
    return results
