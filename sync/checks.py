"""System checks of the sync app's settings and installation (``manage.py check``)."""

from numbers import Real
from typing import Any

from django.conf import settings
from django.core.checks import Error, Tags, Warning, register

from sync.conf import POSITIVE, sync_settings


@register(Tags.compatibility)
def check_settings(app_configs: Any = None, **kwargs: Any) -> list[Error | Warning]:
    """Return an error for each sync setting that is not a positive number."""
    errors: list[Error | Warning] = []
    for name in POSITIVE:
        value = getattr(sync_settings, name)
        if isinstance(value, bool) or not isinstance(value, Real) or value <= 0:
            errors.append(
                Error(
                    f"{name} must be a positive number, not {value!r}.",
                    hint=f"Set {name} in your settings or remove it for the default.",
                    id="sync.E001",
                )
            )
    if "channels" not in settings.INSTALLED_APPS:
        errors.append(
            Error(
                "sync needs Channels: add 'channels' to INSTALLED_APPS.",
                id="sync.E002",
            )
        )
    if not getattr(settings, "CHANNEL_LAYERS", None):
        errors.append(
            Warning(
                "CHANNEL_LAYERS is not set: changes reach no socket.",
                hint="Use channels_redis with several processes, or the "
                "in-memory layer for a single one.",
                id="sync.W001",
            )
        )
    return errors
