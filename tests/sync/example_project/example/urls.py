from django.urls import path
from notes import views

urlpatterns = [
    path("notes/", views.notes, name="notes"),
    path("notes/<int:pk>/", views.note, name="note"),
]
