"""bench/engine: one user's scoring + top-10 on synthetic catalogs of growing size.

For catalogs of 1k, 10k, 100k and 1M items (issue 6 §1) this builds the live
:class:`~recommender.engine.Engine` on a synthetic catalog and a
synthetic fitted model (top-``N`` neighbours per item, one popularity cell per
item), then times ``Engine.recommend(k=10)`` with reasons right after one new
event is appended to the user's history -- exactly the per-event path of the
sockets. In the same run it times the bare numpy floor: one float32 matvec
over an items x 32 dense matrix plus ``argpartition`` and a sort of the 10.
It prints a table (median / p95 ms, ratio to the floor, growth per 10x items,
engine memory, build time) and writes JSON.

    .venv/bin/python bench/engine.py [--sizes 1000,10000,100000,1000000]
        [--repeats 200] [--neighbours 100] [--budget-secs 600] [--json PATH]

Bounded: a size is skipped when the time already spent plus a projection of
its cost would exceed ``--budget-secs``.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import sys
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from recommender.engine import (
    ACTION_WEIGHTS,
    Behaviour,
    Catalog,
    Engine,
    History,
)

NOW = 1_750_000_000.0
DAY = 86400.0
N_CATEGORIES = 50
N_TAGS = 2000
TAGS_PER_ITEM = 3
HISTORY_EVENTS = 200
FLOOR_DIM = 32


def synthetic_catalog(n: int, rng: np.random.Generator) -> Catalog:
    """Return ``n`` items with categories, tags, prices, ratings and ages."""
    vocab = np.array([f"tag{i}" for i in range(N_TAGS)])
    tag_idx = rng.integers(0, N_TAGS, size=(n, TAGS_PER_ITEM))
    tags = vocab[tag_idx].tolist()
    return Catalog(
        ids=np.arange(1, n + 1, dtype=np.int64),
        titles=[f"Item {i}" for i in range(1, n + 1)],
        category=rng.integers(0, N_CATEGORIES, size=n).astype(np.int32),
        category_names=[f"Category {i}" for i in range(N_CATEGORIES)],
        tags=tags,
        price=rng.lognormal(3.0, 1.0, size=n).astype(np.float32),
        rating=rng.uniform(1, 5, size=n).astype(np.float32),
        year=rng.integers(1950, 2025, size=n).astype(np.float32),
        active=rng.random(n) > 0.02,
        created=NOW - rng.uniform(0, 1000 * DAY, size=n),
    )


def synthetic_behaviour(n: int, neighbours: int, rng: np.random.Generator) -> Behaviour:
    """Return a fitted-model stand-in: ``neighbours`` random links per item."""
    rows = np.repeat(np.arange(n, dtype=np.int64), neighbours)
    cols = rng.integers(0, n, size=n * neighbours)
    vals = rng.random(n * neighbours, dtype=np.float32)
    matrix = sp.csr_matrix((vals, (rows, cols)), shape=(n, n), dtype=np.float32)
    matrix.sum_duplicates()
    counts = rng.zipf(1.5, size=n).clip(max=10_000).astype(np.float32)
    return Behaviour(
        item_ids=np.arange(1, n + 1, dtype=np.int64),
        neighbours=matrix,
        counts=counts,
        pop_item=np.arange(n, dtype=np.int32),
        pop_bucket=rng.integers(0, 24 * 60, size=n).astype(np.int32),
        pop_count=counts,
        bucket_origin=NOW - 61 * DAY,
        bucket_secs=3600.0,
        fitted_at=NOW,
        method="synthetic",
        n_events=int(counts.sum()),
    )


def engine_bytes(engine: Engine) -> int:
    """Return the bytes held by the engine's arrays (features, links, tables)."""
    total = 0
    for matrix in (engine.features, engine.neighbours):
        total += matrix.data.nbytes + matrix.indices.nbytes + matrix.indptr.nbytes
    # The engine's own vectors and those of its shared signals (popularity
    # cells, creation times).
    for holder in (engine, engine.trends):
        for value in vars(holder).values():
            if isinstance(value, np.ndarray):
                total += value.nbytes
    cat = engine.catalog
    for name in ("ids", "category", "price", "rating", "year", "active", "created"):
        total += getattr(cat, name).nbytes
    return total


def history_of(items: list[int], actions: list[str]) -> History:
    """Return a History of the given events, one second apart, oldest first."""
    n = len(items)
    return History(
        item_ids=np.array(items, dtype=np.int64),
        actions=list(actions),
        weights=np.array([ACTION_WEIGHTS[a] for a in actions], dtype=np.float32),
        timestamps=NOW - np.arange(n, 0, -1, dtype=np.float64),
    )


def time_engine(
    engine: Engine, n: int, repeats: int, rng: np.random.Generator
) -> np.ndarray:
    """Return seconds per recommend() call, each after one appended event."""
    action_names = list(ACTION_WEIGHTS)
    items = rng.integers(1, n + 1, size=50).tolist()
    actions = [action_names[i] for i in rng.integers(0, 5, size=50)]
    engine.recommend(history_of(items, actions), k=10, now=NOW)  # warm the caches
    out = np.empty(repeats)
    for r in range(repeats):
        items.append(int(rng.integers(1, n + 1)))
        actions.append(action_names[int(rng.integers(0, 5))])
        items, actions = items[-HISTORY_EVENTS:], actions[-HISTORY_EVENTS:]
        history = history_of(items, actions)
        start = time.perf_counter()
        recs = engine.recommend(history, k=10, now=NOW + r)
        out[r] = time.perf_counter() - start
        assert len(recs) == 10
    return out


def time_floor(n: int, repeats: int, rng: np.random.Generator) -> np.ndarray:
    """Return seconds per bare matvec + argpartition + sort of the top 10."""
    matrix = rng.random((n, FLOOR_DIM), dtype=np.float32)
    out = np.empty(repeats)
    for r in range(repeats):
        query = rng.random(FLOOR_DIM, dtype=np.float32)
        start = time.perf_counter()
        scores = matrix @ query
        top = np.argpartition(-scores, 9)[:10]
        top = top[np.argsort(-scores[top])]
        out[r] = time.perf_counter() - start
        assert top.shape == (10,)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1000,10000,100000,1000000")
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--neighbours", type=int, default=100)
    parser.add_argument("--budget-secs", type=float, default=600.0)
    parser.add_argument(
        "--json",
        default=str(Path(__file__).resolve().parent / "results" / "engine.json"),
    )
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",") if s]
    rng = np.random.default_rng(42)
    started = time.perf_counter()
    rows = []
    last_build = None
    for n in sizes:
        spent = time.perf_counter() - started
        # Building grows about linearly with n; skip what would blow the budget.
        projected = (last_build[1] * n / last_build[0]) * 1.5 if last_build else 0.0
        if spent + projected > args.budget_secs:
            print(
                f"skip {n} items: {spent:.0f} s spent, ~{projected:.0f} s more needed"
            )
            continue
        t0 = time.perf_counter()
        engine = Engine(
            synthetic_catalog(n, rng), synthetic_behaviour(n, args.neighbours, rng)
        )
        build = time.perf_counter() - t0
        last_build = (n, time.perf_counter() - t0)
        repeats = args.repeats if n <= 100_000 else max(20, args.repeats // 5)
        eng = time_engine(engine, n, repeats, rng)
        floor = time_floor(n, repeats, rng)
        row = {
            "items": n,
            "neighbours_per_item": args.neighbours,
            "repeats": repeats,
            "engine_ms_median": float(np.median(eng) * 1000),
            "engine_ms_p95": float(np.percentile(eng, 95) * 1000),
            "floor_ms_median": float(np.median(floor) * 1000),
            "ratio": float(np.median(eng) / np.median(floor)),
            "engine_mib": engine_bytes(engine) / 2**20,
            "build_s": build,
            "rss_max_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        }
        if rows:
            prev = rows[-1]
            row["growth_per_10x"] = (
                row["engine_ms_median"] / prev["engine_ms_median"]
            ) ** (1 / np.log10(n / prev["items"]))
        rows.append(row)
        del engine
    header = (
        "| items | engine ms (p50) | engine ms (p95) | floor ms (p50) | ratio "
        "| growth /10x | engine MiB | build s | max RSS MiB |"
    )
    print(header)
    print("|" + "---|" * 9)
    for r in rows:
        growth = f"{r['growth_per_10x']:.1f}x" if "growth_per_10x" in r else "-"
        print(
            f"| {r['items']:,} | {r['engine_ms_median']:.2f} "
            f"| {r['engine_ms_p95']:.2f} "
            f"| {r['floor_ms_median']:.3f} | {r['ratio']:.1f}x | {growth} "
            f"| {r['engine_mib']:.0f} | {r['build_s']:.1f} | {r['rss_max_mib']:.0f} |"
        )
    payload = {
        "benchmark": "engine",
        "what": "Engine.recommend(k=10, with reasons) after one appended event vs "
        f"bare float32 matvec over items x {FLOOR_DIM} + argpartition",
        "machine": {
            "python": platform.python_version(),
            "numpy": np.__version__,
            "cpus": __import__("os").cpu_count(),
        },
        "results": rows,
        "seconds": time.perf_counter() - started,
    }
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(payload, indent=2) + "\n")
    print(f"wrote {out} ({payload['seconds']:.0f} s)")


if __name__ == "__main__":
    main()
