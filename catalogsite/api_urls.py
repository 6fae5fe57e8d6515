"""Catalog v2 API routes (relative to CATALOG_URL_PREFIX). No trailing slashes: the client never sends them."""

from django.urls import include, path

urlpatterns = [
    path("", include("products.api.urls")),
    path("", include("imagery.api.urls")),
    path("", include("uploads.api.urls")),
]
