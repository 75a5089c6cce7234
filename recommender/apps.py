from django.apps import AppConfig


class RecommenderConfig(AppConfig):
    """The catalog, browsing events and the recommendation engine."""

    name = "recommender"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        """Connect the app's receivers (``recommender/sync.py`` registers Item)."""
        from recommender import receivers  # noqa: F401 - connects the login merge
