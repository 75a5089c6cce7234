"""daphne tuned for recsite: compression, a deep listen backlog, product limits.

daphne builds autobahn's WebSocket factory inside ``Server.run``; the hook that
runs once the factory exists and before any connection is accepted is
``listen_success``, so the extra protocol options are set there.
"""

import asyncio
import logging
import pprint
from typing import Any

import autobahn.websocket.protocol as autobahn_protocol
from autobahn.websocket.compress import (
    PerMessageDeflateOffer,
    PerMessageDeflateOfferAccept,
)
from daphne.server import Server
from daphne.ws_protocol import WebSocketProtocol
from django.conf import settings
from twisted.internet import defer

from sync.protocol import CLOSE_POLICY_VIOLATION
from sync.tasks import stop_loop_tasks

logger = logging.getLogger(__name__)


class _LazyFormat:
    """Pretty-print an object only if a log line actually renders it."""

    __slots__ = ("obj",)

    def __init__(self, obj: object) -> None:
        self.obj = obj

    def __str__(self) -> str:
        return pprint.pformat(self.obj)

    def __format__(self, spec: str) -> str:
        return format(str(self), spec)


# autobahn pretty-prints its whole configuration for a debug log line on every
# connection, whether debug logging is on or not: ~7 % of a handshake's CPU in
# a connection storm. Deferring the formatting keeps the log line intact.
autobahn_protocol.pformat = _LazyFormat


def _accept_deflate(offers: list[Any]) -> PerMessageDeflateOfferAccept | None:
    """Accept the client's permessage-deflate offer (RFC 7692), small windows.

    A full 32 KiB zlib window per direction costs ~300 KiB per socket; 2^11
    windows at memLevel 4 keep a compressed socket in the tens of KiB while
    JSON lists still shrink several times.
    """
    for offer in offers:
        if isinstance(offer, PerMessageDeflateOffer):
            return PerMessageDeflateOfferAccept(
                offer,
                request_no_context_takeover=True,
                request_max_window_bits=settings.WS_DEFLATE_WINDOW_BITS
                if offer.accept_max_window_bits
                else 0,
                no_context_takeover=True,
                window_bits=settings.WS_DEFLATE_WINDOW_BITS,
                mem_level=settings.WS_DEFLATE_MEM_LEVEL,
            )
    return None


class BoundedWebSocketProtocol(WebSocketProtocol):
    """daphne's WebSocket protocol with bounded queues in both directions.

    daphne puts every incoming frame on an unbounded queue before the consumer
    sees it, so a client writing faster than it is served grows server memory
    and delays everyone; and Twisted buffers outgoing frames without limit for
    a client that stops reading. Either client is closed (1008) or dropped
    once its queue passes the configured bound: sync clients resume, and
    events are idempotent by id.
    """

    overflowed = False

    def onMessage(self, payload: bytes, isBinary: bool) -> None:
        if self.overflowed:
            return
        queue = getattr(self, "application_queue", None)
        if queue is not None and queue.qsize() >= settings.WS_MAX_QUEUED_FRAMES:
            self.overflowed = True
            logger.info(
                "closing %s: %d frames waiting", self.client_addr, queue.qsize()
            )
            self.sendCloseFrame(
                code=CLOSE_POLICY_VIOLATION,
                reasonUtf8=b"too many unprocessed frames",
                isReply=False,
            )
            return
        super().onMessage(payload, isBinary)

    def sendMessage(
        self, payload: bytes, isBinary: bool = False, **kwargs: Any
    ) -> None:
        transport = self.transport
        if transport is not None:
            buffered = getattr(transport, "_tempDataLen", 0) + len(
                getattr(transport, "dataBuffer", b"")
            )
            if buffered > settings.WS_MAX_SEND_BUFFER_BYTES:
                logger.info("dropping %s: %d bytes unread", self.client_addr, buffered)
                self.dropConnection(abort=True)
                return
        super().sendMessage(payload, isBinary, **kwargs)


class TunedServer(Server):
    """daphne's server with recsite's WebSocket protocol options."""

    def kill_all_applications(self) -> defer.Deferred:
        """Called before the reactor stops: end the sockets, then background tasks.

        The hub's and the live figures' tasks would otherwise be destroyed
        pending when the process exits, logging to streams already closed.
        """
        sockets_done = super().kill_all_applications()
        tasks_done = defer.Deferred.fromFuture(asyncio.ensure_future(stop_loop_tasks()))
        return defer.gatherResults([sockets_done, tasks_done], consumeErrors=True)

    def listen_success(self, port: Any) -> None:
        """Called once the port listens, before any client is accepted."""
        self.ws_factory.protocol = BoundedWebSocketProtocol
        if settings.WS_COMPRESSION:
            self.ws_factory.setProtocolOptions(
                perMessageCompressionAccept=_accept_deflate
            )
        super().listen_success(port)
