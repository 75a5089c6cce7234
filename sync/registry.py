"""The registry of synced models, in the admin's shape.

Each synced model gets one :class:`SyncedModel` (or a subclass) that carries
its wire name, its serialiser and its queryset. Apps register them in a
``sync.py`` module, which :func:`autodiscover` imports from every installed
app when the sync app is ready, as ``django.contrib.admin`` does with
``admin.py``::

    # myapp/sync.py
    import sync
    from myapp.models import Note

    @sync.register(Note)
    class NoteSync(sync.SyncedModel):
        name = "note"

        def serialize(self, obj):
            return {"id": obj.pk, "text": obj.text}

Registering wires ``post_save``/``post_delete`` so every per-object write path
(admin, API, commands, shell) records a change. Bulk writes bypass signals and
call :func:`record` with what they wrote.

A model that declares :attr:`SyncedModel.shape` (a :class:`sync.shapes.ShapeSpec`)
can be subscribed to in part. Its changes then carry a before-image: a
``pre_save`` hook reads the row as stored before the write, and
:func:`record` takes ``before=`` (or ``new=True``) from bulk writers.
"""

import json
from collections.abc import Callable, Iterable
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.db.models.signals import post_delete, post_save, pre_save
from django.forms.models import model_to_dict
from django.utils.module_loading import autodiscover_modules


class AlreadyRegistered(Exception):
    """The model is registered already."""


class NotRegistered(Exception):
    """The model is not registered with sync."""


class SyncedModel:
    """How one model reaches the change log and the clients.

    Override :attr:`name` (defaults to the model's ``model_name``),
    :meth:`serialize` (defaults to the concrete fields) and
    :meth:`get_queryset` (defaults to every row).
    """

    name: str = ""
    #: How shapes narrow this model's rows (:class:`sync.shapes.ShapeSpec`);
    #: None: clients can only follow every row.
    shape: Any = None

    def __init__(self, model: type[models.Model]) -> None:
        self.model = model
        if not self.name:
            self.name = model._meta.model_name

    def serialize(self, obj: Any) -> dict[str, Any]:
        """Return the JSON-safe ``data`` of an upsert of ``obj``."""
        # Decimals, dates and UUIDs as Django's encoder writes them.
        return json.loads(json.dumps(model_to_dict(obj), cls=DjangoJSONEncoder))

    def get_queryset(self) -> models.QuerySet:
        """Return the rows a snapshot of this model holds."""
        return self.model._default_manager.all()

    def before_image(self, obj: Any) -> dict[str, Any] | None:
        """Return what shapes read of ``obj`` as it is now (None without a shape)."""
        if self.shape is None:
            return None
        return self.shape.image(self.serialize(obj))

    def stored_image(self, pk: Any) -> dict[str, Any] | bool:
        """Return the before-image of the stored row ``pk``, or False if none."""
        obj = self.get_queryset().filter(pk=pk).first()
        if obj is None:
            return False
        return self.before_image(obj) or {}

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r} for {self.model.__name__}>"


_registry: dict[type[models.Model], SyncedModel] = {}


def register(
    model: type[models.Model],
    synced_class: type[SyncedModel] | None = None,
    *,
    name: str | None = None,
    serialize: Callable[[Any], dict[str, Any]] | None = None,
) -> Any:
    """Sync ``model`` through ``synced_class``; usable as a class decorator.

    ``register(Note, NoteSync)``, ``@register(Note)`` above the class, or
    ``register(Note, name="note", serialize=fn)`` without a class.
    """
    if synced_class is None and name is None and serialize is None:

        def decorate(cls: type[SyncedModel]) -> type[SyncedModel]:
            register(model, cls)
            return cls

        return decorate
    if model in _registry:
        raise AlreadyRegistered(f"{model.__name__} is synced already")
    if synced_class is None:
        attrs: dict[str, Any] = {"name": name or ""}
        if serialize is not None:
            attrs["serialize"] = lambda self, obj: serialize(obj)
        synced_class = type(f"{model.__name__}Sync", (SyncedModel,), attrs)
    entry = synced_class(model)
    taken = {other.name for other in _registry.values()}
    if entry.name in taken:
        raise AlreadyRegistered(f"the wire name {entry.name!r} is taken")
    _registry[model] = entry
    pre_save.connect(_before_save, sender=model, dispatch_uid=f"sync-pre-{entry.name}")
    post_save.connect(_on_save, sender=model, dispatch_uid=f"sync-save-{entry.name}")
    post_delete.connect(
        _on_delete, sender=model, dispatch_uid=f"sync-delete-{entry.name}"
    )
    return synced_class


def unregister(model: type[models.Model]) -> None:
    """Stop syncing ``model`` (tests register and drop models of their own)."""
    entry = _registry.pop(model, None)
    if entry is None:
        raise NotRegistered(model.__name__)
    pre_save.disconnect(sender=model, dispatch_uid=f"sync-pre-{entry.name}")
    post_save.disconnect(sender=model, dispatch_uid=f"sync-save-{entry.name}")
    post_delete.disconnect(sender=model, dispatch_uid=f"sync-delete-{entry.name}")


def synced(model: type[models.Model]) -> SyncedModel:
    """Return the registration of ``model``; raise :class:`NotRegistered`."""
    try:
        return _registry[model]
    except KeyError:
        raise NotRegistered(f"{model.__name__} is not synced") from None


def synced_by_name(name: str) -> SyncedModel | None:
    """Return the registration whose wire name is ``name``, or None."""
    for entry in _registry.values():
        if entry.name == name:
            return entry
    return None


def synced_models() -> list[SyncedModel]:
    """Return every registered model."""
    return list(_registry.values())


def autodiscover() -> None:
    """Import every installed app's ``sync`` module, where it registers models."""
    autodiscover_modules("sync")


def record(
    model: type[models.Model],
    objs: Iterable[Any],
    *,
    op: str = "upsert",
    before: Iterable[Any] | None = None,
    new: bool = False,
) -> list[int]:
    """Record a bulk write of ``objs`` (model instances) in the change log.

    For writes that bypass model signals (``bulk_create``, ``update()``, raw
    SQL): call it in the writing transaction with the rows as they now are;
    the broadcast goes out when it commits. With ``op="delete"``, ``objs``
    may be instances or primary keys.

    For a model with a shape, say what the rows were, so a change of a row
    that was and stays outside a client's shape is not sent to it: ``new=True``
    when every row is new, or ``before`` with one entry per object (the
    instance as it was before the write, or None for a new row). Without
    either, a change that puts a row outside a shape is sent to it as a
    ``leave`` (the row may have been in it).

    Returns
    -------
    list of int
        The sequence numbers given to the changes, in order.
    """
    from sync.services import changes_record

    entry = synced(model)
    objs = list(objs)
    if new:
        images: list[Any] = [False] * len(objs)
    elif before is not None and entry.shape is not None:
        images = [
            False if prev is None else entry.before_image(prev) for prev in before
        ]
        if len(images) != len(objs):
            raise ValueError("before must have one entry per object")
    else:
        images = [None] * len(objs)
    if op == "upsert":
        changes = [
            ("upsert", str(obj.pk), entry.serialize(obj), image)
            for obj, image in zip(objs, images, strict=True)
        ]
    elif op == "delete":
        changes = [
            ("delete", str(getattr(obj, "pk", obj)), None, image)
            for obj, image in zip(objs, images, strict=True)
        ]
    else:
        raise ValueError(f"op must be 'upsert' or 'delete', not {op!r}")
    return changes_record(model_name=entry.name, changes=changes)


def _before_save(
    sender: type[models.Model], instance: models.Model, raw: bool, **kwargs: Any
) -> None:
    # The before-image of a per-object save: the row as stored, read before
    # the write replaces it (one primary-key read, only for shaped models).
    entry = _registry.get(sender)
    if raw or entry is None or entry.shape is None:
        return
    if instance.pk is None:
        instance._sync_before = False  # type: ignore[attr-defined]
        return
    instance._sync_before = entry.stored_image(instance.pk)  # type: ignore[attr-defined]


def _on_save(
    sender: type[models.Model], instance: models.Model, raw: bool, **kwargs: Any
) -> None:
    if raw:  # loaddata: fixtures are not live changes
        return
    from sync.services import changes_record

    entry = synced(sender)
    image = instance.__dict__.pop("_sync_before", None)
    changes_record(
        model_name=entry.name,
        changes=[("upsert", str(instance.pk), entry.serialize(instance), image)],
    )


def _on_delete(
    sender: type[models.Model], instance: models.Model, **kwargs: Any
) -> None:
    entry = synced(sender)
    image = entry.before_image(instance) if entry.shape is not None else None
    record(sender, [instance], op="delete", before=[instance] if image else None)
