"""Bad input never reaches the database and never yields a 5xx: every answer is a JSON:API error document
(`errors[0].status` is the HTTP status as a string, with a `title` and a `detail` naming the problem), with a
status the 3.2.2 client can map (protocol §2.3): 400/422, or 404/409 where that is the meaning.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from typing import Any

import pytest

from imagery.models import Image
from products.models import Band, Product
from tests.catalog.helpers import (
    SQUARE,
    assert_error,
    band_attributes,
    counts,
    document,
    image_attributes,
    leaf,
    make_band,
    make_image,
    search_body,
    snapshot,
)

pytestmark = pytest.mark.django_db

BAD_REQUEST = (400, 422)
BOWTIE = {"type": "Polygon", "coordinates": [[[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]]]}
TOO_FAR_NORTH = {"type": "Polygon", "coordinates": [[[0, 80], [1, 80], [1, 91], [0, 91], [0, 80]]]}
NOT_A_GEOMETRY = {"type": "Circle", "coordinates": [0, 0], "radius": 5}


@dataclass
class Case:
    """One bad request: method, path, JSON body (or raw text), and what the error must name."""

    method: str
    path: str
    body: Any = None
    raw: str | bytes | None = None
    content_type: str = "application/vnd.api+json"
    names: tuple[str, ...] = ()  # substrings the error detail must contain (case-insensitive)
    pointer: str | None = None  # the expected errors[0].source.pointer, when there is one
    parameter: str | None = None  # the expected errors[0].source.parameter, when there is one
    statuses: tuple[int, ...] = BAD_REQUEST
    settings: dict[str, Any] = field(default_factory=dict)


def product(attributes: dict[str, Any], identifier: str = "new") -> dict[str, Any]:
    return document("product", attributes, identifier)


def band(**attributes: Any) -> dict[str, Any]:
    name = attributes.pop("name", "b1")
    band_type = attributes.pop("type", "spectral")
    return document("band", band_attributes("acme:p", name, band_type, **attributes))


def image(**attributes: Any) -> dict[str, Any]:
    return document("image", image_attributes("acme:p", attributes.pop("name", "new"), **attributes))


def intersects(geometry: Any) -> dict[str, Any]:
    value = geometry if isinstance(geometry, str) else json.dumps(geometry)
    return {"intersects": value, "filter": json.dumps([leaf("product_id", "eq", "acme:p")])}


def interval_body(**extra: Any) -> dict[str, Any]:
    return {"filter": json.dumps([leaf("product_id", "eq", "acme:p")]), **extra}


def nested(expression: dict[str, Any], *, depth: int) -> dict[str, Any]:
    for level in range(depth):
        expression = {"or" if level % 2 else "and": [expression]}
    return expression


def token(payload: Any) -> str:
    """A continuation token in the server's shape (urlsafe base64 of JSON), built by hand."""
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")


NAME_SORT_TOKEN = token({"s": "name", "v": "a", "i": "acme:p", "n": 1})
LIST_TOKEN = token([1, 2, 3])
CREATED_TOKEN = token({"s": "created", "v": "not a time", "i": "acme:p", "n": 1})
NUMBER_TOKEN = token({"s": "revisit_period_minutes_min", "v": "lots", "i": "acme:p", "n": 1})

CASES = {
    # ---- the document itself ----
    "malformed-json": Case("post", "products", raw='{"data": {"type": "product", "id": "x"', names=("json",)),
    "malformed-json-search": Case("put", "products", raw="{'filter': []}", names=("json",)),
    "not-utf8": Case("post", "products", raw=b'{"data": {"type": "product", "id": "\xff\xfe"}}', names=("json",)),
    "text-plain": Case(
        "post", "products", raw=json.dumps(product({"name": "x"})), content_type="text/plain", names=("content type",)
    ),
    "form-encoded": Case(
        "put", "products", raw="filter=x", content_type="application/x-www-form-urlencoded", names=("content type",)
    ),
    "body-is-a-list": Case("post", "products", body=[product({"name": "x"})], names=("data",)),
    "body-is-a-string": Case("post", "products", body="hello", names=("data",)),
    "search-body-is-a-list": Case("put", "products", body=[{"filter": "[]"}], names=("object",)),
    "missing-data": Case("post", "products", body={"id": "x", "type": "product"}, names=("data",), pointer="/data"),
    "empty-body": Case("post", "products", raw="", names=("data",), pointer="/data"),
    "data-not-object": Case("post", "products", body={"data": ["product"]}, names=("data",), pointer="/data"),
    "wrong-type": Case(
        "post", "products", body=document("band", {"name": "x"}, "x"), names=("product",), pointer="/data/type"
    ),
    "wrong-type-on-patch": Case(
        "patch",
        "products/acme:p",
        body=document("image", {"name": "x"}, "acme:p"),
        names=("product",),
        pointer="/data/type",
    ),
    "attributes-not-object": Case(
        "post",
        "products",
        body={"data": {"type": "product", "id": "x", "attributes": ["name"]}},
        names=("attributes",),
        pointer="/data/attributes",
    ),
    "unknown-attribute": Case(
        "post",
        "products",
        body=product({"name": "x", "bogus_attribute": 1}),
        names=("bogus_attribute",),
        pointer="/data/attributes/bogus_attribute",
    ),
    "unknown-attribute-on-patch": Case(
        "patch",
        "products/acme:p",
        body=document("product", {"colour": "red"}, "acme:p"),
        names=("colour",),
        pointer="/data/attributes/colour",
    ),
    "unknown-band-attribute": Case(
        "post", "bands", body=band(wavelength="red"), names=("wavelength",), pointer="/data/attributes/wavelength"
    ),
    "patch-id-mismatch": Case(
        "patch",
        "products/acme:p",
        body=document("product", {"name": "x"}, "acme:other"),
        names=("acme:other",),
        pointer="/data/id",
    ),
    "id-not-string": Case(
        "post",
        "products",
        body={"data": {"type": "product", "id": 5, "attributes": {}}},
        names=("id",),
        pointer="/data/id",
    ),
    "missing-product-id": Case(
        "post",
        "products",
        body={"data": {"type": "product", "attributes": {"name": "x"}}},
        names=("id",),
        pointer="/data/id",
    ),
    "invalid-product-id-characters": Case(
        "post", "products", body=product({}, "has space/and slash"), names=("id",), pointer="/data/id"
    ),
    "oversized-body": Case(
        "post",
        "products",
        body=product({"description": "x" * 3000}),
        names=("exceeds",),
        settings={"DATA_UPLOAD_MAX_MEMORY_SIZE": 1000},
    ),
    "oversized-search-body": Case(
        "put", "products", body={"text": "y" * 3000}, names=("exceeds",), settings={"DATA_UPLOAD_MAX_MEMORY_SIZE": 1000}
    ),
    # ---- attribute values ----
    "wrong-attribute-type": Case(
        "post",
        "products",
        body=product({"revisit_period_minutes_min": "soon"}),
        names=("revisit_period_minutes_min",),
        pointer="/data/attributes/revisit_period_minutes_min",
    ),
    "unparseable-datetime": Case(
        "post",
        "products",
        body=product({"start_datetime": "yesterday"}),
        names=("start_datetime",),
        pointer="/data/attributes/start_datetime",
    ),
    "datetime-out-of-range": Case(
        "post",
        "products",
        body=product({"start_datetime": "2020-13-45T99:00:00"}),
        names=("start_datetime",),
        pointer="/data/attributes/start_datetime",
    ),
    "end-before-start": Case(
        "post",
        "products",
        body=product({"start_datetime": "2021-01-01", "end_datetime": "2020-01-01"}),
        names=("end_datetime",),
        pointer="/data/attributes/end_datetime",
    ),
    "too-many-tags": Case(
        "post",
        "products",
        body=product({"tags": [f"t{i}" for i in range(33)]}),
        names=("tags",),
        pointer="/data/attributes/tags",
    ),
    "tag-too-long": Case(
        "post", "products", body=product({"tags": ["é" * 501]}), names=("tags",), pointer="/data/attributes/tags"
    ),
    "tag-not-string": Case("post", "products", body=product({"tags": [1]}), names=("tags",)),
    "too-many-extra-properties": Case(
        "post",
        "products",
        body=product({"extra_properties": {f"k{i}": i for i in range(51)}}),
        names=("extra_properties",),
        pointer="/data/attributes/extra_properties",
    ),
    "extra-property-list-value": Case(
        "post",
        "products",
        body=product({"extra_properties": {"k": [1, 2]}}),
        names=("extra_properties",),
        pointer="/data/attributes/extra_properties",
    ),
    "extra-property-nested-object": Case(
        "post", "products", body=product({"extra_properties": {"k": {"a": 1}}}), names=("extra_properties",)
    ),
    "extra-properties-not-object": Case(
        "post", "products", body=product({"extra_properties": ["k"]}), names=("extra_properties",)
    ),
    "bad-principal": Case(
        "post",
        "products",
        body=product({"readers": ["everyone"]}),
        names=("readers",),
        pointer="/data/attributes/readers",
    ),
    "email-owner": Case(
        "post",
        "products",
        body=product({"owners": ["email:a@example.com"]}),
        names=("owners",),
        pointer="/data/attributes/owners",
    ),
    "band-name-invalid-characters": Case(
        "post", "bands", body=band(name="red band!"), names=("name",), pointer="/data/attributes/name"
    ),
    "band-name-too-long": Case(
        "post", "bands", body=band(name="b" * 2001), names=("name",), pointer="/data/attributes/name"
    ),
    "band-type-unknown": Case(
        "post", "bands", body=band(type="hyperspectral"), names=("type",), pointer="/data/attributes/type"
    ),
    "band-type-missing": Case(
        "post",
        "bands",
        body=document("band", {"name": "b1", "product_id": "acme:p"}),
        names=("type",),
        pointer="/data/attributes/type",
    ),
    "spectral-attribute-on-class-band": Case(
        "post",
        "bands",
        body=band(type="class", wavelength_nm_center=665),
        names=("wavelength_nm_center",),
        pointer="/data/attributes/wavelength_nm_center",
    ),
    "colormap-on-spectral-band": Case(
        "post",
        "bands",
        body=band(colormap_name="viridis"),
        names=("colormap_name",),
        pointer="/data/attributes/colormap_name",
    ),
    "frequency-on-mask-band": Case(
        "post",
        "bands",
        body=band(type="mask", frequency=5.4),
        names=("frequency",),
        pointer="/data/attributes/frequency",
    ),
    "mask-band-other-range": Case(
        "post",
        "bands",
        body=band(type="mask", data_range=[0, 255]),
        names=("data_range",),
        pointer="/data/attributes/data_range",
    ),
    "range-wrong-length": Case(
        "post", "bands", body=band(data_range=[0, 1, 2]), names=("data_range",), pointer="/data/attributes/data_range"
    ),
    "range-reversed": Case(
        "post",
        "bands",
        body=band(display_range=[10, 0]),
        names=("display_range",),
        pointer="/data/attributes/display_range",
    ),
    "bad-data-type": Case(
        "post", "bands", body=band(data_type="UInt128"), names=("data_type",), pointer="/data/attributes/data_type"
    ),
    "bad-resolution-unit": Case(
        "post",
        "bands",
        body=band(resolution={"value": 10, "unit": "furlongs"}),
        names=("resolution",),
        pointer="/data/attributes/resolution",
    ),
    "negative-resolution": Case(
        "post", "bands", body=band(resolution=-10), names=("resolution",), pointer="/data/attributes/resolution"
    ),
    "band-name-change": Case(
        "patch",
        "bands/acme:p:red",
        body=document("band", {"name": "blue"}, "acme:p:red"),
        names=("name",),
        pointer="/data/attributes/name",
    ),
    "band-of-unknown-product": Case(
        "post",
        "bands",
        body=document("band", band_attributes("acme:nope", "b1")),
        names=("acme:nope",),
        statuses=(404,),
    ),
    "duplicate-band": Case("post", "bands", body=band(name="red"), names=("acme:p:red",), statuses=(409,)),
    "band-id-not-product-and-name": Case(
        "post",
        "bands",
        body={"data": {"type": "band", "id": "acme:p:other", "attributes": band_attributes("acme:p", "b1")}},
        names=("acme:p:b1",),
        pointer="/data/id",
    ),
    # ---- image geometry and values ----
    "self-intersecting-polygon": Case(
        "post", "images", body=image(geometry=BOWTIE), names=("geometry",), pointer="/data/attributes/geometry"
    ),
    "latitude-above-90": Case(
        "post", "images", body=image(geometry=TOO_FAR_NORTH), names=("geometry",), pointer="/data/attributes/geometry"
    ),
    "unknown-geometry-type": Case(
        "post", "images", body=image(geometry=NOT_A_GEOMETRY), names=("geometry",), pointer="/data/attributes/geometry"
    ),
    "geometry-not-json": Case(
        "post", "images", body=image(geometry="{not json"), names=("geometry",), pointer="/data/attributes/geometry"
    ),
    "geometry-without-coordinates": Case(
        "post",
        "images",
        body=image(geometry={"type": "Polygon"}),
        names=("geometry",),
        pointer="/data/attributes/geometry",
    ),
    "image-unparseable-acquired": Case(
        "post", "images", body=image(acquired="2021-02-30"), names=("acquired",), pointer="/data/attributes/acquired"
    ),
    "image-missing-acquired": Case(
        "post", "images", body=image(acquired=None), names=("acquired",), pointer="/data/attributes/acquired"
    ),
    "cloud-fraction-above-one": Case(
        "post",
        "images",
        body=image(cloud_fraction=1.5),
        names=("cloud_fraction",),
        pointer="/data/attributes/cloud_fraction",
    ),
    "storage-state-unknown": Case(
        "post",
        "images",
        body=image(storage_state="archived"),
        names=("storage_state",),
        pointer="/data/attributes/storage_state",
    ),
    "available-image-without-files": Case(
        "post", "images", body=image(files=[]), names=("files",), pointer="/data/attributes/files"
    ),
    "image-size-bytes-not-writable": Case(
        "post", "images", body=image(size_bytes=5), names=("size_bytes",), pointer="/data/attributes/size_bytes"
    ),
    "geotrans-wrong-length": Case(
        "post", "images", body=image(geotrans=[0, 1, 2]), names=("geotrans",), pointer="/data/attributes/geotrans"
    ),
    "duplicate-image": Case("post", "images", body=image(name="img1"), names=("acme:p:img1",), statuses=(409,)),
    # ---- searches ----
    "filter-not-json": Case(
        "put", "products", body={"filter": "[{name: id}"}, names=("filter", "json"), parameter="filter"
    ),
    "filter-not-a-list": Case("put", "products", body={"filter": "42"}, names=("filter",), parameter="filter"),
    "filter-unknown-field": Case(
        "put", "products", body=search_body(leaf("colour", "eq", "red")), names=("colour",), parameter="filter"
    ),
    "filter-unknown-op": Case(
        "put", "products", body=search_body(leaf("name", "like", "x%")), names=("like",), parameter="filter"
    ),
    "filter-missing-val": Case(
        "put", "products", body=search_body(leaf("name", "eq")), names=("val",), parameter="filter"
    ),
    "filter-unparseable-datetime": Case(
        "put", "products", body=search_body(leaf("created", "gt", "last week")), names=("created",), parameter="filter"
    ),
    "filter-bad-number": Case(
        "put",
        "images",
        body=search_body(leaf("cloud_fraction", "lt", "half")),
        names=("cloud_fraction",),
        parameter="filter",
    ),
    "filter-bad-enum": Case(
        "put",
        "bands",
        body=search_body(leaf("type", "eq", "hyperspectral")),
        names=("hyperspectral",),
        parameter="filter",
    ),
    "filter-bad-boolean": Case(
        "put", "products", body=search_body(leaf("is_core", "eq", "maybe")), names=("is_core",), parameter="filter"
    ),
    "filter-ordering-on-boolean": Case(
        "put", "products", body=search_body(leaf("is_core", "lt", True)), names=("is_core",), parameter="filter"
    ),
    "filter-prefix-on-number": Case(
        "put",
        "images",
        body=search_body(leaf("cloud_fraction", "prefix", "0")),
        names=("cloud_fraction",),
        parameter="filter",
    ),
    "filter-empty-list-value": Case(
        "put", "products", body=search_body(leaf("id", "eq", [])), names=("id",), parameter="filter"
    ),
    "filter-empty-or": Case("put", "products", body=search_body({"or": []}), names=("or",), parameter="filter"),
    "filter-too-deep": Case(
        "put",
        "products",
        body=search_body(nested(leaf("name", "eq", "x"), depth=20)),
        names=("deep",),
        parameter="filter",
    ),
    "filter-extra-key": Case(
        "put",
        "products",
        body=search_body({"name": "id", "op": "eq", "val": "x", "x": 1}),
        names=("x",),
        parameter="filter",
    ),
    "unknown-search-key": Case("put", "products", body={"filters": "[]"}, names=("filters",), parameter="filters"),
    "negative-limit": Case("put", "products", body={"limit": -1}, names=("limit",), parameter="limit"),
    "string-limit": Case("put", "products", body={"limit": "ten"}, names=("limit",), parameter="limit"),
    "negative-limit-query": Case("get", "products?limit=-5", names=("limit",), parameter="limit"),
    "non-numeric-limit-query": Case("get", "products?limit=many", names=("limit",), parameter="limit"),
    "bad-sort-field": Case("put", "products", body={"sort": "colour"}, names=("colour",), parameter="sort"),
    "bad-sort-query": Case("get", "images?sort=-size_bytes", names=("size_bytes",), parameter="sort"),
    "sort-not-string": Case("put", "products", body={"sort": ["name"]}, names=("sort",), parameter="sort"),
    "bad-continuation-token": Case(
        "put", "products?continuation=not-a-token!!", body={}, names=("continuation",), parameter="continuation"
    ),
    "continuation-of-another-sort": Case(
        "put",
        f"products?continuation={NAME_SORT_TOKEN}",
        body={"sort": "-name"},
        names=("continuation",),
        parameter="continuation",
    ),
    "continuation-token-not-an-object": Case(
        "put", f"products?continuation={LIST_TOKEN}", body={}, names=("continuation",), parameter="continuation"
    ),
    "bad-include": Case("put", "bands", body={"include": "owner"}, names=("owner",), parameter="include"),
    "include-on-products": Case("get", "products/acme:p?include=bands", names=("bands",), parameter="include"),
    "text-not-string": Case("put", "products", body={"text": 5}, names=("text",), parameter="text"),
    "intersects-on-products": Case(
        "put", "products", body={"intersects": json.dumps(SQUARE)}, names=("geometry",), parameter="intersects"
    ),
    "intersects-self-intersecting": Case(
        "put", "images", body=intersects(BOWTIE), names=("intersects",), parameter="intersects"
    ),
    "intersects-latitude-above-90": Case(
        "put", "images", body=intersects(TOO_FAR_NORTH), names=("intersects",), parameter="intersects"
    ),
    "intersects-wrong-type": Case(
        "put", "images", body=intersects(NOT_A_GEOMETRY), names=("intersects",), parameter="intersects"
    ),
    "intersects-not-json": Case(
        "put", "images", body=intersects("{nope"), names=("intersects",), parameter="intersects"
    ),
    "intersects-none-not-boolean": Case(
        "put",
        "images",
        body={"intersects": json.dumps(SQUARE), "intersects_none": "yes"},
        names=("intersects_none",),
        parameter="intersects_none",
    ),
    "unknown-query-parameter": Case("get", "images?colour=red", names=("colour",), parameter="colour"),
    "bad-query-filter-value": Case("get", "images?cloud_fraction__lt=half", names=("cloud_fraction",)),
    "bad-bbox": Case("get", "images?bbox=1,2,3", names=("bbox",), parameter="bbox"),
    # ---- summaries ----
    "summary-with-sort": Case("put", "images/summary/all", body={"sort": "acquired"}, names=("sort",)),
    "summary-bad-filter": Case(
        "put", "images/summary/all", body=search_body(leaf("bytes", "gt", 1)), names=("bytes",), parameter="filter"
    ),
    "summary-interval-unparseable-start": Case(
        "put",
        "images/summary/acquired/month",
        body=interval_body(_start="the beginning", _end=""),
        names=("_start",),
        parameter="_start",
    ),
    "summary-interval-unparseable-end": Case(
        "put",
        "images/summary/acquired/month",
        body=interval_body(_start="2020-01-01", _end="2020-02-31"),
        names=("_end",),
        parameter="_end",
    ),
    "summary-interval-start-after-end": Case(
        "put",
        "images/summary/acquired/month",
        body=interval_body(_start="2021-01-01", _end="2020-01-01"),
        names=("_start",),
    ),
    "summary-unknown-interval": Case(
        "put", "images/summary/acquired/fortnight", body=interval_body(), names=("fortnight",), parameter="interval"
    ),
    "summary-unknown-date-field": Case(
        "put", "images/summary/expires/month", body=interval_body(), names=("expires",), parameter="date_field"
    ),
    "summary-too-many-buckets": Case(
        "put",
        "images/summary/acquired/minute",
        body=interval_body(_start="2000-01-01", _end="2020-01-01"),
        names=("minute",),
    ),
    # ---- values that overflow or cannot be stored: must be refused, not crash the database layer ----
    "number-too-large-for-a-float": Case(
        "post",
        "products",
        body=product({"revisit_period_minutes_min": 10**400}),
        names=("revisit_period_minutes_min",),
        pointer="/data/attributes/revisit_period_minutes_min",
    ),
    "integer-too-large-for-the-column": Case(
        "post", "images", body=image(x_pixels=2**40), names=("x_pixels",), pointer="/data/attributes/x_pixels"
    ),
    "sort-order-too-large": Case(
        "post", "bands", body=band(sort_order=2**40), names=("sort_order",), pointer="/data/attributes/sort_order"
    ),
    "file-size-too-large": Case(
        "post",
        "images",
        body=image(files=[{"href": "gs://b/a.tif", "size_bytes": 2**70, "hash": "h"}]),
        names=("files",),
        pointer="/data/attributes/files",
    ),
    "datetime-overflows-when-converted-to-utc": Case(
        "post",
        "products",
        body=product({"start_datetime": "9999-12-31T23:59:59-01:00"}),
        names=("start_datetime",),
        pointer="/data/attributes/start_datetime",
    ),
    "datetime-underflows-when-converted-to-utc": Case(
        "post",
        "products",
        body=product({"end_datetime": "0001-01-01T00:00:00+01:00"}),
        names=("end_datetime",),
        pointer="/data/attributes/end_datetime",
    ),
    "nul-character-in-extra-properties": Case(
        "post", "products", body=product({"extra_properties": {"k": "a\x00b"}}), names=("extra_properties",)
    ),
    "nul-character-in-name": Case(
        "post", "products", body=product({"name": "a\x00b"}), names=("name",), pointer="/data/attributes/name"
    ),
    "deeply-nested-json-body": Case("post", "products", raw="[" * 100_000 + "]" * 100_000, names=("json",)),
    # ---- searches that must be refused, not crash ----
    "filter-number-too-large": Case(
        "put",
        "images",
        body=search_body(leaf("cloud_fraction", "lt", 10**400)),
        names=("cloud_fraction",),
        parameter="filter",
    ),
    "filter-datetime-overflows": Case(
        "put",
        "products",
        body=search_body(leaf("created", "lt", "9999-12-31T23:59:59-01:00")),
        names=("created",),
        parameter="filter",
    ),
    "filter-nul-character": Case(
        "put", "products", body=search_body(leaf("name", "eq", "a\x00b")), names=("name",), parameter="filter"
    ),
    "text-nul-character": Case("put", "products", body={"text": "a\x00b"}, names=("text",), parameter="text"),
    "filter-deeply-nested-json-string": Case(
        "put", "products", body={"filter": "[" * 100_000 + "]" * 100_000}, names=("filter",), parameter="filter"
    ),
    "intersects-nan-coordinates": Case(
        "put",
        "images",
        raw='{"intersects": {"type": "Point", "coordinates": [NaN, 1]}}',
        names=("intersects",),
        parameter="intersects",
    ),
    "continuation-value-of-the-wrong-type": Case(
        "put",
        f"products?continuation={CREATED_TOKEN}",
        body={"sort": "created"},
        names=("continuation",),
        parameter="continuation",
    ),
    "continuation-number-of-the-wrong-type": Case(
        "put",
        f"products?continuation={NUMBER_TOKEN}",
        body={"sort": "revisit_period_minutes_min"},
        names=("continuation",),
        parameter="continuation",
    ),
    # ---- product jobs ----
    "update-acls-inherit-not-boolean": Case(
        "post",
        "products/acme:p/update_related_objects_acls",
        body={"data": {"type": "product_update_acls", "attributes": {"inherit": "no"}}},
        names=("inherit",),
    ),
    "update-acls-nothing-to-do": Case(
        "post",
        "products/acme:p/update_related_objects_acls",
        body={"data": {"type": "product_update_acls", "attributes": {}}},
        names=("inherit",),
        pointer="/data/attributes",
    ),
    "update-acls-unknown-attribute": Case(
        "post",
        "products/acme:p/update_related_objects_acls",
        body={"data": {"type": "product_update_acls", "attributes": {"inherit": True, "everyone": True}}},
        names=("everyone",),
        pointer="/data/attributes/everyone",
    ),
    "update-acls-bad-principal": Case(
        "post",
        "products/acme:p/update_related_objects_acls",
        body={"data": {"type": "product_update_acls", "attributes": {"readers": ["nobody"]}}},
        names=("readers",),
    ),
    "derived-bands-with-include": Case(
        "put",
        "products/acme:p/relationships/derived_bands",
        body={"include": "product"},
        names=("include",),
        parameter="include",
    ),
    "derived-bands-bad-sort": Case(
        "put", "derived_bands", body={"sort": "colour"}, names=("colour",), parameter="sort"
    ),
}


@pytest.fixture
def world(alice_product, alice_api):
    make_band(alice_product, "red")
    make_image(alice_product, "img1")
    return alice_api


def existing_rows() -> list[dict[str, Any]]:
    return [
        snapshot(obj)
        for obj in (
            Product.objects.get(pk="acme:p"),
            Band.objects.get(pk="acme:p:red"),
            Image.objects.get(pk="acme:p:img1"),
        )
    ]


@pytest.mark.parametrize("case", list(CASES.values()), ids=list(CASES))
def test_bad_input_is_a_json_api_error_and_changes_nothing(world, settings, case: Case):
    for key, value in case.settings.items():
        setattr(settings, key, value)
    before = counts()
    rows_before = existing_rows()

    kwargs: dict[str, Any] = {"content_type": case.content_type}
    if case.raw is not None:
        kwargs["raw"] = case.raw
    if case.method == "get":
        response = world.get(case.path)
    elif case.raw is not None:
        response = getattr(world, case.method)(case.path, **kwargs)
    else:
        response = getattr(world, case.method)(case.path, case.body, **kwargs)

    error = assert_error(response, *case.statuses)
    for name in case.names:
        assert name.lower() in error["detail"].lower(), (name, error)
    if case.pointer is not None:
        assert error.get("source", {}).get("pointer") == case.pointer, error
    if case.parameter is not None:
        assert error.get("source", {}).get("parameter") == case.parameter, error
    assert counts() == before
    assert existing_rows() == rows_before


def test_every_error_of_a_multi_error_document_is_well_formed(world):
    response = world.post(
        "products", product({"tags": "notalist", "extra_properties": [], "bogus": 1, "start_datetime": "never"})
    )

    assert_error(response, 400, 422)
    for error in response.json()["errors"]:
        assert error["status"] == str(response.status_code)
        assert error["title"] and error["detail"]


def test_unknown_route_is_a_json_api_404(world):
    response = world.get("widgets/1")

    assert_error(response, 404)


def test_unsupported_method_is_a_json_api_405(world):
    response = world.post("images/acme:p:img1", image())

    assert_error(response, 405)


def test_error_responses_use_the_json_api_media_type(world):
    response = world.put("products", {"limit": -1})

    assert response["Content-Type"].startswith("application/vnd.api+json")
    assert_error(response, 400)
