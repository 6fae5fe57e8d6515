"""Routes of the web UI. URL names follow `<app>:<model>_list|detail|add|edit|delete` (conventions §14)."""

from django.urls import include, path

from accounts.urls import ui_urlpatterns as accounts_ui_urlpatterns

from . import ui_views

urlpatterns = [
    path("", ui_views.dashboard, name="dashboard"),
    path("", include((accounts_ui_urlpatterns, "accounts"))),
    path("", include("products.urls")),
    path("", include("imagery.urls")),
    path("", include("uploads.urls")),
]
