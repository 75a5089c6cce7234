from django.apps import AppConfig


class SyncConfig(AppConfig):
    """The generic change log, broadcast and resume service."""

    name = "sync"
    default_auto_field = "django.db.models.BigAutoField"
