"""``/api/events/``: server-to-server event ingestion."""

from typing import Any, Literal

from django.contrib.auth import get_user_model
from django.http import HttpRequest
from ninja import Router, Schema
from ninja.responses import Status
from ninja.security import HttpBearer
from pydantic import ConfigDict, Field, StrictInt

from recommender.api.schemas import ErrorOut
from recommender.messages import ClientId
from recommender.services import recommendations as recs
from recommender.services.events import UnknownItem, event_record
from recommender.services.tokens import token_authenticate

router = Router(tags=["events"])


class EventIn(Schema):
    model_config = ConfigDict(extra="forbid", strict=True)
    user: StrictInt = Field(ge=1, le=2**63 - 1, description="Database id of the user.")
    item: StrictInt = Field(ge=1, le=2**63 - 1)
    action: Literal["view", "click", "like", "cart", "purchase"]
    id: ClientId = Field(description="Client id; resending it is a no-op.")


class EventAcceptedOut(Schema):
    status: Literal["accepted", "duplicate"]
    id: str
    version: int = Field(
        description="Version of the user's recommendations after the event."
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
    if not get_user_model().objects.filter(pk=payload.user, is_active=True).exists():
        return Status(
            422,
            {"code": "unknown_user", "message": f"user {payload.user} does not exist"},
        )
    try:
        stored = event_record(
            user_id=payload.user,
            item_id=payload.item,
            action=payload.action,
            client_id=payload.id,
            source="api",
        )
    except UnknownItem as exc:
        return Status(422, {"code": "unknown_item", "message": str(exc)})
    message = recs.recommendations_compute(user_id=payload.user)
    recs.recommendations_push(user_id=payload.user, message=message)
    status = "accepted" if stored.created else "duplicate"
    return Status(
        202, {"status": status, "id": payload.id, "version": message["version"]}
    )
