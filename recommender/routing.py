from channels.auth import AuthMiddlewareStack
from django.urls import path

from recommender.consumers import OpsConsumer, RecommendationsConsumer

# Only these routes read the session and the user (a database read per
# handshake); the public catalog stream in sync/ needs neither.
websocket_urlpatterns = [
    path("ws/recommendations/", AuthMiddlewareStack(RecommendationsConsumer.as_asgi())),
    path("ws/ops/", AuthMiddlewareStack(OpsConsumer.as_asgi())),
]
