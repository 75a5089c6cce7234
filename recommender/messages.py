"""Group names and wire messages of ``/ws/recommendations/`` and ``/ws/ops/``.

The only place that names recommender groups and builds their payloads.
Builders return plain Python types (msgpack-safe, JSON-safe).
"""

from typing import Annotated, Any, Literal, TypedDict

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr

from recommender.engine.actions import ActionName

LAYER_RECS = "recs.updated"
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
    items: list[RecommendedItem]
    computed_ms: float


class AckMessage(TypedDict):
    type: Literal["ack"]
    id: str


def recommendations(
    *, version: int, items: list[RecommendedItem], computed_ms: float
) -> RecommendationsMessage:
    """Return a user's recommendation list as pushed to their sockets."""
    return {
        "type": "recommendations",
        "version": int(version),
        "items": [
            {
                "id": int(item["id"]),
                "title": str(item["title"]),
                "score": round(float(item["score"]), 6),
                "reasons": [str(reason) for reason in item["reasons"]],
                # Lists stored before ``because`` existed have none.
                "because": [int(i) for i in item.get("because", ())],
            }
            for item in items
        ],
        "computed_ms": round(float(computed_ms), 3),
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
