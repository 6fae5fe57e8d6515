"""HTTP endpoints of the pixel service under /raster/v2.

* POST /npz — the Raster v2 wire of the descarteslabs client (protocol §9), Bearer tokens only.
* GET /images/<id>.<tif|png|jpg>, GET /mosaic.<tif|png|jpg>?product=… — downloads for people and tools.
* GET /tiles/<z>/<x>/<y>.<png|jpg>?image=…|product=… — XYZ tiles for maps.

The GET endpoints also accept the web UI's session, so its maps and links work in a browser. Every error is a
JSON:API error document with a status the client maps (catalogsite.jsonapi.exception_handler).
"""

from __future__ import annotations

from django.conf import settings
from django.http import HttpResponse, HttpResponseNotModified, StreamingHttpResponse
from django.utils.cache import patch_vary_headers
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework.authentication import SessionAuthentication
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.views import APIView

from accounts.authentication import JWTAuthentication
from catalogsite.jsonapi import BadRequest, JSONAPIParser

from .. import encoding, exports, tiles
from ..scaling import ScalingError
from ..services import parse_npz_request, plan_raster, raster_metadata, read_raster


class NpzView(APIView):
    """POST /raster/v2/npz: rasterize images into the blosc stream `Raster.ndarray()`/`download()` read."""

    authentication_classes = [JWTAuthentication]
    permission_classes = [IsAuthenticated]
    parser_classes = [JSONAPIParser]

    @extend_schema(request=OpenApiTypes.OBJECT, responses={(200, "application/octet-stream"): OpenApiTypes.BINARY})
    def post(self, request: Request) -> StreamingHttpResponse:
        try:
            raster_request = parse_npz_request(request.data)
            plan = plan_raster(user=request.user, request=raster_request)
            result = read_raster(plan=plan)
        except ScalingError as exc:
            raise BadRequest(str(exc), parameter="scales") from exc
        stream = encoding.npz_stream(metadata=raster_metadata(plan=plan), data=result.data, mask=result.mask)
        response = StreamingHttpResponse(stream, content_type="application/octet-stream")
        response["Cache-Control"] = "no-store"
        return response


class _PixelGetView(APIView):
    authentication_classes = [JWTAuthentication, SessionAuthentication]
    permission_classes = [IsAuthenticated]


def _download(export: exports.Export) -> HttpResponse:
    response = HttpResponse(export.content, content_type=export.content_type)
    response["Content-Disposition"] = f'attachment; filename="{export.filename}"'
    response["Cache-Control"] = "private, no-store"
    return response


class ImageExportView(_PixelGetView):
    """GET /raster/v2/images/<image id>.<tif|png|jpg>?bands=&bbox=&bbox_crs=&crs=&resolution=|width=&height=&…"""

    @extend_schema(responses={(200, "image/tiff"): OpenApiTypes.BINARY})
    def get(self, request: Request, image_id: str, fmt: str) -> HttpResponse:
        return _download(
            exports.image_export(user=request.user, image_id=image_id, params=request.query_params, fmt=fmt)
        )


class MosaicExportView(_PixelGetView):
    """GET /raster/v2/mosaic.<tif|png|jpg>?product=&bbox=&acquired_after=&cloud_fraction__lte=&tags=&bands=&…"""

    @extend_schema(responses={(200, "image/tiff"): OpenApiTypes.BINARY})
    def get(self, request: Request, fmt: str) -> HttpResponse:
        return _download(exports.mosaic_export(user=request.user, params=request.query_params, fmt=fmt))


class TileView(_PixelGetView):
    """GET /raster/v2/tiles/<z>/<x>/<y>.<png|jpg>?image=<id> | product=<id>&<search filters>, bands, scaling…"""

    @extend_schema(responses={(200, "image/png"): OpenApiTypes.BINARY})
    def get(self, request: Request, z: int, x: int, y: int, fmt: str) -> HttpResponse:
        query = tiles.parse_tile_query(z=z, x=x, y=y, fmt=fmt, params=request.query_params)
        plan = tiles.plan_tile(user=request.user, query=query)
        if plan.etag in [tag.strip() for tag in request.headers.get("If-None-Match", "").split(",")]:
            response = HttpResponseNotModified()
        else:
            response = HttpResponse(tiles.render_tile(plan=plan, query=query), content_type=tiles.FORMATS[fmt][1])
        response["ETag"] = plan.etag
        # Private: what a tile shows depends on who asks (restricted images); revalidation is one cheap query.
        response["Cache-Control"] = f"private, max-age={settings.RASTER_TILE_MAX_AGE}"
        patch_vary_headers(response, ["Authorization", "Cookie"])
        return response
