"""``manage.py online_report``: CTR and online precision@k for a period."""

import json
from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone
from django.utils.dateparse import parse_datetime

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

    def handle(self, *args: object, **options: object) -> None:
        now = timezone.now()
        since_text = str(options["since"])
        since = parse_datetime(since_text) or now - _duration(since_text)
        until = parse_datetime(str(options["until"])) if options["until"] else now
        if until is None:
            raise CommandError(f"--until {options['until']!r} is not an ISO time")
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
