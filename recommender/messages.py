"""Group names and wire messages of ``/ws/recommendations/`` and ``/ws/ops/``.

The only place that names recommender groups and builds their payloads.
Builders return plain Python types (msgpack-safe, JSON-safe).
"""

from typing import Annotated, Any, Literal, NotRequired, TypedDict

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr

from recommender.engine.actions import ActionName
from recommender.engine.placements import DEFAULT_PLACEMENT, PlacementName

LAYER_RECS = "recs.updated"
#: Every recommendations socket of every process: staff rule changes.
MERCH_GROUP = "recs.merchandising"
LAYER_MERCH = "recs.merchandising"
OPS_GROUP = "ops.stats"
LAYER_OPS = "ops.stats"


def user_group(user_id: int) -> str:
    """Return the group that reaches every socket of one user: ``recs.user.<id>``."""
    return f"recs.user.{int(user_id)}"


class RecommendedItem(TypedDict):
    id: int
    title: str
    score: float
    reasons: list[str]
    # Ids of the user's own items behind this one; empty for popularity.
    because: list[int]


class RecommendationsMessage(TypedDict):
    type: Literal["recommendations"]
    version: int
    # Which list: "for_you" (the default) or a watched placement.
    placement: str
    # The item a "similar" / "complements" list is about, when it has one.
    item: NotRequired[int]
    items: list[RecommendedItem]
    computed_ms: float


class AckMessage(TypedDict):
    type: Literal["ack"]
    id: str


def recommendations(
    *,
    version: int,
    items: list[RecommendedItem],
    computed_ms: float,
    placement: str = DEFAULT_PLACEMENT,
    item: int | None = None,
    typed: bool = False,
) -> RecommendationsMessage:
    """Return a recommendation list as pushed to a user's sockets.

    ``placement`` names the list (``for_you`` unless a socket watches
    another); ``item`` is the item a ``similar`` or ``complements`` list is
    about, left out when there is none. ``typed`` says the items already
    have their wire types (built by this process from the engine's lists,
    scores rounded): they are used as they are. Otherwise (a stored
    snapshot read back) each field is coerced.
    """
    message: RecommendationsMessage = {
        "type": "recommendations",
        "version": int(version),
        "placement": str(placement),
        "items": items if typed else [recommended_item(entry) for entry in items],
        "computed_ms": round(float(computed_ms), 3),
    }
    if item is not None:
        message["item"] = int(item)
    return message


def recommended_item(entry: RecommendedItem) -> RecommendedItem:
    """Return one list item with its wire types (score to 6 decimals)."""
    return {
        "id": int(entry["id"]),
        "title": str(entry["title"]),
        "score": round(float(entry["score"]), 6),
        "reasons": [str(reason) for reason in entry["reasons"]],
        # Lists stored before ``because`` existed have none.
        "because": [int(i) for i in entry.get("because", ())],
    }


def ack(*, client_id: str) -> AckMessage:
    """Return the acknowledgement of a durably stored event."""
    return {"type": "ack", "id": client_id}


def layer_recs(
    *, text: str, version: int, origin: str | None, process: str
) -> dict[str, Any]:
    """Return the channel-layer envelope of a pushed list, encoded once.

    ``origin`` names the channel that already sent it directly, so it skips it;
    ``process`` names the server process that computed it.
    """
    return {
        "type": LAYER_RECS,
        "text": text,
        "version": int(version),
        "origin": origin,
        "process": process,
    }


# 1 to 64 characters, no NUL (PostgreSQL text cannot store it).
ClientId = Annotated[
    StrictStr, Field(min_length=1, max_length=64, pattern=r"^[^\x00]+$")
]


class EventRequest(BaseModel):
    """``{"type":"event","action":…,"item":ID,"id":"client-id"}`` from a client.

    ``user`` and ``group`` are accepted and ignored: the user always comes from
    the session, whatever a client claims.
    """

    model_config = ConfigDict(extra="forbid", strict=True)
    type: Literal["event"]
    action: ActionName
    item: StrictInt = Field(ge=1, le=2**63 - 1)
    id: ClientId
    user: Annotated[StrictInt, Field(ge=-(2**63), le=2**63 - 1)] | StrictStr | None = (
        None
    )
    group: StrictStr | None = None


def layer_merchandising(*, process: str) -> dict[str, Any]:
    """Return the envelope telling every socket that staff rules changed.

    ``process`` names the server process where the change was saved.
    """
    return {"type": LAYER_MERCH, "process": process}


class WatchRequest(BaseModel):
    """``{"type":"watch","placement":P,"item":ID,"id":…}``: push this list too.

    ``item`` names the item of ``similar`` (required) or ``complements``
    (instead of the user's basket); other placements ignore it.
    """

    model_config = ConfigDict(extra="forbid", strict=True)
    type: Literal["watch"]
    placement: PlacementName
    item: Annotated[StrictInt, Field(ge=1, le=2**63 - 1)] | None = None
    id: ClientId


class UnwatchRequest(BaseModel):
    """``{"type":"unwatch","placement":P,"item":ID,"id":…}``: stop pushing it."""

    model_config = ConfigDict(extra="forbid", strict=True)
    type: Literal["unwatch"]
    placement: PlacementName
    item: Annotated[StrictInt, Field(ge=1, le=2**63 - 1)] | None = None
    id: ClientId


#: Every frame a client may send on ``/ws/recommendations/``.
RecommendationsRequest = Annotated[
    EventRequest | WatchRequest | UnwatchRequest, Field(discriminator="type")
]


def ops_stats(*, cluster: dict[str, Any], online: dict[str, Any]) -> dict[str, Any]:
    """Return the operator view's live figures (sent about once a second)."""
    return {
        "type": "stats",
        "at": round(float(cluster.get("at", 0.0)), 3),
        "processes": int(cluster["processes"]),
        "connections": int(cluster["connections"]),
        "sockets": {str(k): int(v) for k, v in cluster["sockets"].items()},
        "users": int(cluster["users"]),
        "events_per_sec": float(cluster["events_per_sec"]),
        "push_p50_ms": float(cluster["push_p50_ms"]),
        "push_p99_ms": float(cluster["push_p99_ms"]),
        "recompute_ms": float(cluster["recompute_ms"]),
        "broadcast_failures": int(cluster["broadcast_failures"]),
        "seq": int(cluster["seq"]),
        "ctr": float(online.get("ctr", 0.0)),
        "online_precision": float(online.get("precision_at_k", 0.0)),
        "impressions": int(online.get("impressions", 0)),
    }
