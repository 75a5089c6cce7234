"""Every WebSocket route of the product."""

from recommender.routing import websocket_urlpatterns as recommender_routes
from sync.routing import websocket_urlpatterns as sync_routes

websocket_urlpatterns = [*sync_routes, *recommender_routes]
