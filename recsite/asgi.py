"""ASGI entry point: HTTP through Django, WebSockets through Channels.

WebSocket handshakes are checked against ``ALLOWED_HOSTS`` (the ``Origin``
header) before anything else, so a page on another site cannot open a socket
with a visitor's cookies. The routes that need the session wrap their consumer
in ``AuthMiddlewareStack`` themselves (``recommender/routing.py``); the public
catalog stream skips the session read.
"""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "recsite.settings")
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from recsite.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": AllowedHostsOriginValidator(URLRouter(websocket_urlpatterns)),
    }
)
