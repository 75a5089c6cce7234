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
    op: Literal["upsert", "delete", "leave"]
    id: int | str
    data: dict[str, Any] | None


class SubscribedMessage(TypedDict):
    type: Literal["subscribed"]
    seq: int
    id: str | int | None


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


def leave(*, seq: int, model: str, object_id: int | str) -> ChangeMessage:
    """Return the change that tells a shaped socket a row left its shape."""
    return change(seq=seq, model=model, op="leave", object_id=object_id, data=None)


def with_prev(text: str, *, prev: int) -> str:
    """Return the encoded change ``text`` with the shape's previous seq ``prev``.

    Shaped sockets see gaps in ``seq``; ``prev`` (the seq of the last
    position this socket was sent) lets the client tell a gap from a loss.
    Appending to the already encoded text keeps the per-socket cost at one
    string join whatever the payload.
    """
    return f'{text[:-1]},"prev":{int(prev)}}}'


def subscribed(*, seq: int, request_id: str | int | None) -> SubscribedMessage:
    """Return the answer to ``subscribe``: the seq the new shape starts at."""
    return {"type": "subscribed", "seq": int(seq), "id": request_id}


def resumed(*, seq: int) -> SeqMessage:
    """Return the marker that ends a resume replay."""
    return {"type": "resumed", "seq": int(seq)}


def reset(*, seq: int) -> SeqMessage:
    """Return the answer to a resume from before the retained change log."""
    return {"type": "reset", "seq": int(seq)}


def heartbeat(*, seq: int) -> SeqMessage:
    """Return the periodic liveness message carrying the latest sequence number."""
    return {"type": "heartbeat", "seq": int(seq)}


def layer_change(*, text: str | None, seq: int, before: Any = None) -> dict[str, Any]:
    """Return the channel-layer envelope of a change, encoded once for all sockets.

    ``text=None`` announces a bulk write up to ``seq`` without its changes:
    sockets then read them from the change log. ``before`` is the change's
    before-image (:attr:`sync.models.Change.before`), which shaped sockets
    read and the wire never carries.
    """
    return {"type": LAYER_CHANGE, "text": text, "seq": int(seq), "before": before}


def layer_probe() -> dict[str, Any]:
    """Return the envelope a hub sends to its own channel to test the stream."""
    return {"type": LAYER_PROBE}


class SubscribeRequest(BaseModel):
    """``{"type":"subscribe","shape":{"model":…,…},"after":S,"id":…}`` from a client.

    The shape's keys are checked against its model's declaration
    (:func:`sync.shapes.shape_compile`); here only its outline.
    """

    model_config = ConfigDict(extra="forbid", strict=True)
    type: Literal["subscribe"]
    shape: dict[str, Any]
    after: StrictInt | None = Field(default=None, ge=0, le=2**63 - 1)
    id: str | StrictInt | None = Field(default=None)


class ResumeRequest(BaseModel):
    """``{"type":"resume","after":N}`` from a client."""

    model_config = ConfigDict(extra="forbid", strict=True)
    type: Literal["resume"]
    after: StrictInt = Field(ge=0, le=2**63 - 1)
    id: str | StrictInt | None = Field(default=None)
