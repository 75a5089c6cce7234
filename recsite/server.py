"""daphne tuned for recsite: compression, a deep listen backlog, product limits.

daphne builds autobahn's WebSocket factory inside ``Server.run``; the hook that
runs once the factory exists and before any connection is accepted is
``listen_success``, so the extra protocol options are set there.
"""

from typing import Any

from autobahn.websocket.compress import (
    PerMessageDeflateOffer,
    PerMessageDeflateOfferAccept,
)
from daphne.server import Server
from django.conf import settings


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


class TunedServer(Server):
    """daphne's server with recsite's WebSocket protocol options."""

    def listen_success(self, port: Any) -> None:
        if settings.WS_COMPRESSION:
            self.ws_factory.setProtocolOptions(
                perMessageCompressionAccept=_accept_deflate
            )
        super().listen_success(port)
