"""``manage.py revoke_api_token PREFIX``: revoke bearer tokens."""

from django.core.management.base import BaseCommand, CommandError, CommandParser

from recommender.services.tokens import token_revoke


class Command(BaseCommand):
    help = "Revoke the API token(s) whose first characters are PREFIX (see the admin)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "prefix", help="Token prefix as shown in the admin, e.g. rs_AbC12."
        )

    def handle(self, *args: object, **options: object) -> None:
        count = token_revoke(prefix=str(options["prefix"]))
        if not count:
            raise CommandError(f"no live token starts with {options['prefix']!r}")
        self.stdout.write(f"Revoked {count} token(s).")
