"""The HTTP API (django-ninja): typed, validated by pydantic, described by OpenAPI 3.

The schema is served at ``/api/schema/`` and browsable at ``/api/docs/``. Each
resource has its own router module; this one holds the API object and the
error handlers every route shares. Every error answers in one shape,
``{"code": "...", "message": "..."}`` (docs/api.md), documented as each
operation's ``default`` response so schema checkers hold the API to it.
"""

import logging
from typing import Any

from django.core.exceptions import RequestDataTooBig
from django.http import Http404, HttpRequest, HttpResponse
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError, ValidationError

from recommender.api import activity, events, items, recommendations
from recommender.api.errors import ERROR_CODES, error_body, status_code_name
from recommender.api.schemas import ErrorOut

logger = logging.getLogger(__name__)


class RecsiteAPI(NinjaAPI):
    """A NinjaAPI whose schema documents the error shape on every operation."""

    def get_openapi_schema(self, **kwargs: Any) -> dict[str, Any]:
        """Return the OpenAPI schema with ``default`` error responses added."""
        schema = super().get_openapi_schema(**kwargs)
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        components.setdefault(
            "ErrorOut",
            ErrorOut.model_json_schema(ref_template="#/components/schemas/{model}"),
        )
        default = {
            "description": (
                "Any other error, in the one error shape; `code` is one of: "
                + ", ".join(f"`{code}`" for code in ERROR_CODES)
                + "."
            ),
            "content": {
                "application/json": {
                    "schema": {"$ref": "#/components/schemas/ErrorOut"}
                }
            },
        }
        for path in schema.get("paths", {}).values():
            for operation in path.values():
                if isinstance(operation, dict) and "responses" in operation:
                    operation["responses"].setdefault("default", default)
        return schema


api = RecsiteAPI(
    title="recsite API",
    version="1.0",
    description=(
        "Catalog snapshot, recommendations and server-to-server event ingestion. "
        'Every error is JSON: `{"code": "...", "message": "..."}`.'
    ),
    openapi_url="/schema/",
    docs_url="/docs/",
    urls_namespace="api",
)


def _error(request: HttpRequest, status: int, code: str, message: str) -> HttpResponse:
    return api.create_response(request, error_body(code, message), status=status)


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


@api.exception_handler(HttpError)
def _http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
    # ninja raises HttpError(400, "Cannot parse request body") for a body that
    # is not JSON; the socket protocol calls that "bad_json" too.
    if exc.status_code == 400 and "parse request body" in exc.message:
        return _error(request, 400, "bad_json", "the request body is not valid JSON")
    return _error(
        request, exc.status_code, status_code_name(exc.status_code), exc.message
    )


@api.exception_handler(RequestDataTooBig)
def _too_large(request: HttpRequest, exc: RequestDataTooBig) -> HttpResponse:
    return _error(request, 413, "too_large", str(exc))


@api.exception_handler(Http404)
def _not_found(request: HttpRequest, exc: Http404) -> HttpResponse:
    return _error(request, 404, "not_found", str(exc) or "not found")


@api.exception_handler(Exception)
def _server_error(request: HttpRequest, exc: Exception) -> HttpResponse:
    # The traceback goes to the log, never to the caller (DEBUG included).
    logger.exception("API error on %s %s", request.method, request.path)
    response = _error(request, 500, "server_error", "internal server error")
    # Logged above with its traceback; Django would log it again, bare.
    response._has_been_logged = True
    return response


api.add_router("/", items.router)
api.add_router("/", recommendations.router)
api.add_router("/", events.router)
api.add_router("/", activity.router)
