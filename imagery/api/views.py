"""Catalog v2 endpoints for images and image summaries (protocol §1.3, §2.2)."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from catalogsite.api import CatalogViewSet, Include
from catalogsite.filtering import field_for, parse_timestamp
from catalogsite.jsonapi import JSONAPI_VERSION, BadRequest
from catalogsite.schema import SEARCH_BODY, document_schema
from products.api.views import ProductViewSet

from .. import selectors, services
from ..choices import AggregateDateField, SummaryInterval
from ..filtersets import ImageFilterSet
from ..models import Image
from .serializers import ImageSerializer

IMAGE_FILTERS = [
    "id",
    "name",
    "product_id",
    "cs_code",
    "projection",
    "x_pixels",
    "y_pixels",
    "acquired",
    "acquired_end",
    "published",
    "storage_state",
    "area",
    "azimuth_angle",
    "bright_fraction",
    "cloud_fraction",
    "alt_cloud_fraction",
    "confidence_dlsr",
    "fill_fraction",
    "incidence_angle",
    "roll_angle",
    "solar_azimuth_angle",
    "solar_elevation_angle",
    "view_angle",
    "processing_pipeline_id",
    "satellite_id",
    "provider_id",
    "provider_url",
    "preview_url",
    "created",
    "modified",
    "tags",
    "geometry",
    "owners",
]
IMAGE_SORTS = [
    "name",
    "product_id",
    "acquired",
    "acquired_end",
    "published",
    "storage_state",
    "area",
    "azimuth_angle",
    "bright_fraction",
    "cloud_fraction",
    "alt_cloud_fraction",
    "confidence_dlsr",
    "fill_fraction",
    "incidence_angle",
    "roll_angle",
    "solar_azimuth_angle",
    "solar_elevation_angle",
    "view_angle",
    "processing_pipeline_id",
    "satellite_id",
    "provider_id",
    "x_pixels",
    "y_pixels",
    "created",
    "modified",
]


class ImageViewSet(CatalogViewSet):
    model = Image
    type_name = "image"
    serializer_class = ImageSerializer
    filterset_class = ImageFilterSet
    geometry_field = "geometry"
    text_fields = ("name",)
    includes = {"product": Include("product", ProductViewSet, "product_id")}
    filter_fields = {name: field_for(Image, name) for name in IMAGE_FILTERS}
    sort_fields = {name: name for name in IMAGE_SORTS}

    def perform_create(self, *, identifier, attributes):
        serializer = self.serializer_class(data=attributes, context=self.serializer_context())
        serializer.is_valid(raise_exception=True)
        return services.image_create(
            user=self.request.user, attributes=dict(serializer.validated_data), requested_id=identifier
        )

    def perform_update(self, *, obj, attributes):
        serializer = self.serializer_class(obj, data=attributes, partial=True, context=self.serializer_context())
        serializer.is_valid(raise_exception=True)
        return services.image_update(image=obj, attributes=dict(serializer.validated_data))

    def perform_destroy(self, *, obj) -> None:
        services.image_delete(image=obj)

    # ---- summaries -------------------------------------------------------------------------------------
    def summary_queryset(self):
        search = self.parse_search_body()
        if search.sort or search.limit is not None or search.include or search.continuation:
            raise BadRequest("Summaries take filter, text and intersects only (no sort, limit, include).")
        return self.search_queryset(search)

    @extend_schema(request=SEARCH_BODY, responses=OpenApiTypes.OBJECT)
    def summary(self, request: Request) -> Response:
        attributes = selectors.summarize(queryset=self.summary_queryset())
        return Response(
            {"data": {"type": "image_summary", "id": "all", "attributes": attributes}, "jsonapi": JSONAPI_VERSION}
        )

    @extend_schema(request=SEARCH_BODY, responses=OpenApiTypes.OBJECT)
    def summary_interval(self, request: Request, date_field: str, interval: str) -> Response:
        if date_field not in AggregateDateField.values:
            raise BadRequest(
                f"Cannot summarize over {date_field!r}; use one of {AggregateDateField.values}.", parameter="date_field"
            )
        if interval not in SummaryInterval.values:
            raise BadRequest(
                f"Unknown interval {interval!r}; use one of {SummaryInterval.values}.", parameter="interval"
            )
        body = request.data if isinstance(request.data, dict) else {}
        bounds = {}
        for key in ("_start", "_end"):
            raw = body.get(key)
            try:
                bounds[key] = parse_timestamp(raw) if raw not in (None, "") else None
            except ValueError as exc:
                raise BadRequest(f"{key}: {exc}", parameter=key) from exc
        if bounds["_start"] and bounds["_end"] and bounds["_start"] > bounds["_end"]:
            raise BadRequest("_start is after _end.", parameter="_start")
        rows = selectors.summarize_intervals(
            queryset=self.summary_queryset(),
            date_field=date_field,
            interval=interval,
            start=bounds["_start"],
            end=bounds["_end"],
        )
        data = [{"type": "image_summary", "id": row["interval_start"], "attributes": row} for row in rows]
        return Response({"data": data, "jsonapi": JSONAPI_VERSION})


document_schema(ImageViewSet)
