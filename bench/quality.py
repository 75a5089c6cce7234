"""bench/quality: recsite's live engine against the peer baselines, from ../shared.

Runs the same code as ``manage.py evaluate`` (no database) on the shared
temporal split of MovieLens latest-small and prints the docs/evaluation.md
tables:

* **static**: recsite next to every peer of ``peers/peers.json`` (P, R, F1,
  NDCG, hit rate, coverage @10), top-10 once per user from train;
* **replay** (``manage.py evaluate --replay``): before each test event, the
  list from the history so far; HR, NDCG, MRR @10 of the next item, how often
  the list changed, coverage and time per step.

Order-aware peers scored by the *same* code (EASE with a live recency-weighted
profile, SLIST) come from ``bench/peers.py`` when it exists: it provides
``peers_fit(ev, train, ratings) -> dict[name, engine]`` where each engine has
``params`` (a dataclass) and the :class:`~recommender.engine.Engine` methods
``recommend(history, *, k, now, exclude=None, with_reasons=True)`` and
``recommend_many(histories, *, k, now, exclude=None, with_reasons=True)``
(``now`` and ``exclude`` one per history). Both tables then list them, and
the figures the data set's ``peers/order-aware.md`` reports are printed for
reference. Optional extras, all on the *validation* split carved from train
(the test file is never used to choose anything):

* ``--ablations``: the engine with one part switched off at a time;
* ``--tune``: the coordinate search that chose the ``ScoreParams`` defaults.

    .venv/bin/python bench/quality.py [--data DIR] [--no-replay] [--no-peers]
        [--ablations] [--tune] [--json bench/results/quality.json]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "recsite.settings")
os.environ.setdefault("DJANGO_DEBUG", "1")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402

from recommender.engine import FitParams, ScoreParams  # noqa: E402
from recommender.services.evaluation import (  # noqa: E402
    EvalData,
    evaluation_engine,
    evaluation_load,
    evaluation_run,
    temporal_split,
    train_ratings,
)
from recommender.services.replay import REPLAY_METRICS, replay_run  # noqa: E402

DEFAULT_DATA = ROOT.parent / "shared" / "datasets" / "ml-latest-small"
COLUMNS = ["precision", "recall", "f1", "ndcg", "hit_rate", "coverage"]

ABLATIONS: dict[str, tuple[FitParams, ScoreParams]] = {
    "recsite (defaults)": (FitParams(), ScoreParams()),
    "no recency (uniform history)": (
        FitParams(),
        replace(ScoreParams(), history_half_life_events=1e9),
    ),
    "no action weights": (FitParams(), replace(ScoreParams(), action_power=0.0)),
    "action weights squared (before)": (
        FitParams(),
        replace(ScoreParams(), action_power=2.0),
    ),
    "no content term": (FitParams(), replace(ScoreParams(), content_weight=0.0)),
    "no new-item term": (FitParams(), replace(ScoreParams(), new_weight=0.0)),
    "+ popularity 0.1": (FitParams(), replace(ScoreParams(), popularity_weight=0.1)),
    "l1-normalised rows (SLIST reference code)": (
        FitParams(sequence_normalise="l1", sequence_lambda_scales=(0.25, 0.5, 1, 2)),
        ScoreParams(),
    ),
    "one position scale, tau 2 (SLIST)": (
        FitParams(sequence_tau=2.0, sequence_tau_target=None),
        ScoreParams(),
    ),
    "fixed ridge 4 x mean diagonal (no carve-out)": (
        FitParams(sequence_lambda=4.0, sequence_lambda_scales=()),
        ScoreParams(),
    ),
    "previous order-aware fit (l1, lambda 30, tau 2)": (
        FitParams(
            sequence_normalise="l1",
            sequence_lambda=30.0,
            sequence_lambda_relative=False,
            sequence_tau=2.0,
            sequence_tau_target=None,
        ),
        ScoreParams(),
    ),
    "EASE instead of the order-aware model": (FitParams(method="ease"), ScoreParams()),
    "50 neighbours/item": (FitParams(neighbours=50), ScoreParams()),
    "500 neighbours/item": (FitParams(neighbours=500), ScoreParams()),
}

TUNE_GRID: dict[str, list[float]] = {
    "history_half_life_events": [3, 5, 8, 10, 20, 40, 80, 1e9],
    "action_power": [0, 0.5, 1, 2, 3],
    "content_weight": [0, 0.02, 0.05, 0.1, 0.2, 0.35, 0.5],
    "popularity_weight": [0, 0.02, 0.05, 0.1, 0.2, 0.4],
    "popularity_half_life_days": [1, 3, 10, 30, 90, 365],
    "new_weight": [0, 0.01, 0.02, 0.05, 0.1],
    "new_half_life_days": [30, 90, 180, 365, 1000],
}


def row(name: str, m: dict[str, float], extra: str = "") -> str:
    """Return one markdown table row."""
    cells = " | ".join(f"{m[c]:.4f}" for c in COLUMNS)
    return f"| {name} | {cells} | {extra} |"


def header(first: str, last: str) -> str:
    """Return a markdown table header."""
    names = " | ".join(f"{c}@10" for c in COLUMNS)
    return f"| {first} | {names} | {last} |\n|---" + "|---" * (len(COLUMNS) + 1) + "|"


def live_peers(ev: EvalData) -> dict[str, object]:
    """Return the order-aware peers of bench/peers.py fitted on train, if any."""
    path = ROOT / "bench" / "peers.py"
    if not path.exists():
        print("(bench/peers.py absent: no order-aware peers scored live)")
        return {}
    spec = importlib.util.spec_from_file_location("bench_peers", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.peers_fit(ev, ev.train, ev.ratings)


def main_table(ev: EvalData, peers: dict, window: int, live: dict[str, object]) -> dict:
    """Print recsite vs the peers on the test split; return recsite's run."""
    result = evaluation_run(ev, k=10, history_events=window)
    print(header("method", "fit+rec s"))
    print(
        row(
            "**recsite** (live engine)",
            result.metrics,
            f"{result.seconds['total']:.1f}",
        )
    )
    measured = {}
    for name, engine in live.items():
        run = evaluation_run(ev, k=10, history_events=window, engine=engine)
        measured[name] = run.metrics
        print(row(f"{name} (same code)", run.metrics, f"{run.seconds['total']:.1f}"))
    for name, peer in sorted(peers.items(), key=lambda kv: -kv[1]["metrics"]["ndcg"]):
        m = peer["metrics"]
        print(row(name, m, f"{m.get('seconds_fit_recommend', float('nan')):.1f}"))
    best = max(peers.values(), key=lambda p: p["metrics"]["ndcg"])["metrics"]
    print(
        f"\nrecsite / best peer: NDCG x{result.metrics['ndcg'] / best['ndcg']:.3f}, "
        f"P x{result.metrics['precision'] / best['precision']:.3f}; per-user scoring "
        f"{result.scoring_ms['p50']:.2f} ms median, "
        f"{result.scoring_ms['p95']:.2f} ms p95"
    )
    return {
        "metrics": result.metrics,
        "seconds": result.seconds,
        "scoring_ms": result.scoring_ms,
        "params": result.params,
        "live_peers": measured,
    }


def replay_table(ev: EvalData, window: int, live: dict[str, object]) -> dict:
    """Print the replay of recsite and the live peers on the test split."""
    names = {"hr": "HR@10", "ndcg": "NDCG@10", "mrr": "MRR@10"}
    columns = " | ".join(names.get(n, n) for n in REPLAY_METRICS)
    print("\nReplay (before each test event, the list from the history so far):")
    print(f"| method | {columns} | ms/step |")
    print("|---" * (len(REPLAY_METRICS) + 2) + "|")
    out = {}
    for name, engine in [("**recsite** (live engine)", None), *live.items()]:
        r = replay_run(ev, k=10, history_events=window, engine=engine)
        cells = " | ".join(f"{r.metrics[n]:.4f}" for n in REPLAY_METRICS)
        print(f"| {name} | {cells} | {r.step_ms['mean']:.2f} |", flush=True)
        out[name] = {"metrics": r.metrics, "step_ms": r.step_ms, "seconds": r.seconds}
    return out


def reported_order_aware(data: Path) -> None:
    """Print the order-aware peers' figures as the data set's peers file reports them."""
    path = data / "peers" / "order-aware.md"
    if path.exists():
        print(f"\nReported in {path.name} (same split; for reference):")
        print(path.read_text().strip())


def ablations(ev: EvalData, window: int) -> dict:
    """Print the validation metrics of the engine with parts switched off."""
    print("\nAblations (validation split carved from train):")
    print(header("variant", "fit s"))
    out = {}
    for name, (fit, score) in ABLATIONS.items():
        r = evaluation_run(
            ev,
            k=10,
            history_events=window,
            validation=True,
            fit_params=fit,
            score_params=score,
        )
        print(row(name, r.metrics, f"{r.seconds['fit']:.1f}"), flush=True)
        out[name] = r.metrics
    return out


def tune(ev: EvalData, window: int) -> dict:
    """Coordinate search of ScoreParams on validation (two passes)."""
    train, _ = temporal_split(ev.train)
    engine, _ = evaluation_engine(
        ev,
        train,
        train_ratings(ev.data, train),
        fit_params=FitParams(),
        score_params=None,
        progress=lambda _: None,
    )
    base = ScoreParams()

    def score(params: ScoreParams) -> dict[str, float]:
        run = evaluation_run(
            ev,
            k=10,
            history_events=window,
            validation=True,
            engine=engine.with_params(params),
        )
        return run.metrics

    best = score(base)
    print(f"\nTuning on validation; start NDCG {best['ndcg']:.4f}")
    for _ in range(2):
        for name, values in TUNE_GRID.items():
            results = [(score(replace(base, **{name: v}))["ndcg"], v) for v in values]
            _, value = max(results)
            print(f"  {name}: " + ", ".join(f"{v:g}->{n:.4f}" for n, v in results))
            base = replace(base, **{name: value})
    print(f"best: {base}")
    return asdict(base)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=str(DEFAULT_DATA))
    parser.add_argument("--no-replay", action="store_true", help="Static only.")
    parser.add_argument("--no-peers", action="store_true", help="Skip bench/peers.py.")
    parser.add_argument("--ablations", action="store_true")
    parser.add_argument("--tune", action="store_true")
    parser.add_argument(
        "--json", default=str(ROOT / "bench" / "results" / "quality.json")
    )
    args = parser.parse_args()
    data = Path(args.data)
    if not (data / "split" / "train.csv").exists():
        sys.exit(f"no shared split under {data}")
    started = time.perf_counter()
    ev = evaluation_load(
        data, data / "split" / "train.csv", data / "split" / "test.csv"
    )
    peers = json.loads((data / "peers" / "peers.json").read_text())["results"]
    window = settings.RECS_HISTORY_EVENTS
    live = {} if args.no_peers else live_peers(ev)
    payload: dict = {
        "history_events": window,
        "recsite": main_table(ev, peers, window, live),
    }
    payload["peers"] = {name: p["metrics"] for name, p in peers.items()}
    if not args.no_replay:
        payload["replay"] = replay_table(ev, window, live)
    reported_order_aware(data)
    if args.ablations:
        payload["ablations_validation"] = ablations(ev, window)
    if args.tune:
        payload["tuned_validation"] = tune(ev, window)
    payload["seconds"] = time.perf_counter() - started
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(payload, indent=2, default=str) + "\n")
    print(f"\nwrote {out} ({payload['seconds']:.0f} s)")


if __name__ == "__main__":
    main()
