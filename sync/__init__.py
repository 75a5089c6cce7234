"""Keep Django models in sync with every connected client.

The public API, importable before the app registry is ready (names load on
first use): :func:`snapshot_at_seq`, :func:`record`, :class:`SyncedModel`,
:func:`register`.
"""

from typing import Any

__all__ = ["snapshot_at_seq"]

_LAZY = {
    "snapshot_at_seq": "sync.snapshots",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'sync' has no attribute {name!r}")
    from importlib import import_module

    return getattr(import_module(module), name)
