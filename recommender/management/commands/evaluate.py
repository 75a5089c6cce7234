"""``manage.py evaluate``: offline quality of the live engine on a split.

Two protocols: static (top-k once per user from their train history) and,
with ``--replay``, the list before each of the user's test events from the
history so far (see :mod:`recommender.services.replay`).
"""

import json
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from recommender.services.evaluation import (
    METRIC_NAMES,
    EvalData,
    evaluation_load,
    evaluation_run,
    recs_write,
)
from recommender.services.replay import REPLAY_METRICS, replay_recs_write, replay_run


class Command(BaseCommand):
    help = (
        "Fit the live engine on a train split, recommend top-k for every test "
        "user (their train items excluded) and print precision, recall, F1, "
        "NDCG, hit rate and coverage. With --replay, replay each user's test "
        "events in time order instead and score the list before each one (from "
        "the history so far, through the live scoring path): HR, NDCG and MRR of "
        "the next item, how often the list changed, coverage and time per step. "
        "Runs in memory: the database is untouched."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--data", required=True, help="MovieLens directory.")
        parser.add_argument("--train", required=True, help="user,item,timestamp CSV.")
        parser.add_argument("--test", required=True, help="user,item,timestamp CSV.")
        parser.add_argument("--k", type=int, default=10, help="List length (10).")
        parser.add_argument("--json", dest="json_out", help="Write the metrics here.")
        parser.add_argument(
            "--recs-out",
            help="Write the lists here as CSV: user,item,rank (static) or "
            "user,step,rank,item (--replay).",
        )
        parser.add_argument(
            "--replay",
            action="store_true",
            help="Replay each user's test events in time order; score the list "
            "pushed before each one.",
        )
        parser.add_argument(
            "--validation",
            action="store_true",
            help="Score the last 20%% of each user's train events instead of the "
            "test file (what the defaults were tuned on).",
        )
        parser.add_argument(
            "--history-events",
            type=int,
            default=None,
            help="History window (default: settings.RECS_HISTORY_EVENTS).",
        )

    def _progress(self, message: str) -> None:
        """Print a stage or progress line of a long run (``-v 0`` silences it)."""
        if self.verbosity >= 1:
            self.stdout.write(f"  {message}")
            self.stdout.flush()

    def _replay(self, ev: EvalData, options: dict, window: int) -> None:
        """Run the replay protocol and report it."""
        k = int(options["k"])
        result = replay_run(
            ev,
            k=k,
            history_events=window,
            validation=bool(options["validation"]),
            progress=self._progress,
        )
        m = result.metrics
        names = {"hr": "HR", "ndcg": "NDCG", "mrr": "MRR"}
        header = " | ".join(
            f"{names[n]}@{k}" if n in names else n for n in REPLAY_METRICS
        )
        self.stdout.write(f"| users | steps | {header} |")
        self.stdout.write("|---" * (len(REPLAY_METRICS) + 2) + "|")
        values = " | ".join(f"{m[n]:.4f}" for n in REPLAY_METRICS)
        self.stdout.write(f"| {m['users']} | {m['steps']} | {values} |")
        self.stdout.write(
            f"fit {result.seconds['fit']:.1f} s, replay "
            f"{result.seconds['replay']:.1f} s, total {result.seconds['total']:.1f} s; "
            f"per step {result.step_ms['mean']:.2f} ms mean, "
            f"{result.step_ms['p95']:.2f} ms p95"
        )
        if options["json_out"]:
            payload = {
                "protocol": "replay",
                "metrics": m,
                "k": k,
                "split": result.params["split"],
                "params": result.params,
                "seconds": result.seconds,
                "step_ms": result.step_ms,
            }
            Path(options["json_out"]).write_text(json.dumps(payload, indent=2) + "\n")
        if options["recs_out"]:
            replay_recs_write(result, options["recs_out"])

    def handle(self, *args: object, **options: object) -> None:
        self.verbosity = int(options["verbosity"])
        if int(options["k"]) < 1:
            raise CommandError("--k must be at least 1")
        window = options["history_events"] or settings.RECS_HISTORY_EVENTS
        try:
            ev = evaluation_load(options["data"], options["train"], options["test"])
        except (FileNotFoundError, ValueError) as exc:
            raise CommandError(str(exc)) from exc
        if self.verbosity >= 1:
            self.stdout.write(
                f"{ev.train.users.size} train / {ev.test.users.size} test rows; "
                f"history window {window} events; k={options['k']}"
                + ("; replay" if options["replay"] else "")
            )
        if options["replay"]:
            self._replay(ev, options, int(window))
            return
        result = evaluation_run(
            ev,
            k=int(options["k"]),
            history_events=int(window),
            validation=bool(options["validation"]),
            progress=self._progress,
        )
        k = options["k"]
        m = result.metrics
        header = " | ".join(f"{name}@{k}" for name in METRIC_NAMES)
        self.stdout.write(f"| users | {header} |")
        self.stdout.write("|---" * (len(METRIC_NAMES) + 1) + "|")
        values = " | ".join(f"{m[name]:.4f}" for name in METRIC_NAMES)
        self.stdout.write(f"| {m['users']} | {values} |")
        self.stdout.write(
            f"fit {result.seconds['fit']:.1f} s, recommend "
            f"{result.seconds['recommend']:.1f} s, "
            f"total {result.seconds['total']:.1f} s; "
            f"per-user scoring {result.scoring_ms['p50']:.2f} ms median, "
            f"{result.scoring_ms['p95']:.2f} ms p95"
        )
        if options["json_out"]:
            payload = {
                "metrics": m,
                "k": k,
                "split": result.params["split"],
                "params": result.params,
                "seconds": result.seconds,
                "scoring_ms": result.scoring_ms,
            }
            Path(options["json_out"]).write_text(json.dumps(payload, indent=2) + "\n")
        if options["recs_out"]:
            recs_write(result, options["recs_out"])
