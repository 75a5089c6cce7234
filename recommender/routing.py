from django.urls import path

from recommender.consumers import RecommendationsConsumer

websocket_urlpatterns = [path("ws/recommendations/", RecommendationsConsumer.as_asgi())]
