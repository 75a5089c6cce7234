from django.apps import AppConfig


class RecommenderConfig(AppConfig):
    """The catalog, browsing events and the recommendation engine."""

    name = "recommender"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        """Register the catalog with the change log."""
        from recommender import receivers  # noqa: F401 - connects the login merge
        from recommender.models import Item
        from recommender.serializers import item_to_dict
        from sync import registry

        registry.register(Item, name="item", serialize=item_to_dict)
