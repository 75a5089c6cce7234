"""The typed messages a :class:`~recsite_client.CatalogStream` yields.

Every change carries ``seq``, the server's change-log number: consecutive
changes have consecutive seqs, and a stream never yields one seq twice.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Reloaded:
    """A full snapshot: replace whatever you hold with ``items``.

    Yielded first (``reason="initial"``) and again whenever the server says
    the changes you missed are no longer in its log (``reason="reset"``).
    ``items`` maps item id to the item (``GET /api/items/`` shape), active
    items only, in id order; changes that follow start at ``seq + 1``.
    """

    seq: int
    items: dict[int, dict[str, Any]] = field(repr=False)
    reason: str = "initial"


@dataclass(frozen=True)
class Upsert:
    """An item was created or changed and is in the catalog: index ``data``."""

    seq: int
    id: int
    data: dict[str, Any] = field(repr=False)
    model: str = "item"


@dataclass(frozen=True)
class Leave:
    """An item left what you follow (deactivated; later: out of your shape).

    Remove it from your index. ``data`` is its last state when the server
    sent one (a deactivated item), else ``None``.
    """

    seq: int
    id: int
    data: dict[str, Any] | None = field(default=None, repr=False)
    model: str = "item"


@dataclass(frozen=True)
class Delete:
    """An item was deleted from the database: remove it."""

    seq: int
    id: int
    model: str = "item"


Change = Upsert | Leave | Delete
Event = Reloaded | Change


def change_from_message(message: dict[str, Any]) -> Change:
    """Return the typed change of one ``{"type":"change",…}`` frame.

    An ``upsert`` of an inactive item is a :class:`Leave`: the item left the
    catalog (docs/protocol.md). An unknown ``op`` raises ``ValueError``.
    """
    seq, item_id, model = message["seq"], message["id"], message.get("model", "item")
    op, data = message["op"], message.get("data")
    if op == "upsert":
        if data is not None and data.get("active", True):
            return Upsert(seq, item_id, data, model)
        return Leave(seq, item_id, data, model)
    if op == "leave":
        return Leave(seq, item_id, data, model)
    if op == "delete":
        return Delete(seq, item_id, model)
    raise ValueError(f"unknown change op {op!r}")
