"""Top-level routes: the Catalog v2 API under CATALOG_URL_PREFIX, the token endpoint, docs, admin, web UI."""

from csp.constants import UNSAFE_INLINE
from csp.decorators import csp_update
from django.conf import settings
from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerSplitView

from . import ui_views
from .jsonapi import json_error_response

catalog_prefix = settings.CATALOG_URL_PREFIX
DOCS_CSP = csp_update({"style-src": [UNSAFE_INLINE], "worker-src": ["blob:"]})

urlpatterns = [
    path("admin/", admin.site.urls),
    path("", include("accounts.urls")),
    path(f"{catalog_prefix}/", include("catalogsite.api_urls")),
    # The pixel service (protocol §9): the client's DESCARTESLABS_RASTER_URL is <origin>/raster/v2.
    path("raster/v2/", include("raster.urls")),
    path("api/schema", SpectacularAPIView.as_view(), name="schema"),
    # The split Swagger view serves its start-up script as a file, so the CSP needs no inline script; the
    # documentation widgets inject <style> elements, which only these two pages are allowed (no scripts).
    path("api/docs", DOCS_CSP(SpectacularSwaggerSplitView.as_view(url_name="schema")), name="api-docs"),
    path("api/redoc", DOCS_CSP(SpectacularRedocView.as_view(url_name="schema")), name="api-redoc"),
    # The web UI (dashboard, login, products, images, uploads, organization) — last, so API routes win.
    path("", include("catalogsite.ui_urls")),
]


def _is_api(request) -> bool:
    """Browsers asking for a page get an HTML error page; everything else (API clients, the API's paths, the
    raster service, `/token`) keeps getting the JSON:API error document it can parse."""
    path = request.path.lstrip("/")
    if path == "token" or path == catalog_prefix or path.startswith((f"{catalog_prefix}/", "api/", "raster/")):
        return True
    return "text/html" not in request.headers.get("Accept", "")


def handler404(request, exception=None):  # noqa: ARG001 - Django's handler signature
    if _is_api(request):
        return json_error_response(404, "Not found.")
    return ui_views.page_not_found(request, exception)


def handler403(request, exception=None):
    if _is_api(request):
        return json_error_response(403, "Forbidden.")
    return ui_views.permission_denied(request, exception)


def handler500(request):  # noqa: ARG001
    if _is_api(request):
        return json_error_response(500, "Internal server error.")
    return ui_views.server_error(request)
