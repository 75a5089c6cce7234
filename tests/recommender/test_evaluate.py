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

from recommender.services.engine import ScoreParams
from recommender.services.evaluation import (
    Split,
    evaluation_load,
    evaluation_run,
    temporal_split,
)

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
    # Each user has ~11-16 unseen cluster items and ~3 relevant ones among them:
    # recovering the clusters gives P@5 around 3/13; popularity is near 0.
    assert engine_run.metrics["precision"] > 0.15
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
