from channels.auth import AuthMiddlewareStack
from django.urls import path

from recommender.consumers import RecommendationsConsumer

# Only the routes that read the session and the user (a database read per
# handshake) wrap themselves in AuthMiddlewareStack; the public catalog
# stream in sync/ needs neither.
websocket_urlpatterns = [
    path("ws/recommendations/", AuthMiddlewareStack(RecommendationsConsumer.as_asgi())),
]
