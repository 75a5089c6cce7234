"""``manage.py import_movielens DIR``: load a MovieLens data set, then refit."""

import time

from django.core.management.base import BaseCommand, CommandError, CommandParser

from recommender.services.movielens import movielens_import


class Command(BaseCommand):
    help = (
        "Import a MovieLens directory (100K: u.data/u.item/u.user, or CSV: "
        "ratings.csv/movies.csv/tags.csv) as categories, items, users and "
        "timestamped browsing events, then refit the engine. Idempotent."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("directory", help="The MovieLens directory.")
        parser.add_argument(
            "--batch-size", type=int, default=5000, help="Rows per INSERT (5000)."
        )
        parser.add_argument(
            "--no-refit",
            action="store_true",
            help="Skip refitting the engine after the import.",
        )

    def _progress(self, message: str) -> None:
        """Print a stage message: level 1 shows stages, level 2 every batch."""
        if self.verbosity >= 2 or (
            self.verbosity == 1 and not message.startswith("events ")
        ):
            self.stdout.write(f"  {message}")
            self.stdout.flush()

    def handle(self, *args: object, **options: object) -> None:
        self.verbosity = int(options["verbosity"])
        try:
            result = movielens_import(
                options["directory"],
                batch_size=int(options["batch_size"]),
                progress=self._progress,
            )
        except (FileNotFoundError, ValueError) as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(
            f"Imported {result.categories} categories, {result.items} items, "
            f"{result.users} users, {result.events} events in {result.seconds:.1f} s."
        )
        if options["no_refit"]:
            return
        from recommender.services.recompute import model_refit

        started = time.perf_counter()
        self.stdout.write("Refitting the engine…", ending="")
        self.stdout.flush()
        record = model_refit(progress=self._progress if self.verbosity >= 2 else None)
        self.stdout.write(
            f" OK ({time.perf_counter() - started:.1f} s, model #{record.pk}, "
            f"{record.n_events} events)"
        )
