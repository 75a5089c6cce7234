"""The one error shape of the HTTP API: ``{"code": "...", "message": "..."}``.

Used by the API's exception handlers and by the project's middleware, which
answers in the same shape for ``/api/`` requests that never reach the API
(unknown paths, wrong methods, bodies over the size limit).
"""

# Codes by HTTP status for errors that carry no more specific code.
_STATUS_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "too_large",
    422: "bad_message",
    429: "rate_limited",
    500: "server_error",
    503: "unavailable",
}

# Every code an API response may carry (docs/api.md describes each).
ERROR_CODES = (
    "bad_json",
    *sorted(set(_STATUS_CODES.values())),
    "unknown_user",
    "unknown_item",
)


def status_code_name(status: int) -> str:
    """Return the error code for an HTTP status that has no more specific one."""
    return _STATUS_CODES.get(status, "server_error" if status >= 500 else "bad_request")


def error_body(code: str, message: str) -> dict[str, str]:
    """Return the JSON body of an error response."""
    return {"code": code, "message": message}
