"""``manage.py recompute_recommendations``: refit the engine, rescore, push."""

import time

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from recommender.services.recompute import model_refit, users_recompute


class Command(BaseCommand):
    help = (
        "Refit the engine's batch part (item neighbours, popularity) on every stored "
        "event, then recompute and push the recommendations of all users or one."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--user", help="Only this username (the model is still refitted)."
        )
        parser.add_argument(
            "--no-refit",
            action="store_true",
            help="Rescore with the current fitted model.",
        )

    def _progress(self, message: str) -> None:
        if self.verbosity > 0:
            self.stdout.write(message)
            self.stdout.flush()

    def handle(self, *args: object, **options: object) -> None:
        self.verbosity = int(options["verbosity"])
        user_ids = None
        if options["user"]:
            user = get_user_model().objects.filter(username=options["user"]).first()
            if user is None:
                raise CommandError(f"no user named {options['user']!r}")
            user_ids = [user.pk]
        started = time.perf_counter()
        if not options["no_refit"]:
            record = model_refit(progress=self._progress)
            self._progress(f"Fitted model #{record.pk} in {record.fit_ms:.0f} ms.")
        count = users_recompute(user_ids=user_ids, progress=self._progress)
        elapsed = time.perf_counter() - started
        self.stdout.write(f"Recomputed and pushed {count} users in {elapsed:.1f} s.")
