from django.apps import AppConfig


class RecsiteConfig(AppConfig):
    """The project shell: counts what the apps report through their signals."""

    name = "recsite"
    verbose_name = "recsite"

    def ready(self) -> None:
        """Connect the receivers of sync's and recommender's signals."""
        from recsite import (
            recommender_hooks,  # noqa: F401 - connects recommender's signals
            sync_hooks,  # noqa: F401 - connects sync's signals
        )
