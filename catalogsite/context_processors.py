"""What every page of the web UI needs: the user's organization and role, the map's basemap, the API base."""

from __future__ import annotations

from django.conf import settings

from accounts.principals import principals_for


def ui(request) -> dict:
    user = getattr(request, "user", None)
    principals = principals_for(user)
    return {
        "ui_organization": principals.organization,
        "ui_is_org_admin": principals.is_org_admin,
        "ui_namespace": principals.namespace,
        "basemap_url": settings.BASEMAP_URL,
        "basemap_attribution": settings.BASEMAP_ATTRIBUTION,
        "catalog_api_base": f"/{settings.CATALOG_URL_PREFIX}",
    }
