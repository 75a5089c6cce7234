from django.urls import path

from sync.consumers import SyncConsumer

websocket_urlpatterns = [path("ws/sync/", SyncConsumer.as_asgi())]
