"""``/api/events/``: server-to-server event ingestion."""

from typing import Annotated, Any, Literal

from django.http import HttpRequest
from ninja import Router, Schema
from ninja.responses import Status
from ninja.security import HttpBearer
from pydantic import ConfigDict, Field, StrictInt, StrictStr

from recommender.api.schemas import ErrorOut
from recommender.engine.actions import ActionName
from recommender.messages import ClientId
from recommender.services.events import NewEvent, UnknownItem
from recommender.services.ingest import events_ingest, ingest_user_id
from recommender.services.tokens import token_authenticate

router = Router(tags=["events"])

# A username as Django's default user model allows it (no NUL: PostgreSQL
# text cannot hold it, so it can name no account).
Username = Annotated[
    StrictStr, Field(min_length=1, max_length=150, pattern=r"^[^\x00]+$")
]
UserId = Annotated[StrictInt, Field(ge=1, le=2**63 - 1)]


class EventIn(Schema):
    model_config = ConfigDict(extra="forbid", strict=True)
    user: Username | UserId = Field(
        description=(
            "The account the event belongs to: its username (a string, the "
            "name your service knows the customer by), or its numeric "
            "database id (an integer, accepted for existing clients)."
        ),
        examples=["shopper0001", 3],
    )
    item: StrictInt = Field(ge=1, le=2**63 - 1)
    action: ActionName
    id: ClientId = Field(
        description=(
            "Client id, unique per user; resending it stores nothing and "
            "leaves the user's list (and its version) as it is."
        )
    )


class EventAcceptedOut(Schema):
    status: Literal["accepted", "duplicate"]
    id: str
    version: int = Field(
        description=(
            "Version of the user's recommendations after the event (unchanged "
            "for a duplicate)."
        )
    )


class BearerToken(HttpBearer):
    """``Authorization: Bearer <token>`` checked against the stored hashes."""

    def authenticate(self, request: HttpRequest, token: str) -> Any:
        return token_authenticate(token=token)


@router.post(
    "/events/",
    response={202: EventAcceptedOut, 401: ErrorOut, 422: ErrorOut},
    auth=BearerToken(),
    summary="Ingest a browsing event for a user (server to server)",
)
def events(request: HttpRequest, payload: EventIn) -> Status:
    """Store the event, recompute the user's list and push it to their sockets."""
    user_id = ingest_user_id(user=payload.user)
    if user_id is None:
        return Status(
            422,
            {"code": "unknown_user", "message": f"user {payload.user} does not exist"},
        )
    (outcome,) = events_ingest(
        events=[NewEvent(user_id, payload.item, payload.action, payload.id)],
        source="api",
    )
    if isinstance(outcome, UnknownItem):
        return Status(422, {"code": "unknown_item", "message": str(outcome)})
    stored, message = outcome
    if message is None:
        # The account was deleted between the check and the write.
        return Status(
            422,
            {"code": "unknown_user", "message": f"user {payload.user} does not exist"},
        )
    status = "accepted" if stored.created else "duplicate"
    return Status(
        202, {"status": status, "id": payload.id, "version": message["version"]}
    )
