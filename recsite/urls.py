from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import path

from recommender import views as recommender_views
from recommender.api import api
from recsite import views

admin.site.site_header = "recsite catalog"
admin.site.site_title = "recsite admin"

urlpatterns = [
    path("", recommender_views.dashboard, name="dashboard"),
    # Browsers ask for /favicon.ico on every page, admin pages included.
    path("favicon.ico", views.favicon, name="favicon"),
    path("ops/", views.ops, name="ops"),
    path("ops/experiments/", views.ops_experiments, name="ops-experiments"),
    path("healthz", views.healthz, name="healthz"),
    path("metrics", views.metrics, name="metrics"),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    path("api/", api.urls),
]
