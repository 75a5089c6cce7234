"""``manage.py seed_demo``: a deterministic demo catalog with shoppers."""

import time

from django.core.management.base import BaseCommand, CommandParser

from recommender.services.demo import demo_accounts_ensure, demo_seed
from recommender.services.recompute import model_refit


class Command(BaseCommand):
    help = (
        "Create a deterministic demo catalog (departments, items with tags, prices and "
        "ratings) and shoppers with browsing histories, then fit the engine."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--items", type=int, default=600, help="Catalog size (default 600)."
        )
        parser.add_argument(
            "--users", type=int, default=60, help="Shoppers (default 60)."
        )
        parser.add_argument(
            "--accounts",
            action="store_true",
            help="Also create the 'staff' and 'shopper' logins and print their passwords.",
        )

    def _progress(self, message: str) -> None:
        if self.verbosity > 1:
            self.stdout.write(message)
            self.stdout.flush()

    def handle(self, *args: object, **options: object) -> None:
        self.verbosity = int(options["verbosity"])
        started = time.perf_counter()
        counts = demo_seed(
            n_items=int(options["items"]),
            n_users=int(options["users"]),
            progress=self._progress,
        )
        if self.verbosity > 0:
            self.stdout.write("Fitting the engine… ", ending="")
            self.stdout.flush()
        record = model_refit(progress=self._progress)
        if self.verbosity > 0:
            self.stdout.write(f"OK ({record.fit_ms:.0f} ms)")
            self.stdout.write(
                "Created {categories} categories, {items} items, {users} shoppers, "
                "{events} events in {secs:.1f} s.".format(
                    secs=time.perf_counter() - started, **counts
                )
            )
        if options["accounts"]:
            for username, password in demo_accounts_ensure().items():
                self.stdout.write(f"  login: {username} / {password}")
