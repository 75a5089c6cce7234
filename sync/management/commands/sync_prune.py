"""``manage.py sync_prune``: trim the change log to its configured size and age."""

from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError

from sync.selectors import seq_latest
from sync.services import changelog_prune


class Command(BaseCommand):
    help = (
        "Delete change-log rows beyond SYNC_CHANGELOG_MAX_ROWS and older than "
        "SYNC_CHANGELOG_MAX_AGE_SECS. Writes prune as they go; run this after "
        "lowering either setting or from cron on a quiet site. Clients that "
        "resume from before the oldest kept row get a reset."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            deleted = changelog_prune(latest=seq_latest())
        except DatabaseError as exc:
            raise CommandError(f"could not prune the change log: {exc}") from exc
        if options["verbosity"] >= 1:
            self.stdout.write(f"Deleted {deleted} change-log rows.")
