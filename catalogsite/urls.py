"""Top-level routes: the Catalog v2 API under CATALOG_URL_PREFIX, the token endpoint, docs, admin."""

from django.conf import settings
from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from .jsonapi import json_error_response

catalog_prefix = settings.CATALOG_URL_PREFIX

urlpatterns = [
    path("admin/", admin.site.urls),
    path("", include("accounts.urls")),
    path(f"{catalog_prefix}/", include("catalogsite.api_urls")),
    path("api/schema", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("api/redoc", SpectacularRedocView.as_view(url_name="schema"), name="api-redoc"),
]


def handler404(request, exception=None):  # noqa: ARG001 - Django's handler signature
    return json_error_response(404, "Not found.")


def handler500(request):  # noqa: ARG001
    return json_error_response(500, "Internal server error.")
