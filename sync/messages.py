"""Group names and wire messages of ``/ws/sync/`` — the only place that builds them.

Every builder returns plain Python types (no numpy scalars) so the payload
survives channels-redis' msgpack serialiser as well as ``json.dumps``.
"""

from typing import Any, Literal, TypedDict

from pydantic import BaseModel, ConfigDict, Field, StrictInt

# Every /ws/sync/ socket joins this group; one stream carries every synced model
# because the sequence number is global.
CHANGES_GROUP = "sync.changes"

# Channel-layer message types (dotted: "sync.change" is handled by sync_change).
LAYER_CHANGE = "sync.change"
# What the hub sends itself to learn that the stream carries messages again.
LAYER_PROBE = "sync.probe"


class HelloMessage(TypedDict):
    type: Literal["hello"]
    seq: int


class ChangeMessage(TypedDict):
    type: Literal["change"]
    seq: int
    model: str
    op: Literal["upsert", "delete"]
    id: int | str
    data: dict[str, Any] | None


class SeqMessage(TypedDict):
    type: Literal["resumed", "reset", "heartbeat"]
    seq: int


def hello(*, seq: int) -> HelloMessage:
    """Return the greeting sent on connect with the latest sequence number."""
    return {"type": "hello", "seq": int(seq)}


def change(
    *, seq: int, model: str, op: str, object_id: int | str, data: dict[str, Any] | None
) -> ChangeMessage:
    """Return one committed change as sent to clients."""
    return {
        "type": "change",
        "seq": int(seq),
        "model": model,
        "op": op,  # type: ignore[typeddict-item]
        "id": object_id,
        "data": data,
    }


def resumed(*, seq: int) -> SeqMessage:
    """Return the marker that ends a resume replay."""
    return {"type": "resumed", "seq": int(seq)}


def reset(*, seq: int) -> SeqMessage:
    """Return the answer to a resume from before the retained change log."""
    return {"type": "reset", "seq": int(seq)}


def heartbeat(*, seq: int) -> SeqMessage:
    """Return the periodic liveness message carrying the latest sequence number."""
    return {"type": "heartbeat", "seq": int(seq)}


def layer_change(*, text: str | None, seq: int) -> dict[str, Any]:
    """Return the channel-layer envelope of a change, encoded once for all sockets.

    ``text=None`` announces a bulk write up to ``seq`` without its changes:
    sockets then read them from the change log.
    """
    return {"type": LAYER_CHANGE, "text": text, "seq": int(seq)}


def layer_probe() -> dict[str, Any]:
    """Return the envelope a hub sends to its own channel to test the stream."""
    return {"type": LAYER_PROBE}


class ResumeRequest(BaseModel):
    """``{"type":"resume","after":N}`` from a client."""

    model_config = ConfigDict(extra="forbid", strict=True)
    type: Literal["resume"]
    after: StrictInt = Field(ge=0, le=2**63 - 1)
    id: str | StrictInt | None = Field(default=None)
