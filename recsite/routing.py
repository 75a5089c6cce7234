"""Every WebSocket route of the product."""

from channels.auth import AuthMiddlewareStack
from django.urls import path

from recommender.routing import websocket_urlpatterns as recommender_routes
from recsite.ops_consumers import OpsConsumer
from sync.routing import websocket_urlpatterns as sync_routes

websocket_urlpatterns = [
    *sync_routes,
    *recommender_routes,
    path("ws/ops/", AuthMiddlewareStack(OpsConsumer.as_asgi())),
]
