"""The HTTP API (django-ninja): typed, validated by pydantic, described by OpenAPI 3.

The schema is served at ``/api/schema/`` and browsable at ``/api/docs``. Each
resource has its own router module; this one holds the API object and the
error handlers every route shares.
"""

from django.http import HttpRequest, HttpResponse
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, ValidationError

from recommender.api import events, items, recommendations

api = NinjaAPI(
    title="recsite API",
    version="1.0",
    description="Catalog snapshot, recommendations and server-to-server event ingestion.",
    openapi_url="/schema/",
    docs_url="/docs",
    urls_namespace="api",
)


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


api.add_router("/", items.router)
api.add_router("/", recommendations.router)
api.add_router("/", events.router)
