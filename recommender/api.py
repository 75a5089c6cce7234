"""The HTTP API (django-ninja): typed, validated by pydantic, described by OpenAPI 3.

The schema is served at ``/api/schema/`` and browsable at ``/api/docs``.
"""

from typing import Any, Literal

from django.contrib.auth import get_user_model
from django.http import HttpRequest, HttpResponse
from ninja import NinjaAPI, Schema
from ninja.errors import AuthenticationError, ValidationError
from ninja.responses import Status
from ninja.security import HttpBearer, django_auth
from pydantic import ConfigDict, Field, StrictInt

from recommender import selectors
from recommender.messages import ClientId
from recommender.services import recommendations as recs
from recommender.services.events import UnknownItem, event_record
from recommender.services.tokens import token_authenticate

api = NinjaAPI(
    title="recsite API",
    version="1.0",
    description="Catalog snapshot, recommendations and server-to-server event ingestion.",
    openapi_url="/schema/",
    docs_url="/docs",
    urls_namespace="api",
)


class ErrorOut(Schema):
    code: str
    message: str


class ItemOut(Schema):
    id: int
    title: str
    description: str
    category: str | None
    category_id: int | None
    tags: list[str]
    price: float
    rating: float
    year: int | None
    active: bool
    updated: str | None


class ItemsOut(Schema):
    seq: int = Field(
        description="Change-log seq this snapshot reflects; resume after it."
    )
    items: list[ItemOut]


class RecommendedItemOut(Schema):
    id: int
    title: str
    score: float
    reasons: list[str]


class RecommendationsOut(Schema):
    type: Literal["recommendations"]
    version: int
    items: list[RecommendedItemOut]
    computed_ms: float


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


def _error(request: HttpRequest, status: int, code: str, message: str) -> HttpResponse:
    return api.create_response(
        request, {"code": code, "message": message}, status=status
    )


@api.exception_handler(ValidationError)
def _validation_error(request: HttpRequest, exc: ValidationError) -> HttpResponse:
    first = exc.errors[0] if exc.errors else {}
    where = ".".join(str(part) for part in first.get("loc", ()) if part != "body")
    message = f"{where}: {first.get('msg', 'invalid')}" if where else "invalid request"
    return _error(request, 422, "bad_message", message)


@api.exception_handler(AuthenticationError)
def _auth_error(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
    return _error(
        request, 401, "unauthorized", "missing, unknown or revoked credentials"
    )


@api.get("/items/", response=ItemsOut, summary="Catalog snapshot with its seq")
def items(request: HttpRequest) -> dict:
    """Return every active item and the change-log seq they reflect."""
    return selectors.items_snapshot()


@api.get(
    "/recommendations/",
    response={200: RecommendationsOut, 401: ErrorOut},
    auth=django_auth,
    summary="The session user's latest recommendations",
)
def recommendations(request: HttpRequest) -> dict:
    """Return the logged-in user's current list (computed if none is stored)."""
    return recs.recommendations_current(user_id=request.user.pk)


@api.post(
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
