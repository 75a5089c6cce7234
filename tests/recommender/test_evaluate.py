"""The evaluation runner: a generated data set with known structure, then the
real shared split end to end."""

import csv
import json
import os
from io import StringIO
from pathlib import Path

import numpy as np
import pytest
from django.conf import settings
from django.core.management import call_command

from recommender.engine import History
from recommender.services.engine import ScoreParams
from recommender.services.evaluation import (
    Split,
    evaluation_engine,
    evaluation_load,
    evaluation_run,
    read_split,
    temporal_split,
)
from recommender.services.movielens import rating_actions, rating_weights
from recommender.services.replay import replay_metrics, replay_recs_read, replay_run

SHARED = Path(settings.BASE_DIR).parent / "shared/datasets/ml-latest-small"
POPULARITY_NDCG = 0.0867  # peers.md, popularity on the shared split
TARGET_NDCG, TARGET_PRECISION = 0.1357, 0.1229  # issue 3: best peer + 5 %


def write_clustered(directory: Path, *, seed: int = 0) -> None:
    """Write a CSV data set: 4 taste clusters of 30 items, 40 users each.

    Users rate 12-20 items of their own cluster and 2 globally popular items;
    genres follow the clusters. A model that recovers the clusters ranks the
    user's unseen cluster items first.
    """
    rng = np.random.default_rng(seed)
    directory.mkdir()
    genres = ["Action", "Comedy", "Drama", "Horror"]
    with (directory / "movies.csv").open("w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(["movieId", "title", "genres"])
        for item in range(120):
            out.writerow(
                [item + 1, f"Movie {item + 1} ({1990 + item % 20})", genres[item // 30]]
            )
    rows = []
    for user in range(160):
        cluster = user // 40
        own = (
            rng.choice(30, size=rng.integers(12, 21), replace=False) + 30 * cluster + 1
        )
        picks = [*own.tolist(), *rng.choice([5, 65], size=1).tolist()]
        stamps = 1_000_000_000 + user * 10 + np.sort(rng.integers(0, 10**6, len(picks)))
        rows += [(user + 1, i, 4.0, int(t)) for i, t in zip(picks, stamps, strict=True)]
    with (directory / "ratings.csv").open("w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(["userId", "movieId", "rating", "timestamp"])
        out.writerows(rows)
    split = Split(
        np.array([r[0] for r in rows]),
        np.array([r[1] for r in rows]),
        np.array([r[3] for r in rows], dtype=float),
    )
    train, test = temporal_split(split)
    for name, part in (("train", train), ("test", test)):
        with (directory / f"{name}.csv").open("w", newline="") as fh:
            out = csv.writer(fh)
            out.writerow(["user", "item", "timestamp"])
            out.writerows(
                zip(part.users, part.items, part.timestamps.astype(int), strict=True)
            )


def _cluster_bound(ev) -> float:
    """Return the mean P@k of random picks among each user's unseen cluster items.

    For every test user: relevant unseen cluster items / unseen cluster items
    (``write_clustered``: 40 users and 30 items per cluster).
    """
    shares = []
    for user in np.unique(ev.test.users):
        cluster = set(range(30 * ((user - 1) // 40) + 1, 30 * ((user - 1) // 40) + 31))
        unseen = cluster - set(ev.train.items[ev.train.users == user].tolist())
        relevant = set(ev.test.items[ev.test.users == user].tolist()) & unseen
        shares.append(len(relevant) / len(unseen))
    return float(np.mean(shares))


def test_known_structure_is_recovered(tmp_path):
    directory = tmp_path / "clustered"
    write_clustered(directory)
    ev = evaluation_load(directory, directory / "train.csv", directory / "test.csv")
    engine_run = evaluation_run(ev, k=5)
    pop_run = evaluation_run(
        ev,
        k=5,
        score_params=ScoreParams(behaviour_weight=0, content_weight=0, new_weight=0),
    )
    # Order inside a cluster is random, so knowing the clusters is the most a
    # model can learn: it gives the expected P@5 of five random unseen items
    # of the user's own cluster. The engine must come close to that bound;
    # popularity is near 0.
    assert engine_run.metrics["precision"] > 0.85 * _cluster_bound(ev)
    assert engine_run.metrics["precision"] > 3 * pop_run.metrics["precision"]
    # every recommended item is from the user's own cluster
    clusters_ok = (engine_run.rec_items - 1) // 30 == (engine_run.rec_users - 1) // 40
    assert clusters_ok.mean() > 0.95
    # validation mode never reads the test file's rows
    val = evaluation_run(ev, k=5, validation=True)
    assert val.params["split"] == "validation"
    assert val.metrics["users"] > 100


def test_evaluate_command_writes_json_and_recs(tmp_path):
    directory = tmp_path / "clustered"
    write_clustered(directory)
    out = StringIO()
    call_command(
        "evaluate",
        "--data",
        str(directory),
        "--train",
        str(directory / "train.csv"),
        "--test",
        str(directory / "test.csv"),
        "--k",
        "5",
        "--json",
        str(tmp_path / "m.json"),
        "--recs-out",
        str(tmp_path / "recs.csv"),
        stdout=out,
    )
    assert "ndcg@5" in out.getvalue()
    metrics = json.loads((tmp_path / "m.json").read_text())["metrics"]
    lines = (tmp_path / "recs.csv").read_text().splitlines()
    assert lines[0] == "user,item,rank"
    assert len(lines) - 1 == 5 * metrics["users"]


def _shared_or_skip() -> None:
    if not (SHARED / "split/train.csv").exists():
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"shared data set missing at {SHARED}")
        pytest.skip(f"shared data set not found at {SHARED}")


@pytest.mark.slow
def test_shared_split_beats_popularity(tmp_path):
    _shared_or_skip()
    call_command(
        "evaluate",
        "--data",
        str(SHARED),
        "--train",
        str(SHARED / "split/train.csv"),
        "--test",
        str(SHARED / "split/test.csv"),
        "--k",
        "10",
        "--json",
        str(tmp_path / "m.json"),
        stdout=StringIO(),
    )
    metrics = json.loads((tmp_path / "m.json").read_text())["metrics"]
    assert metrics["users"] == 610
    assert metrics["ndcg"] > POPULARITY_NDCG
    # The engine is deterministic: hold the issue-3 target (best peer + 5 %).
    assert metrics["ndcg"] >= TARGET_NDCG
    assert metrics["precision"] >= TARGET_PRECISION
    assert metrics["coverage"] > 0.0101 * 3


# --------------------------------------------------------------------------
# Replay
# --------------------------------------------------------------------------
def write_replay_set(directory: Path) -> None:
    """Write a tiny data set whose replay answer is known.

    Books 1-3 are read together (1 with 2 most of all); films 4-6 are watched
    together, and 5 is the most popular item. Shopper 99 read book 1 in
    train, then, in test, 2, 3 and 5: before each, the live engine must put
    that very item first (2: strongest neighbour of 1; 3: the last unread
    book; 5: nothing personal left, the most popular item).
    """
    directory.mkdir()
    with (directory / "movies.csv").open("w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(["movieId", "title", "genres"])
        for item in range(1, 7):
            out.writerow(
                [item, f"Item {item} (2000)", "Drama" if item <= 3 else "Horror"]
            )
    train = [(u, i) for u in range(1, 11) for i in (1, 2, 3)]
    train += [(u, i) for u in range(11, 16) for i in (1, 2)]
    train += [(u, i) for u in range(21, 31) for i in (4, 5, 6)]
    train += [(u, 5) for u in range(31, 41)]
    train += [(99, 1)]
    test = [(99, 2), (99, 3), (99, 5)]
    t0 = 1_000_000_000
    train_rows = [(u, i, t0 + n * 60) for n, (u, i) in enumerate(train)]
    test_rows = [(u, i, t0 + 10**6 + n * 60) for n, (u, i) in enumerate(test)]
    with (directory / "ratings.csv").open("w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(["userId", "movieId", "rating", "timestamp"])
        out.writerows((u, i, 4.0, t) for u, i, t in train_rows + test_rows)
    for name, rows in (("train", train_rows), ("test", test_rows)):
        with (directory / f"{name}.csv").open("w", newline="") as fh:
            out = csv.writer(fh)
            out.writerow(["user", "item", "timestamp"])
            out.writerows(rows)


def test_replay_metrics_by_hand():
    # User 1: target at rank 1 then rank 3; user 2: missed, list unchanged.
    recs = np.array(
        [
            (1, 0, 1, 10), (1, 0, 2, 11), (1, 0, 3, 12),
            (1, 1, 1, 11), (1, 1, 2, 13), (1, 1, 3, 12),
            (2, 0, 1, 10), (2, 0, 2, 11), (2, 0, 3, 12),
            (2, 1, 1, 10), (2, 1, 2, 11), (2, 1, 3, 12),
        ]
    )  # fmt: skip
    targets = np.array([(1, 0, 10), (1, 1, 12), (2, 0, 99), (2, 1, 98)])
    m = replay_metrics(
        recs[:, 0], recs[:, 1], recs[:, 2], recs[:, 3],
        targets[:, 0], targets[:, 1], targets[:, 2],
        k=3, universe_size=8,
    )  # fmt: skip
    assert m["hr"] == pytest.approx(2 / 4)
    assert m["ndcg"] == pytest.approx((1 + 1 / np.log2(4)) / 4)
    assert m["mrr"] == pytest.approx((1 + 1 / 3) / 4)
    assert m["changed"] == pytest.approx(1 / 2)  # user 1's list changed, 2's not
    assert m["changed_items"] == pytest.approx(1 / 2)
    assert m["coverage"] == pytest.approx(4 / 8)
    assert (m["steps"], m["users"]) == (4, 2)
    # Only the first k ranks count.
    m2 = replay_metrics(
        recs[:, 0], recs[:, 1], recs[:, 2], recs[:, 3],
        targets[:, 0], targets[:, 1], targets[:, 2],
        k=2, universe_size=8,
    )  # fmt: skip
    assert m2["hr"] == pytest.approx(1 / 4)


def test_replay_gives_the_known_answer(tmp_path):
    directory = tmp_path / "replay"
    write_replay_set(directory)
    ev = evaluation_load(directory, directory / "train.csv", directory / "test.csv")
    result = replay_run(ev, k=2)
    lists = {
        int(s): result.rec_items[(result.rec_users == 99) & (result.rec_steps == s)]
        for s in range(3)
    }
    assert [lists[s][0] for s in range(3)] == [2, 3, 5]
    assert result.metrics["hr"] == 1.0
    assert result.metrics["mrr"] == 1.0
    assert result.metrics["ndcg"] == pytest.approx(1.0)
    assert result.metrics["changed"] == 1.0
    assert result.metrics["steps"] == 3


def test_replay_lists_are_the_live_engines_from_the_history_so_far(tmp_path):
    directory = tmp_path / "clustered"
    write_clustered(directory)
    ev = evaluation_load(directory, directory / "train.csv", directory / "test.csv")
    engine, _ = evaluation_engine(
        ev, ev.train, ev.ratings, fit_params=None, score_params=None, progress=print
    )
    window = 5  # shorter than most histories: older items must stay excluded
    result = replay_run(ev, k=4, history_events=window, engine=engine)
    stars = dict(
        zip(
            zip(ev.data.user_ids.tolist(), ev.data.item_ids.tolist(), strict=True),
            ev.data.ratings.tolist(),
            strict=True,
        )
    )
    test_order = np.lexsort((ev.test.items, ev.test.timestamps, ev.test.users))
    for user in (1, 57, 130):
        past = ev.train.subset(ev.train.users == user)
        order = np.lexsort((past.items, past.timestamps))
        items = past.items[order].tolist()
        stamps = past.timestamps[order].tolist()
        mine = test_order[ev.test.users[test_order] == user]
        for step, row in enumerate(mine.tolist()):
            recent = slice(max(0, len(items) - window), len(items))
            weights = rating_weights(
                np.array([stars[(user, i)] for i in items[recent]], np.float32)
            )
            history = History(
                item_ids=np.array(items[recent], np.int64),
                actions=rating_actions(
                    np.array([stars[(user, i)] for i in items[recent]], np.float32)
                ),
                weights=weights,
                timestamps=np.array(stamps[recent]),
            )
            alone = engine.recommend(
                history,
                k=4,
                now=stamps[-1],
                exclude=np.array(items, np.int64),
                with_reasons=False,
            )
            got = result.rec_items[
                (result.rec_users == user) & (result.rec_steps == step)
            ]
            assert got.tolist() == [r.item_id for r in alone]
            assert not set(got.tolist()) & set(items)  # nothing already seen
            items.append(int(ev.test.items[row]))
            stamps.append(float(ev.test.timestamps[row]))


def test_evaluate_replay_command_writes_json_and_rescorable_recs(tmp_path):
    directory = tmp_path / "clustered"
    write_clustered(directory)
    out = StringIO()
    call_command(
        "evaluate",
        "--replay",
        "--data",
        str(directory),
        "--train",
        str(directory / "train.csv"),
        "--test",
        str(directory / "test.csv"),
        "--k",
        "5",
        "--json",
        str(tmp_path / "m.json"),
        "--recs-out",
        str(tmp_path / "recs.csv"),
        stdout=out,
    )
    text = out.getvalue()
    assert "NDCG@5" in text and "MRR@5" in text and "changed" in text
    assert "replayed" in text  # progress on the default verbosity
    report = json.loads((tmp_path / "m.json").read_text())
    assert report["protocol"] == "replay"
    metrics = report["metrics"]
    assert metrics["steps"] == len(read_split(directory / "test.csv").users)
    lines = (tmp_path / "recs.csv").read_text().splitlines()
    assert lines[0] == "user,step,rank,item"
    # An independent re-score of the written lists gives the same figures.
    users, steps, ranks, items = replay_recs_read(tmp_path / "recs.csv")
    test = read_split(directory / "test.csv")
    order = np.lexsort((test.items, test.timestamps, test.users))
    t_users, t_items = test.users[order], test.items[order]
    _, first = np.unique(t_users, return_index=True)
    t_steps = np.arange(t_users.size) - np.repeat(
        first, np.diff([*first, t_users.size])
    )
    train = read_split(directory / "train.csv")
    universe = np.unique(np.concatenate([train.items, test.items])).size
    again = replay_metrics(
        users, steps, ranks, items, t_users, t_steps, t_items,
        k=5, universe_size=universe,
    )  # fmt: skip
    assert again == pytest.approx(metrics)
