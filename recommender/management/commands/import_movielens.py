"""``manage.py import_movielens DIR``: load a MovieLens data set, then refit."""

import time

from django.core.management.base import BaseCommand, CommandError, CommandParser

from recommender.services.movielens_import import movielens_import


class Command(BaseCommand):
    help = (
        "Import a MovieLens directory (100K: u.data/u.item/u.user, or CSV: "
        "ratings.csv/movies.csv/tags.csv) as categories, items, users and "
        "timestamped browsing events, then refit the engine. Idempotent. "
        "Refuses a catalog that holds other items unless --into-existing."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("directory", help="The MovieLens directory.")
        parser.add_argument(
            "--batch-size", type=int, default=5000, help="Rows per INSERT (5000)."
        )
        parser.add_argument(
            "--into-existing",
            action="store_true",
            help=(
                "Import even though the catalog already holds items that are not "
                "from MovieLens (genres become categories, films cost $0.00)."
            ),
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
        from recommender.models import Item

        # A rerun finds only its own ("ml:") items; anything else is another
        # catalog (the demo shop) that films would be mixed into.
        others = Item.objects.exclude(external_id__startswith="ml:").count()
        if others and not options["into_existing"]:
            raise CommandError(
                f"The catalog already holds {others} items that are not from "
                "MovieLens (the demo shop?). Importing would add its film genres "
                "as categories and its films at $0.00 next to them. Import into "
                "an empty database (e.g. another DATABASE_URL, or `make clean` "
                "and migrate), or pass --into-existing to mix them on purpose."
            )
        if others:
            self.stderr.write(
                f"Warning: mixing MovieLens into a catalog of {others} other items: "
                "its genres become categories and its films cost $0.00."
            )
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
