from django.urls import path

from recommender.consumers import OpsConsumer, RecommendationsConsumer

websocket_urlpatterns = [
    path("ws/recommendations/", RecommendationsConsumer.as_asgi()),
    path("ws/ops/", OpsConsumer.as_asgi()),
]
