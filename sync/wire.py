"""Parse and validate client frames: the one validation layer of both sockets.

Every client frame goes through :func:`parse_frame`, which turns any bad input
into a :class:`FrameError` carrying the protocol's error code, so consumers never
write ad-hoc checks. The schemas themselves are pydantic models, the same
library django-ninja uses to validate the HTTP API.
"""

import json
import math
from typing import Any

import orjson
from pydantic import TypeAdapter, ValidationError

BAD_JSON = "bad_json"
BAD_MESSAGE = "bad_message"
TOO_LARGE = "too_large"
UNKNOWN_ITEM = "unknown_item"
RATE_LIMITED = "rate_limited"
# Not the client's fault: the server could not serve the frame right now.
UNAVAILABLE = "unavailable"

# No valid message nests deeper than 2. Frames nested beyond the interpreter's
# recursion limit fail to parse; this bound refuses the rest explicitly.
MAX_JSON_DEPTH = 32

# Client ids are echoed back; anything longer is not worth echoing.
_MAX_ECHOED_ID_CHARS = 64


class FrameError(Exception):
    """A client frame that cannot be served; ``code`` is the wire error code."""

    def __init__(
        self, code: str, message: str, client_id: Any = None, **extra: Any
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.client_id = client_id
        self.extra = extra

    def to_message(self) -> dict[str, Any]:
        """Return the ``error`` frame sent to the client."""
        return {
            "type": "error",
            "code": self.code,
            "message": self.message,
            "id": self.client_id,
            **self.extra,
        }


def encode(message: dict[str, Any]) -> str:
    """Return ``message`` as a compact JSON text frame.

    orjson: every pushed list is encoded on the hot path, at a fraction of
    the standard library's cost. It writes a non-finite float as ``null``
    rather than raising; the messages built here carry none.
    """
    return orjson.dumps(message).decode()


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed")


def _finite_float(text: str) -> float:
    # "1e999" parses to infinity without ever spelling "Infinity".
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text} is not allowed")
    return value


def _deeper_than(obj: Any, limit: int) -> bool:
    """Return True when ``obj`` nests containers more than ``limit`` deep."""
    stack = [(obj, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            children = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


def _client_id(obj: Any) -> Any:
    """Return the frame's ``id`` when it is a short string or a safe integer."""
    if not isinstance(obj, dict):
        return None
    value = obj.get("id")
    if isinstance(value, bool):
        return None
    if isinstance(value, str) and len(value) <= _MAX_ECHOED_ID_CHARS:
        return value
    if isinstance(value, int) and abs(value) < 2**53:
        return value
    return None


def parse_frame(
    *, text: str | None, data: bytes | None, adapter: TypeAdapter, max_bytes: int
) -> Any:
    """Return the validated message of one WebSocket frame.

    Parameters
    ----------
    text, data
        The frame as Channels delivers it: text frames in ``text``, binary
        frames in ``data``.
    adapter
        A pydantic ``TypeAdapter`` over the union of accepted messages.
    max_bytes
        Largest accepted frame, in UTF-8 bytes.

    Raises
    ------
    FrameError
        ``too_large``, ``bad_json`` or ``bad_message``, with the client's id
        when it could be read.
    """
    if text is None:
        size = len(data or b"")
        if size > max_bytes:
            raise FrameError(TOO_LARGE, f"frame of {size} bytes exceeds {max_bytes}")
        raise FrameError(BAD_MESSAGE, "binary frames are not accepted; send JSON text")
    # len(text) <= bytes <= 4 * len(text): skip the encode when the answer is sure.
    if len(text) > max_bytes or (
        len(text) * 4 > max_bytes
        and len(text.encode("utf-8", "surrogatepass")) > max_bytes
    ):
        raise FrameError(TOO_LARGE, f"frame exceeds {max_bytes} bytes")
    try:
        obj = json.loads(
            text, parse_constant=_reject_constant, parse_float=_finite_float
        )
    except ValueError as exc:
        if "is not allowed" in str(exc):
            raise FrameError(
                BAD_MESSAGE, "NaN and Infinity are not valid numbers"
            ) from None
        if "integer string conversion" in str(exc):
            raise FrameError(BAD_MESSAGE, "integer too large") from None
        raise FrameError(BAD_JSON, f"not valid JSON: {exc}") from None
    except RecursionError:
        raise FrameError(BAD_MESSAGE, "JSON nested too deeply") from None
    client_id = _client_id(obj)
    # Counting brackets is cheap; only a frame with many is walked.
    if text.count("[") + text.count("{") > MAX_JSON_DEPTH and _deeper_than(
        obj, MAX_JSON_DEPTH
    ):
        raise FrameError(
            BAD_MESSAGE, f"JSON nested deeper than {MAX_JSON_DEPTH} levels", client_id
        )
    try:
        return adapter.validate_python(obj)
    except ValidationError as exc:
        first = exc.errors(include_url=False, include_context=False)[0]
        where = ".".join(str(part) for part in first["loc"]) or "message"
        raise FrameError(BAD_MESSAGE, f"{where}: {first['msg']}", client_id) from None
    except RecursionError:
        raise FrameError(BAD_MESSAGE, "message nested too deeply", client_id) from None
