"""``manage.py evaluate``: offline quality of the live engine on a split.

Two protocols: static (top-k once per user from their train history) and,
with ``--replay``, the list before each of the user's test events from the
history so far (see :mod:`recommender.services.replay`). With
``--experiment NAME``, every variant of a staff experiment is scored on the
same split, one row each, beside its online figures (see
:mod:`recommender.services.evaluation_variants`).
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
from recommender.services.evaluation_variants import (
    ExperimentEvaluation,
    evaluation_variants_run,
)
from recommender.services.experiments import UnknownExperiment
from recommender.services.replay import REPLAY_METRICS, replay_recs_write, replay_run


class Command(BaseCommand):
    help = (
        "Fit the live engine on a train split, recommend top-k for every test "
        "user (their train items excluded) and print precision, recall, F1, "
        "NDCG, hit rate and coverage. With --replay, replay each user's test "
        "events in time order instead and score the list before each one (from "
        "the history so far, through the live scoring path): HR, NDCG and MRR of "
        "the next item, how often the list changed, coverage and time per step. "
        "With --experiment NAME, score every variant of that experiment (its "
        "engine parameters and rules) on the same split, one row each, beside "
        "its online figures. Runs in memory: the database is only read."
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
            "--experiment",
            default="",
            metavar="NAME",
            help="Score every variant of this experiment (its engine parameters "
            "and for_you rules, as the live socket ranks its users) on the same "
            "split: one row per variant, the difference to the first (the "
            "baseline), and the experiment's online figures beside them.",
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
        if options["experiment"]:
            self._experiment(ev, options, int(window))
            return
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

    def _experiment(self, ev: EvalData, options: dict, window: int) -> None:
        """Score every variant of an experiment and report them side by side."""
        if options["recs_out"]:
            raise CommandError(
                "--recs-out writes one run's lists: not with --experiment"
            )
        try:
            result = evaluation_variants_run(
                ev,
                experiment=str(options["experiment"]),
                k=int(options["k"]),
                history_events=window,
                validation=bool(options["validation"]),
                replay=bool(options["replay"]),
                progress=self._progress,
            )
        except UnknownExperiment:
            raise CommandError(
                f"no experiment is named {options['experiment']!r}"
            ) from None
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(_variants_table(result))
        if options["json_out"]:
            Path(options["json_out"]).write_text(
                json.dumps(result.as_dict(), indent=2) + "\n"
            )


def _variants_table(result: ExperimentEvaluation) -> str:
    """Return one Markdown row per variant, the differences and the online figures."""
    k = result.k
    short = (
        {"hr": "HR", "ndcg": "NDCG", "mrr": "MRR"}
        if result.protocol == "replay"
        else {}
    )
    metric_heads = [f"{short.get(n, n)}@{k}" for n in result.metric_names]
    count = "steps" if result.protocol == "replay" else "users"
    online = result.online
    online_heads = (
        ["online users", "online CTR", f"online P@{online.k}"] if online else []
    )
    heads = ["variant", "share", "rules", count, *metric_heads, *online_heads]
    lines = [
        f"Experiment {result.experiment} (baseline: {result.baseline}); "
        f"{result.protocol} protocol on the {result.split} split, k = {k}, "
        f"history window {result.history_events} events",
        "",
        "| " + " | ".join(heads) + " |",
        "|---" * len(heads) + "|",
    ]
    by_name = {v.name: v for v in online.variants} if online else {}
    for v in result.variants:
        cells = [
            v.name,
            f"{v.share:.2f}",
            str(len(v.rules)),
            str(int(v.metrics.get(count, 0))),
            *(f"{v.metrics[n]:.4f}" for n in result.metric_names),
        ]
        if online:
            seen = by_name.get(v.name)
            cells += (
                [str(seen.users), f"{seen.ctr:.4f}", f"{seen.precision_at_k:.4f}"]
                if seen
                else ["0", "-", "-"]
            )
        lines.append("| " + " | ".join(cells) + " |")
    for v in result.variants[1:]:
        diffs = ", ".join(
            f"{short.get(n, n)} {v.vs_baseline[n]:+.4f}" for n in result.metric_names
        )
        lines.append(f"{v.name} - {result.baseline}: {diffs}")
    for v in result.variants:
        if v.params:
            lines.append(f"{v.name} engine parameters: {json.dumps(v.params)}")
        if v.rules:
            lines.append(f"{v.name} rules: {', '.join(v.rules)}")
        if v.rules_unmatched:
            lines.append(
                f"{v.name}: rules selecting no item of this data set: "
                f"{', '.join(v.rules_unmatched)}"
            )
    if online:
        lines.append(
            f"online: lists shown {online.since} … {online.until}, window "
            f"{online.window_secs:g} s (manage.py online_report --experiment "
            f"{result.experiment} for the intervals)"
        )
    lines.append(
        f"fit {result.seconds['fit']:.1f} s, total {result.seconds['total']:.1f} s"
    )
    return "\n".join(lines)
