"""``manage.py create_api_token USER``: issue a bearer token for POST /api/events/."""

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from recommender.services.tokens import token_create


class Command(BaseCommand):
    help = (
        "Create an API token owned by USER and print it once; only its hash is stored."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("user", help="Username that owns the token.")
        parser.add_argument("--name", default="default", help="What the token is for.")

    def handle(self, *args: object, **options: object) -> None:
        try:
            issued = token_create(
                username=str(options["user"]), name=str(options["name"])
            )
        except get_user_model().DoesNotExist:
            raise CommandError(f"no user named {options['user']!r}") from None
        if options["verbosity"] > 1:
            self.stderr.write(
                f"Token {issued.record.name!r} ({issued.record.prefix}…) created."
            )
        self.stdout.write(issued.token)
