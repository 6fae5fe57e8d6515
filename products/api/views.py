"""Catalog v2 endpoints for products, bands, derived bands and product jobs (protocol §1.3)."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, status, viewsets
from rest_framework.request import Request
from rest_framework.response import Response

from catalogsite.api import CatalogViewSet, Include
from catalogsite.choices import Action
from catalogsite.filtering import FilterCompiler, FilterField, field_for
from catalogsite.jsonapi import JSONAPI_VERSION, BadRequest
from catalogsite.schema import document_schema, untyped
from catalogsite.serializers import format_timestamp

from .. import services
from ..choices import TaskKind, TaskState
from ..derived import DERIVED_BANDS, DERIVED_BANDS_BY_ID
from ..filtersets import BandFilterSet, ProductFilterSet
from ..models import Band, Product, ProductTask
from .serializers import BandSerializer, ProductSerializer

# Only `owners` is filterable (protocol §4.1): readers/writers are redacted for non-owners, and filtering
# on them would reveal the hidden entries.
ACL_FILTERS = ("owners",)


def _fields(model, names: list[str], paths: dict[str, str] | None = None) -> dict[str, FilterField]:
    paths = paths or {}
    return {name: field_for(model, name, paths.get(name)) for name in names}


class ProductViewSet(CatalogViewSet):
    model = Product
    type_name = "product"
    serializer_class = ProductSerializer
    filterset_class = ProductFilterSet
    text_fields = ("name", "description")
    filter_fields = _fields(
        Product,
        [
            "id",
            "name",
            "description",
            "is_core",
            "revisit_period_minutes_min",
            "revisit_period_minutes_max",
            "start_datetime",
            "end_datetime",
            "resolution_min",
            "resolution_max",
            "image_index_name",
            "product_tier",
            "created",
            "modified",
            "tags",
            "default_display_bands",
            *ACL_FILTERS,
        ],
        {"resolution_min": "resolution_min_value", "resolution_max": "resolution_max_value"},
    )
    sort_fields = {
        "name": "name",
        "is_core": "is_core",
        "revisit_period_minutes_min": "revisit_period_minutes_min",
        "revisit_period_minutes_max": "revisit_period_minutes_max",
        "start_datetime": "start_datetime",
        "end_datetime": "end_datetime",
        "resolution_min": "resolution_min_value",
        "resolution_max": "resolution_max_value",
        "image_index_name": "image_index_name",
        "product_tier": "product_tier",
        "created": "created",
        "modified": "modified",
    }

    def perform_create(self, *, identifier, attributes):
        serializer = self.serializer_class(data=attributes, context=self.serializer_context())
        serializer.is_valid(raise_exception=True)
        return services.product_create(
            user=self.request.user, requested_id=identifier, attributes=dict(serializer.validated_data)
        )

    def perform_update(self, *, obj, attributes):
        serializer = self.serializer_class(obj, data=attributes, partial=True, context=self.serializer_context())
        serializer.is_valid(raise_exception=True)
        return services.product_update(product=obj, attributes=dict(serializer.validated_data), user=self.request.user)

    def perform_destroy(self, *, obj) -> None:
        services.product_delete(product=obj)


class BandViewSet(CatalogViewSet):
    model = Band
    type_name = "band"
    serializer_class = BandSerializer
    filterset_class = BandFilterSet
    select_related = ("product",)
    text_fields = ("name", "description")
    includes = {"product": Include("product", ProductViewSet, "product_id")}
    filter_fields = _fields(
        Band,
        [
            "id",
            "name",
            "product_id",
            "description",
            "type",
            "sort_order",
            "vendor_order",
            "data_type",
            "nodata",
            "resolution",
            "band_index",
            "file_index",
            "jpx_layer_index",
            "vendor_band_name",
            "physical_range_unit",
            "wavelength_nm_center",
            "wavelength_nm_min",
            "wavelength_nm_max",
            "wavelength_nm_fwhm",
            "frequency",
            "bandwidth",
            "is_alpha",
            "colormap_name",
            "created",
            "modified",
            "tags",
            *ACL_FILTERS,
        ],
        {"resolution": "resolution_value"},
    )
    sort_fields = {
        name: name
        for name in (
            "name",
            "product_id",
            "sort_order",
            "vendor_order",
            "type",
            "data_type",
            "band_index",
            "file_index",
            "wavelength_nm_center",
            "wavelength_nm_min",
            "wavelength_nm_max",
            "wavelength_nm_fwhm",
            "frequency",
            "bandwidth",
            "created",
            "modified",
        )
    } | {"resolution": "resolution_value"}

    def perform_create(self, *, identifier, attributes):
        serializer = self.serializer_class(data=attributes, context=self.serializer_context())
        serializer.is_valid(raise_exception=True)
        return services.band_create(
            user=self.request.user, attributes=dict(serializer.validated_data), requested_id=identifier
        )

    def perform_update(self, *, obj, attributes):
        serializer = self.serializer_class(obj, data=attributes, partial=True, context=self.serializer_context())
        serializer.is_valid(raise_exception=True)
        return services.band_update(band=obj, attributes=dict(serializer.validated_data))

    def perform_destroy(self, *, obj) -> None:
        services.band_delete(band=obj)


TASK_TYPES = {TaskKind.DELETE_RELATED: "product_delete_task", TaskKind.UPDATE_ACLS: "product_update_acls"}


class ProductTaskViewSet(viewsets.ViewSet):
    """`/products/{id}/delete_related_objects` and `/update_related_objects_acls`: start (POST) and status (GET)."""

    kind: str = TaskKind.DELETE_RELATED

    def product(self, pk: str, action: str) -> Product:
        view = ProductViewSet()
        view.request = self.request
        view.format_kwarg = None
        return view.get_visible_object(pk, action)

    def document(self, task: ProductTask | None, pk: str) -> dict[str, Any]:
        attributes: dict[str, Any] = {"status": TaskState.NONE}
        if task is not None:
            end = task.end_datetime
            duration = ((end or task.start_datetime) - task.start_datetime).total_seconds() if end else None
            counter = "objects_deleted" if self.kind == TaskKind.DELETE_RELATED else "objects_updated"
            attributes = {
                "status": task.status,
                "start_datetime": format_timestamp(task.start_datetime),
                "duration_in_seconds": duration,
                counter: task.objects_done,
                "errors": task.errors or None,
            }
        return {"data": {"type": TASK_TYPES[self.kind], "id": pk, "attributes": attributes}, "jsonapi": JSONAPI_VERSION}

    def parameters(self) -> dict[str, Any]:
        if self.kind == TaskKind.DELETE_RELATED:
            return {}
        body = self.request.data if isinstance(self.request.data, dict) else {}
        attributes = (body.get("data") or {}).get("attributes") or {}
        if not isinstance(attributes, dict):
            raise BadRequest("data.attributes must be an object.", pointer="/data/attributes")
        unknown = set(attributes) - {"owners", "readers", "writers", "inherit"}
        if unknown:
            raise BadRequest(f"Unknown attribute(s) {sorted(unknown)}.", pointer=f"/data/attributes/{min(unknown)}")
        inherit = attributes.get("inherit", False)
        if not isinstance(inherit, bool):
            raise BadRequest("inherit must be true or false.", pointer="/data/attributes/inherit")
        parameters: dict[str, Any] = {"inherit": inherit}
        serializer = ProductSerializer(
            data={
                k: ([v] if isinstance(v, str) else v)
                for k, v in attributes.items()
                if k in ("owners", "readers", "writers") and v is not None
            },
            partial=True,
        )
        serializer.is_valid(raise_exception=True)
        for key in ("owners", "readers", "writers"):
            parameters[key] = serializer.validated_data.get(key)
        if not parameters["inherit"] and all(parameters[k] is None for k in ("owners", "readers", "writers")):
            raise BadRequest("Give owners, readers or writers, or set inherit to true.", pointer="/data/attributes")
        return parameters

    def start(self, request: Request, pk: str) -> Response:
        with transaction.atomic():
            product = self.product(pk, Action.DELETE if self.kind == TaskKind.DELETE_RELATED else Action.SHARE)
            task = services.product_task_start(
                user=request.user, product=product, kind=self.kind, parameters=self.parameters()
            )
        if task is None:
            return Response(status=status.HTTP_204_NO_CONTENT)
        return Response(self.document(task, product.pk), status=status.HTTP_201_CREATED)

    def status(self, request: Request, pk: str) -> Response:
        product = self.product(pk, Action.VIEW)
        task = ProductTask.objects.filter(product=product, kind=self.kind).first()
        return Response(self.document(task, product.pk))


@untyped
class DeleteRelatedViewSet(ProductTaskViewSet):
    kind = TaskKind.DELETE_RELATED


@untyped
class UpdateAclsViewSet(ProductTaskViewSet):
    kind = TaskKind.UPDATE_ACLS


DERIVED_FILTER_FIELDS = {
    "id": FilterField("id", "id", "text"),
    "name": FilterField("name", "name", "text"),
    "bands": FilterField("bands", "bands", "text", is_array=True),
    "function_name": FilterField("function_name", "function_name", "text"),
    "data_type": FilterField("data_type", "data_type", "text"),
}


def _derived_matches(q, band) -> bool:
    """Evaluate a compiled filter Q against one in-memory derived band (the standard set is tiny)."""
    if not q.children:
        return True
    results = []
    for child in q.children:
        if hasattr(child, "children"):
            results.append(_derived_matches(child, band))
            continue
        lookup, value = child
        path, _, op = lookup.partition("__")
        current = getattr(band, path) if path != "id" else band.id
        if isinstance(current, tuple):
            current = list(current)
        if op == "":
            result = current == value
        elif op == "in":
            result = current in value
        elif op == "contains":
            result = all(item in current for item in value)
        elif op == "overlap":
            result = any(item in current for item in value)
        elif op == "startswith":
            result = isinstance(current, str) and current.startswith(value)
        elif op == "isnull":
            result = (current in (None, [])) == value
        elif op == "len":
            result = len(current or []) == value
        else:
            raise BadRequest(f"Operator {op} is not supported on derived bands.", parameter="filter")
        results.append(result)
    combined = all(results) if q.connector == "AND" else any(results)
    return not combined if q.negated else combined


@untyped
class DerivedBandViewSet(viewsets.ViewSet):
    """Read-only standard derived bands for 1.x/2.x clients (protocol §8)."""

    @staticmethod
    def resource(band) -> dict[str, Any]:
        return {"type": "derived_band", "id": band.id, "attributes": band.attributes()}

    def search(self, request: Request, pk: str | None = None) -> Response:
        body = request.data if isinstance(request.data, dict) else {}
        unknown = set(body) - {"filter", "sort", "limit", "text", "include", "continuation"}
        if unknown:
            raise BadRequest(f"Unknown search parameter(s) {sorted(unknown)}.", parameter=sorted(unknown)[0])
        if body.get("include"):
            raise BadRequest("Derived bands have no relationships to include.", parameter="include")
        q = FilterCompiler(DERIVED_FILTER_FIELDS).compile(body.get("filter"))
        bands = [band for band in self.candidates_for(request, pk) if _derived_matches(q, band)]
        sort = body.get("sort") or "id"
        key = sort.lstrip("-")
        if key not in ("id", "name", "function_name", "data_type"):
            raise BadRequest(f"Cannot sort derived bands by {key!r}.", parameter="sort")
        bands.sort(key=lambda band: getattr(band, key), reverse=sort.startswith("-"))
        limit = body.get("limit")
        if isinstance(limit, int) and not isinstance(limit, bool) and limit >= 0:
            if limit == 0:
                return Response({"data": [], "meta": {"count": len(bands)}, "links": {}, "jsonapi": JSONAPI_VERSION})
            bands = bands[:limit]
        return Response(
            {
                "data": [self.resource(b) for b in bands],
                "meta": {"count": len(bands)},
                "links": {"self": request.build_absolute_uri(request.path)},
                "jsonapi": JSONAPI_VERSION,
            }
        )

    def candidates_for(self, request: Request, pk: str | None):
        if pk is None:
            return list(DERIVED_BANDS)
        view = ProductViewSet()
        view.request = request
        view.format_kwarg = None
        product = view.get_visible_object(pk)
        names = set(Band.objects.restrict(request.user).filter(product=product).values_list("name", flat=True))
        return [band for band in DERIVED_BANDS if band.applies_to(names)]

    def retrieve(self, request: Request, pk: str) -> Response:
        band = DERIVED_BANDS_BY_ID.get(pk) or DERIVED_BANDS_BY_ID.get(f"derived:{pk}")
        if band is None:
            raise exceptions.NotFound(f"derived_band {pk} not found.")
        return Response({"data": self.resource(band), "jsonapi": JSONAPI_VERSION})

    @extend_schema(operation_id="derived_bands_list")
    def list(self, request: Request) -> Response:
        return Response(
            {
                "data": [self.resource(b) for b in DERIVED_BANDS],
                "meta": {"count": len(DERIVED_BANDS)},
                "links": {"self": request.build_absolute_uri(request.path)},
                "jsonapi": JSONAPI_VERSION,
            }
        )


document_schema(ProductViewSet)
document_schema(BandViewSet)
