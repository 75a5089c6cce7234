"""Keep Django models in sync with every connected client.

The public API, importable before the app registry is ready (names load on
first use): :func:`snapshot_at_seq`, :func:`record`, :func:`reset_point`, :class:`SyncedModel`,
:func:`register`, :func:`unregister`, and the shape declarations
:class:`ShapeSpec`, :class:`Exact`, :class:`AtLeast`, :class:`AtMost`,
:class:`Words`.
"""

from typing import Any

__all__ = [
    "AtLeast",
    "AtMost",
    "Exact",
    "ShapeSpec",
    "SyncedModel",
    "Words",
    "record",
    "register",
    "reset_point",
    "snapshot_at_seq",
    "unregister",
]

_LAZY = {
    "snapshot_at_seq": "sync.snapshots",
    "reset_point": "sync.snapshots",
    "SyncedModel": "sync.registry",
    "record": "sync.registry",
    "register": "sync.registry",
    "unregister": "sync.registry",
    "AtLeast": "sync.shapes",
    "AtMost": "sync.shapes",
    "Exact": "sync.shapes",
    "ShapeSpec": "sync.shapes",
    "Words": "sync.shapes",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'sync' has no attribute {name!r}")
    from importlib import import_module

    return getattr(import_module(module), name)
