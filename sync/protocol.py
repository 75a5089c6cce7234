"""The base of every protocol WebSocket consumer: errors, abuse limits, fast dispatch.

``/ws/sync/`` is built on it, and a project may build its own sockets on it
too (recsite's recommendation and operator sockets do). Presence and rejected
frames are announced through :mod:`sync.signals`; the project counts them.
"""

import logging
from typing import Any

from channels.consumer import get_handler_name
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer
from pydantic import TypeAdapter

from sync import signals
from sync.conf import sync_settings
from sync.wire import UNAVAILABLE, FrameError, encode, parse_frame

logger = logging.getLogger(__name__)

# RFC 6455 "policy violation": the client keeps sending frames we cannot serve.
CLOSE_POLICY_VIOLATION = 1008


class ProtocolConsumer(AsyncWebsocketConsumer):
    """A JSON-text-frame consumer that answers bad frames and drops abusers.

    Subclasses set ``endpoint`` (a metrics label) and ``adapter`` (a pydantic
    ``TypeAdapter`` over the messages they accept) and implement ``handle``.
    """

    endpoint = "ws"
    adapter: TypeAdapter

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.invalid_frames = 0
        self.counted = False
        self.counted_user: int | None = None

    async def dispatch(self, message: dict[str, Any]) -> None:
        """Route a message to its handler without a thread hop per message.

        Channels closes stale database connections before every handler, in a
        worker thread. Our handlers never touch the ORM on the event loop: every
        query runs inside ``database_sync_to_async``, which does that cleanup
        itself, so the per-message hop is pure overhead.
        """
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        """Run the consumer; whatever ends it, it leaves the presence counts."""
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.track_close()

    def track_close(self) -> None:
        """Remove this socket from the presence counts (idempotent)."""
        if self.counted:
            self.counted = False
            signals.socket_closed.send(
                sender=type(self), endpoint=self.endpoint, user_id=self.counted_user
            )

    def track_open(self, user_id: int | None = None) -> None:
        """Count this socket (and its user) as present; call once it is accepted."""
        self.counted = True
        self.counted_user = user_id
        signals.socket_opened.send(
            sender=type(self), endpoint=self.endpoint, user_id=user_id
        )

    async def websocket_disconnect(self, message: dict[str, Any]) -> None:
        """Called when the socket closes: leave groups, run ``disconnect``, stop.

        Channels' version ends with the same per-message database cleanup hop
        that :meth:`dispatch` skips, for the same reason.
        """
        self.track_close()
        for group in self.groups:
            await self.channel_layer.group_discard(group, self.channel_name)
        await self.disconnect(message["code"])
        raise StopConsumer()

    async def receive(
        self, text_data: str | None = None, bytes_data: bytes | None = None
    ) -> None:
        """Called with each client frame: validate it, then ``handle`` it."""
        try:
            request = parse_frame(
                text=text_data,
                data=bytes_data,
                adapter=self.adapter,
                max_bytes=sync_settings.WS_MAX_FRAME_BYTES,
            )
        except FrameError as exc:
            await self.reject(exc)
            return
        try:
            await self.handle(request)
        except FrameError as exc:
            await self.reject(exc)
        except Exception:
            # A failure on our side (database or Redis unreachable): the frame
            # was not served, the client may resend it with the same id.
            logger.exception("%s frame failed", self.endpoint)
            signals.frame_rejected.send(
                sender=type(self), endpoint=self.endpoint, code=UNAVAILABLE
            )
            await self.send_text(
                FrameError(
                    UNAVAILABLE,
                    "the server could not process this frame; retry with the same id",
                    getattr(request, "id", None),
                ).to_message()
            )

    async def handle(self, request: Any) -> None:
        """Serve one validated request."""
        raise NotImplementedError

    async def reject(self, exc: FrameError) -> None:
        """Answer a frame with an error; close the socket after too many."""
        signals.frame_rejected.send(
            sender=type(self), endpoint=self.endpoint, code=exc.code
        )
        await self.send_text(exc.to_message())
        if exc.code == "rate_limited":
            return
        self.invalid_frames += 1
        if self.invalid_frames > sync_settings.WS_MAX_INVALID_FRAMES:
            logger.info(
                "closing %s after %d invalid frames", self.endpoint, self.invalid_frames
            )
            await self.close(
                code=CLOSE_POLICY_VIOLATION, reason="too many invalid frames"
            )

    async def send_text(self, message: dict[str, Any]) -> None:
        """Encode ``message`` as JSON and send it down this socket."""
        await self.send(text_data=encode(message))
