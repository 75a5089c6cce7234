from django.apps import AppConfig


class SyncTestConfig(AppConfig):
    """A test-only app whose one model exercises sync (never the host's models)."""

    name = "tests.sync.testapp"
    label = "synctest"
    default_auto_field = "django.db.models.BigAutoField"
