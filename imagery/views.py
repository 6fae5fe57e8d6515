"""Web UI pages for images: detail, preview, file downloads and footprints as GeoJSON for the maps.

Stored bytes are only ever served for an image the caller can read (same chokepoint as the API), with a
fixed, safe content type: previews as `image/png` after checking the PNG signature, files as attachments.
"""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.urls import reverse

from catalogsite.choices import Action
from catalogsite.geo import geometry_to_geojson
from catalogsite.permissions import can, visible_acl
from catalogsite.serializers import format_timestamp
from catalogsite.ui import get_visible_or_404
from raster.tiles import tile_url_template
from uploads import storage
from uploads.models import ImageUpload

from .filtersets import ImageFilterSet
from .models import Image

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# Nothing in a served file may run or load anything, even if a browser were tricked into rendering it.
SANDBOX_CSP = "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; sandbox"

ATTRIBUTE_GROUPS: list[tuple[str, tuple[str, ...]]] = [
    (
        "Acquisition",
        (
            "acquired",
            "acquired_end",
            "published",
            "satellite_id",
            "provider_id",
            "provider_url",
            "processing_pipeline_id",
        ),
    ),
    ("Georeferencing", ("cs_code", "projection", "geotrans", "x_pixels", "y_pixels", "area")),
    (
        "Quality and angles",
        (
            "cloud_fraction",
            "alt_cloud_fraction",
            "bright_fraction",
            "fill_fraction",
            "confidence_dlsr",
            "azimuth_angle",
            "incidence_angle",
            "roll_angle",
            "view_angle",
            "solar_azimuth_angle",
            "solar_elevation_angle",
        ),
    ),
    (
        "Radiometry",
        (
            "bits_per_pixel",
            "reflectance_scale",
            "reflectance_gain_bias",
            "radiance_gain_bias",
            "temperature_gain_bias",
            "brightness_temperature_k1_k2",
            "c6s_dlsr",
        ),
    ),
    ("Elsewhere", ("preview_url",)),
]
LABELS = {
    "cs_code": "CS code",
    "geotrans": "Geotransform",
    "x_pixels": "Width (pixels)",
    "y_pixels": "Height (pixels)",
    "preview_url": "Preview URL",
    "provider_url": "Provider URL",
    "satellite_id": "Satellite",
    "provider_id": "Provider id",
    "processing_pipeline_id": "Processing pipeline",
    "c6s_dlsr": "C6S DLSR",
    "confidence_dlsr": "Confidence DLSR",
    "area": "Area (km²)",
}


def _feature(image: Image) -> dict[str, Any]:
    return {
        "type": "Feature",
        "geometry": geometry_to_geojson(image.geometry),
        "properties": {
            "id": image.pk,
            "name": image.name,
            "acquired": format_timestamp(image.acquired),
            "url": reverse("imagery:image_detail", kwargs={"pk": image.pk}),
        },
    }


@login_required
def image_footprints(request: HttpRequest) -> JsonResponse:
    """Footprints of the images matching the ImageFilterSet query (the same filters as the API's GET)."""
    queryset = Image.objects.restrict(request.user, Action.VIEW).filter(geometry__isnull=False)
    filterset = ImageFilterSet(request.GET, queryset=queryset, request=request)
    if not filterset.is_valid():
        return JsonResponse({"errors": filterset.errors}, status=400)
    limit = settings.UI_MAP_MAX_FEATURES
    images = list(filterset.qs.only("id", "name", "acquired", "geometry").order_by("-acquired", "id")[: limit + 1])
    features = [_feature(image) for image in images[:limit]]
    return JsonResponse({"type": "FeatureCollection", "features": features, "truncated": len(images) > limit})


@login_required
def image_detail(request: HttpRequest, pk: str) -> HttpResponse:
    """All attributes, the preview, the footprint on a map, the files with sizes and checksums, the uploads."""
    user = request.user
    image = get_visible_or_404(Image.objects.select_related("product"), user, pk)
    groups = []
    for title, names in ATTRIBUTE_GROUPS:
        rows = [(name, LABELS.get(name, name.replace("_", " ").capitalize()), getattr(image, name)) for name in names]
        rows = [row for row in rows if row[2] not in (None, "", [])]
        if rows:
            groups.append((title, rows))
    files = [
        {
            "index": index,
            "href": item.get("href"),
            "size_bytes": item.get("size_bytes"),
            "hash": item.get("hash"),
            "downloadable": storage.key_for_href(item.get("href") or "") is not None,
        }
        for index, item in enumerate(image.files or [])
    ]
    feature = _feature(image) if image.geometry is not None else None
    context = {
        "image": image,
        "product": image.product,
        "groups": groups,
        "files": files,
        "has_preview": _preview_key(image) is not None,
        "feature_json": json.dumps({"type": "FeatureCollection", "features": [feature]}) if feature else "",
        "tiles_url": tile_url_template(image=image.pk) if files and any(f["downloadable"] for f in files) else "",
        "uploads": ImageUpload.objects.restrict(user, Action.VIEW).filter(image_id=image.pk).order_by("-created"),
        "acl": {field: visible_acl(user, image, field) for field in ("owners", "writers", "readers")},
        "can_change": can(user, image, Action.CHANGE),
        "extra_properties": sorted((image.extra_properties or {}).items()),
    }
    return render(request, "imagery/image_detail.html", context)


def _preview_key(image: Image) -> str | None:
    return storage.key_for_href(image.preview_file) if image.preview_file else None


def _open_stored(key: str):
    try:
        return storage.imagery_storage().open(key, "rb")
    except (FileNotFoundError, OSError) as exc:
        raise Http404("The stored file is missing.") from exc


@login_required
def image_preview(request: HttpRequest, pk: str) -> HttpResponse:
    """The ingest-made PNG preview, served as image/png only if it really is a PNG."""
    image = get_visible_or_404(Image.objects, request.user, pk)
    key = _preview_key(image)
    if key is None:
        raise Http404("This image has no stored preview.")
    handle = _open_stored(key)
    if handle.read(len(PNG_SIGNATURE)) != PNG_SIGNATURE:
        handle.close()
        raise Http404("The stored preview is not a PNG image.")
    handle.seek(0)
    response = FileResponse(handle, content_type="image/png", as_attachment=False, filename="preview.png")
    response["Content-Security-Policy"] = SANDBOX_CSP
    response["Cache-Control"] = "private, max-age=300"
    return response


@login_required
def image_file(request: HttpRequest, pk: str, index: int) -> HttpResponse:
    """Download one stored file of an image, always as an attachment (never rendered by the browser)."""
    image = get_visible_or_404(Image.objects, request.user, pk)
    files = image.files or []
    if not 0 <= index < len(files):
        raise Http404("No such file.")
    key = storage.key_for_href(files[index].get("href") or "")
    if key is None:
        raise Http404("This file is not stored by Tessera.")
    filename = f"{image.name}-{index}.tif" if key.endswith(".tif") else f"{image.name}-{index}"
    response = FileResponse(
        _open_stored(key), content_type="application/octet-stream", as_attachment=True, filename=filename
    )
    response["Content-Security-Policy"] = SANDBOX_CSP
    response["Cache-Control"] = "private, no-store"
    return response
