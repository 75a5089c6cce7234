from django.apps import AppConfig


class SyncConfig(AppConfig):
    """The generic change log, broadcast and resume service."""

    name = "sync"
    verbose_name = "Sync"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        """Register the system checks and every app's synced models (``sync.py``)."""
        from sync import checks  # noqa: F401 - registers the checks
        from sync.registry import autodiscover

        autodiscover()
