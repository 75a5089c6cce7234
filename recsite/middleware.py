"""Project middleware: the API's error shape for requests the API never sees."""

import logging
from collections.abc import Callable

from django.core.exceptions import RequestDataTooBig
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse

from recommender.api.errors import error_body, status_code_name

logger = logging.getLogger(__name__)

API_PREFIX = "/api/"


class ApiErrorMiddleware:
    """Answer every ``/api/`` error in the API's JSON shape.

    The API's own handlers cover errors inside its views. This covers the
    rest: a path no route matches (Django's HTML 404), a method a route does
    not accept (an empty 405), and an exception or oversized body that
    escapes a view.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if (
            response.status_code >= 400
            and request.path_info.startswith(API_PREFIX)
            and not response.get("Content-Type", "").startswith("application/json")
        ):
            return self._replace(request, response)
        return response

    def process_exception(
        self, request: HttpRequest, exc: Exception
    ) -> HttpResponse | None:
        """Turn an exception of an ``/api/`` view into a JSON error response."""
        if not request.path_info.startswith(API_PREFIX):
            return None
        if isinstance(exc, RequestDataTooBig):
            return _json(413, "too_large", str(exc))
        if isinstance(exc, Http404):
            return _json(404, "not_found", f"no API endpoint at {request.path}")
        logger.exception("API error on %s %s", request.method, request.path)
        response = _json(500, "server_error", "internal server error")
        # Logged above with its traceback; Django would log it again, bare.
        response._has_been_logged = True
        return response

    @staticmethod
    def _replace(request: HttpRequest, response: HttpResponse) -> HttpResponse:
        status = response.status_code
        if status == 404:
            message = f"no API endpoint at {request.path}"
        elif status == 405:
            message = (
                f"{request.method} is not allowed here; allowed: "
                f"{response.get('Allow', 'none')}"
            )
        else:
            message = response.reason_phrase
        replaced = _json(status, status_code_name(status), message)
        if "Allow" in response:
            replaced["Allow"] = response["Allow"]
        return replaced


def _json(status: int, code: str, message: str) -> JsonResponse:
    return JsonResponse(error_body(code, message), status=status)
