"""Plain helpers for the Catalog v2 API tests: URLs, JSON:API documents, error checks and ORM builders.

Fixtures live in `conftest.py` next to this file; everything here is a plain function so test modules can
import it (`from tests.catalog.helpers import ...`).
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any
from urllib.parse import urlsplit

from django.contrib.gis.geos import GEOSGeometry

from imagery.models import Image
from products.models import Band, Product, ProductTask

BASE = "/metadata/v1/catalog/v2"
JSONAPI = "application/vnd.api+json"
ACL_FIELDS = ("owners", "readers", "writers")
TIMESTAMP_RE = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?Z$"

SQUARE = {"type": "Polygon", "coordinates": [[[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0], [0.0, 0.0]]]}
GEOTRANS = [0.0, 0.1, 0.0, 1.0, 0.0, -0.1]
_MISSING = object()


def url(path: str) -> str:
    """`products/x` → the full API path; a path already under BASE is kept."""
    return path if path.startswith(BASE) else f"{BASE}/{path.lstrip('/')}"


class Api:
    """A thin JSON:API wrapper around a DRF test client (JSON bodies, `application/vnd.api+json`)."""

    def __init__(self, client):
        self.client = client

    def _send(
        self,
        method: str,
        path: str,
        body: Any = _MISSING,
        *,
        raw: str | bytes | None = None,
        content_type: str = JSONAPI,
        **extra,
    ):
        if raw is None and body is _MISSING:
            return getattr(self.client, method)(url(path), **extra)
        data = raw if raw is not None else json.dumps(body)
        return getattr(self.client, method)(url(path), data=data, content_type=content_type, **extra)

    def get(self, path: str, **extra):
        return self.client.get(url(path), **extra)

    def head(self, path: str, **extra):
        return self.client.head(url(path), **extra)

    def delete(self, path: str, **extra):
        return self.client.delete(url(path), **extra)

    def put(self, path: str, body: Any = _MISSING, **kwargs):
        return self._send("put", path, body, **kwargs)

    def post(self, path: str, body: Any = _MISSING, **kwargs):
        return self._send("post", path, body, **kwargs)

    def patch(self, path: str, body: Any = _MISSING, **kwargs):
        return self._send("patch", path, body, **kwargs)

    def search_all(self, collection: str, body: dict[str, Any], *, max_pages: int = 100) -> tuple[list[str], int]:
        """Follow `links.next` like the client does (same body on every page): (all ids, number of pages)."""
        response = self.put(collection, body)
        assert response.status_code == 200, response.content
        found = ids_of(response)
        pages = 1
        while response.json()["links"].get("next"):
            assert pages < max_pages, "pagination does not end"
            response = self.put(next_path(response.json()["links"]["next"]), body)
            assert response.status_code == 200, response.content
            assert response.json()["data"], "a `next` link led to an empty page"
            found += ids_of(response)
            pages += 1
        return found, pages


# ---- documents -----------------------------------------------------------------------------------------
def document(type_name: str, attributes: dict[str, Any] | None = None, identifier: str | None = None) -> dict:
    data: dict[str, Any] = {"type": type_name, "attributes": attributes or {}}
    if identifier is not None:
        data["id"] = identifier
    return {"data": data}


def leaf(name: str, op: str, val: Any = _MISSING) -> dict[str, Any]:
    expression: dict[str, Any] = {"op": op, "name": name}
    if val is not _MISSING:
        expression["val"] = val
    return expression


def search_body(*expressions: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """A search body as the client sends it: `filter` is a compact JSON *string* of a list."""
    body = dict(extra)
    if expressions:
        body["filter"] = json.dumps(list(expressions), separators=(",", ":"))
    return body


def ids_of(response) -> list[str]:
    return [item["id"] for item in response.json()["data"]]


def included_of(response) -> list[tuple[str, str]]:
    return [(item["type"], item["id"]) for item in response.json().get("included", [])]


def next_path(link: str) -> str:
    """The client strips the base URL from `links.next` and PUTs to the rest."""
    parts = urlsplit(link)
    assert parts.scheme in ("http", "https") and parts.netloc, f"links.next is not absolute: {link!r}"
    return f"{parts.path}?{parts.query}" if parts.query else parts.path


def assert_error(response, *statuses: int) -> dict[str, Any]:
    """A JSON:API error document with one of `statuses` (and never a 5xx); returns `errors[0]`."""
    assert response.status_code < 500, response.content
    assert response.status_code in statuses, (response.status_code, response.content)
    body = response.json()
    assert isinstance(body.get("errors"), list) and body["errors"], body
    error = body["errors"][0]
    assert error["status"] == str(response.status_code), error
    assert isinstance(error.get("title"), str) and error["title"], error
    assert isinstance(error.get("detail"), str) and error["detail"], error
    return error


def snapshot(obj) -> dict[str, Any]:
    """Every column of `obj` as stored now (geometries as EWKT), for "the row is unchanged" checks."""
    fresh = type(obj).objects.get(pk=obj.pk)
    values = {}
    for field in fresh._meta.concrete_fields:
        value = getattr(fresh, field.attname)
        values[field.attname] = value.ewkt if isinstance(value, GEOSGeometry) else value
    return values


def counts() -> dict[str, int]:
    return {
        "products": Product.objects.count(),
        "bands": Band.objects.count(),
        "images": Image.objects.count(),
        "tasks": ProductTask.objects.count(),
    }


# ---- request attributes ------------------------------------------------------------------------------------
def band_attributes(product_id: str, name: str, band_type: str = "spectral", **attributes: Any) -> dict[str, Any]:
    return {"name": name, "product_id": product_id, "type": band_type, "data_type": "UInt16", **attributes}


def image_attributes(product_id: str, name: str, **attributes: Any) -> dict[str, Any]:
    """An `available` image with everything the server requires (files with href, size_bytes and hash)."""
    values: dict[str, Any] = {
        "name": name,
        "product_id": product_id,
        "acquired": "2021-05-01T00:00:00Z",
        "geometry": SQUARE,
        "cs_code": "EPSG:4326",
        "geotrans": GEOTRANS,
        "x_pixels": 10,
        "y_pixels": 10,
        "files": [{"href": f"gs://bucket/{name}.tif", "size_bytes": 1000, "hash": "d41d8cd98f00b204e9800998ecf8427e"}],
    }
    values.update(attributes)
    return values


# ---- ORM builders (fast setup; the API paths are exercised by the tests themselves) ---------------------
def make_product(
    product_id: str,
    *,
    owners: list[str],
    readers: list[str] | tuple = (),
    writers: list[str] | tuple = (),
    **attributes: Any,
) -> Product:
    return Product.objects.create(
        id=product_id,
        namespace=product_id.split(":", 1)[0],
        owners=list(owners),
        readers=list(readers),
        writers=list(writers),
        **attributes,
    )


def _acl(product: Product, attributes: dict[str, Any]) -> dict[str, list[str]]:
    return {key: list(attributes.pop(key, getattr(product, key))) for key in ACL_FIELDS}


def make_band(product: Product, name: str, *, band_type: str = "spectral", **attributes: Any) -> Band:
    acl = _acl(product, attributes)
    return Band.objects.create(
        id=f"{product.pk}:{name}", product=product, name=name, type=band_type, **acl, **attributes
    )


def make_image(
    product: Product,
    name: str,
    *,
    geometry: dict[str, Any] | None = SQUARE,
    files: list[dict[str, Any]] | None = None,
    **attributes: Any,
) -> Image:
    """An `available` image (acquired 2021-05-01 unless given); attributes override the defaults."""
    acl = _acl(product, attributes)
    if files is None:
        files = [{"href": f"gs://bucket/{name}.tif", "size_bytes": 1000, "hash": "abc"}]
    values: dict[str, Any] = {
        "acquired": dt.datetime(2021, 5, 1, tzinfo=dt.UTC),
        "cs_code": "EPSG:4326",
        "geotrans": GEOTRANS,
        "x_pixels": 10,
        "y_pixels": 10,
    }
    values.update(attributes)
    return Image.objects.create(
        id=f"{product.pk}:{name}",
        product=product,
        name=name,
        geometry=GEOSGeometry(json.dumps(geometry), srid=4326) if geometry else None,
        files=files,
        size_bytes=sum(item.get("size_bytes", 0) for item in files),
        **acl,
        **values,
    )
