"""``manage.py online_report``: CTR and online precision@k for a period."""

import json
from datetime import datetime, timedelta

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from recommender.services.experiments import (
    ExperimentReport,
    UnknownExperiment,
    experiment_report,
)
from recommender.services.online import online_report


def _duration(text: str) -> timedelta:
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    try:
        return timedelta(seconds=float(text[:-1]) * units[text[-1]])
    except (KeyError, ValueError, IndexError):
        raise CommandError(f"{text!r} is not a duration like 30m, 24h or 7d") from None


class Command(BaseCommand):
    help = (
        "Print CTR and online precision@k of the recommendation lists shown in a period "
        "(definitions in docs/evaluation.md)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--since", default="24h", help="Start: a duration ago or ISO time."
        )
        parser.add_argument("--until", default="", help="End: ISO time (default now).")
        parser.add_argument(
            "--window", default="30m", help="How long after a list counts."
        )
        parser.add_argument("--k", type=int, default=10)
        parser.add_argument("--json", action="store_true", help="Print JSON.")
        parser.add_argument(
            "--experiment",
            default="",
            metavar="NAME",
            help="Split the figures by the experiment's variants, each compared "
            "with the first (a confidence interval on the difference).",
        )

    def handle(self, *args: object, **options: object) -> None:
        now = timezone.now()
        since_text = str(options["since"])
        since = parse_datetime(since_text) or now - _duration(since_text)
        until = parse_datetime(str(options["until"])) if options["until"] else now
        if until is None:
            raise CommandError(f"--until {options['until']!r} is not an ISO time")
        if options["experiment"]:
            self._experiment(str(options["experiment"]), since, until, options)
            return
        report = online_report(
            since=since,
            until=until,
            window=_duration(str(options["window"])),
            k=int(options["k"]),
        )
        if options["json"]:
            self.stdout.write(json.dumps(report.as_dict(), indent=2))
            return
        self.stdout.write(f"Period        {report.since} … {report.until}")
        self.stdout.write(f"Lists shown   {report.lists}")
        self.stdout.write(f"Impressions   {report.impressions}")
        self.stdout.write(f"Clicks        {report.clicks}")
        self.stdout.write(f"CTR           {report.ctr:.4f}")
        self.stdout.write(f"Precision@{report.k:<3} {report.precision_at_k:.4f}")

    def _experiment(
        self, name: str, since: datetime, until: datetime, options: dict
    ) -> None:
        try:
            report = experiment_report(
                name=name,
                since=since,
                until=until,
                window=_duration(str(options["window"])),
                k=int(options["k"]),
            )
        except UnknownExperiment:
            raise CommandError(f"no experiment is named {name!r}") from None
        if options["json"]:
            self.stdout.write(json.dumps(report.as_dict(), indent=2))
            return
        self.stdout.write(_experiment_table(report))


def _experiment_table(report: ExperimentReport) -> str:
    """Return the per-variant figures as a fixed-width table."""
    level = f"{report.confidence:.0%}"
    lines = [
        f"Experiment    {report.experiment} (baseline: {report.baseline})",
        f"Period        {report.since} … {report.until}",
        f"Window        {report.window_secs:g} s, k = {report.k}",
        "",
        f"{'variant':<16}{'share':>6}{'users':>7}{'impr.':>8}{'CTR':>8}"
        f"{'P@' + str(report.k):>8}{'cart':>8}{'purchase':>9}",
    ]
    for v in report.variants:
        lines.append(
            f"{v.name:<16}{v.share:>6.2f}{v.users:>7}{v.impressions:>8}"
            f"{v.ctr:>8.4f}{v.precision_at_k:>8.4f}{v.cart_rate:>8.4f}"
            f"{v.purchase_rate:>9.4f}"
        )
    for v in report.variants[1:]:
        lines.append("")
        lines.append(f"{v.name} - {report.baseline} ({level} interval):")
        for metric, d in v.vs_baseline.items():
            interval = (
                f"[{d.low:+.4f}, {d.high:+.4f}]"
                if d.low is not None and d.high is not None
                else "(too few users)"
            )
            lines.append(f"  {metric:<16}{d.difference:+.4f}  {interval}")
    return "\n".join(lines)
