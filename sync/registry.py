"""The registry of synced models: which models reach the change log, and how.

An app registers a model in its ``AppConfig.ready()`` with a name and a
serialiser; the registry wires ``post_save``/``post_delete`` so every per-object
write path (admin, API, commands, shell) records a change. Bulk writes bypass
signals and call :func:`sync.services.changes_record` themselves.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.db import models
from django.db.models.signals import post_delete, post_save


@dataclass(frozen=True)
class SyncedModel:
    name: str
    model: type[models.Model]
    serialize: Callable[[Any], dict[str, Any]]


_registry: dict[type[models.Model], SyncedModel] = {}


def register(
    model: type[models.Model], *, name: str, serialize: Callable[[Any], dict[str, Any]]
) -> None:
    """Record every save and delete of ``model`` in the change log as ``name``."""
    entry = SyncedModel(name=name, model=model, serialize=serialize)
    _registry[model] = entry
    post_save.connect(_on_save, sender=model, dispatch_uid=f"sync-save-{name}")
    post_delete.connect(_on_delete, sender=model, dispatch_uid=f"sync-delete-{name}")


def synced_models() -> list[SyncedModel]:
    """Return every registered model."""
    return list(_registry.values())


def _on_save(
    sender: type[models.Model], instance: models.Model, raw: bool, **kwargs: Any
) -> None:
    if raw:  # loaddata: fixtures are not live changes
        return
    from sync.services import changes_record

    entry = _registry[sender]
    changes_record(
        model_name=entry.name,
        changes=[("upsert", str(instance.pk), entry.serialize(instance))],
    )


def _on_delete(
    sender: type[models.Model], instance: models.Model, **kwargs: Any
) -> None:
    from sync.services import changes_record

    entry = _registry[sender]
    changes_record(model_name=entry.name, changes=[("delete", str(instance.pk), None)])
