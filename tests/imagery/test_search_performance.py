"""Search performance properties that can be asserted without timing (the timings live in bench/search.py).

- The number of SQL queries of a list or search page does not grow with the page (no N+1).
- Keyset pagination (catalogsite/pagination.py) walks every row exactly once, in order, null placement
  included, also when rows are inserted between pages.
- The main search statements are index-shaped: with sequential scans disabled the planner can answer
  them from the GiST, the (product, field, id) B-trees and the row-comparison keyset bound. (Whether it
  *prefers* those plans depends on table statistics and is checked at scale by the benchmark.)
- The fast read path of the serializers gives exactly DRF's documents.
"""

from __future__ import annotations

import datetime as dt
import json
import random

import pytest
from django.contrib.gis.geos import GEOSGeometry
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.models import User
from catalogsite.api import SearchRequest
from catalogsite.pagination import Sort, fetch_page, order_queryset
from imagery.api.serializers import ImageSerializer
from imagery.api.views import ImageViewSet
from imagery.models import Image
from products.api.serializers import BandSerializer, ProductSerializer
from products.models import Band, Product
from tests.factories import make_user

pytestmark = pytest.mark.django_db

BASE = "/metadata/v1/catalog/v2"
JSONAPI = "application/vnd.api+json"
PRODUCT = "acme:perf"


def square(x: float, y: float, size: float = 1.0) -> GEOSGeometry:
    ring = [[x, y], [x + size, y], [x + size, y + size], [x, y + size], [x, y]]
    return GEOSGeometry(json.dumps({"type": "Polygon", "coordinates": [ring]}), srid=4326)


def add_images(
    product: Product, count: int, *, start: int = 0, rng: random.Random | None = None, suffix: str = ""
) -> list[Image]:
    rng = rng or random.Random(start)
    images = []
    for k in range(start, start + count):
        cloud = None if k % 7 == 3 else round(rng.random(), 2)  # ties and nulls on purpose
        name = f"img-{k:05d}{suffix}"
        images.append(
            Image(
                id=f"{product.pk}:{name}",
                product=product,
                name=name,
                geometry=square(k % 20, k % 10),
                acquired=dt.datetime(2020, 1, 1, tzinfo=dt.UTC) + dt.timedelta(days=k),
                cs_code="EPSG:4326",
                geotrans=[0, 1, 0, 0, 0, -1],
                x_pixels=10,
                y_pixels=10,
                cloud_fraction=cloud,
                tags=["t"],
                provider_id="p",
                files=[{"href": f"gs://b/{k}.tif", "size_bytes": 10, "hash": "h"}],
                size_bytes=10,
                owners=list(product.owners),
                readers=list(product.readers),
                writers=list(product.writers),
            )
        )
    return Image.objects.bulk_create(images)


@pytest.fixture
def alice():
    return make_user("alice", org="acme")


@pytest.fixture
def product(alice):
    return Product.objects.create(
        id=PRODUCT, namespace="acme", name="perf", owners=[f"user:{alice.namespace}"], readers=["org:acme"]
    )


@pytest.fixture
def client(alice, auth_client):
    return auth_client(alice)


def put(client, path: str, body: dict, **extra):
    response = client.put(f"{BASE}/{path.lstrip('/')}", data=json.dumps(body), content_type=JSONAPI, **extra)
    assert response.status_code == 200, response.content
    return response


def search_body(**extra) -> dict:
    body = {
        "filter": json.dumps([{"op": "eq", "name": "product_id", "val": PRODUCT}], separators=(",", ":")),
        "include": "product",
    }
    body.update(extra)
    return body


# ---- no N+1 --------------------------------------------------------------------------------------------
def count_queries(call) -> tuple[int, object]:
    """The SELECT statements `call` runs (not SAVEPOINT/SET LOCAL bookkeeping)."""
    with CaptureQueriesContext(connection) as captured:
        response = call()
    return sum(q["sql"].lstrip().upper().startswith("SELECT") for q in captured.captured_queries), response


@pytest.mark.parametrize("kind", ["search", "list", "summary"])
def test_query_count_does_not_grow_with_the_page(client, product, kind):
    def call(limit):
        if kind == "search":
            return put(client, "images", search_body(limit=limit, sort="-cloud_fraction"))
        if kind == "summary":
            return put(client, "images/summary/acquired/month", {"filter": search_body()["filter"]})
        response = client.get(f"{BASE}/images", {"product_id": PRODUCT, "limit": limit, "include": "product"})
        assert response.status_code == 200, response.content
        return response

    add_images(product, 5)
    small, response = count_queries(lambda: call(5))
    if kind != "summary":
        assert len(response.json()["data"]) == 5
        assert [item["id"] for item in response.json()["included"]] == [PRODUCT]
    add_images(product, 45, start=5)
    large, response = count_queries(lambda: call(50))
    if kind != "summary":
        assert len(response.json()["data"]) == 50
    assert small == large, f"{kind}: {small} queries for 5 images, {large} for 50"
    # authentication (1) + principals (3) + the page (1, or 2 with the null tail) + the include (1)
    assert large <= 7


def test_summary_is_one_query(client, product):
    add_images(product, 30)
    body = {"filter": search_body()["filter"]}
    baseline, _ = count_queries(lambda: client.get(f"{BASE}/images/{PRODUCT}:img-00000"))
    total, response = count_queries(lambda: put(client, "images/summary/all", body))
    # GET by id = auth + principals + 1 select; the summary = auth + principals + 1 aggregate.
    assert total == baseline
    assert response.json()["data"]["attributes"] == {"count": 30, "bytes": 300, "products": [PRODUCT]}


# ---- keyset pagination -----------------------------------------------------------------------------------
SORTS = [
    None,
    Sort("cloud_fraction", "cloud_fraction", False),
    Sort("cloud_fraction", "cloud_fraction", True),
    Sort("acquired", "acquired", True),
    Sort("id", "pk", True),
]


def walk(queryset_factory, sort, size, between=None) -> list[str]:
    """Follow fetch_page like the API does; `between(page_number)` may write between pages."""
    from catalogsite.pagination import Position, sort_value

    seen: list[str] = []
    position = None
    page = 0
    while True:
        rows = fetch_page(queryset_factory(), sort, position, size)
        if not rows:
            return seen
        seen += [row.pk for row in rows]
        last = rows[-1]
        position = Position(sort="", value=sort_value(last, sort), last_id=last.pk, returned=len(seen))
        page += 1
        if between:
            between(page)


@pytest.mark.parametrize("sort", SORTS, ids=["id", "cloud", "-cloud", "-acquired", "-id"])
@pytest.mark.parametrize("size", [1, 4, 7])
def test_keyset_pages_are_the_full_order_exactly_once(product, sort, size):
    add_images(product, 40)
    expected = [image.pk for image in order_queryset(Image.objects.filter(product=product), sort)]
    assert walk(lambda: Image.objects.filter(product=product), sort, size) == expected


@pytest.mark.parametrize("sort", SORTS, ids=["id", "cloud", "-cloud", "-acquired", "-id"])
def test_keyset_is_stable_under_concurrent_inserts(product, sort):
    """Rows inserted between pages never duplicate or skip the original rows; the walk stays ordered."""
    add_images(product, 40)
    original = [image.pk for image in order_queryset(Image.objects.filter(product=product), sort)]
    rng = random.Random(7)

    def insert(page):
        # Three rows per page for the first five pages, with ids, clouds (and nulls) and dates that fall
        # both behind and ahead of the current position.
        if page <= 5:
            add_images(product, 3, start=rng.randrange(0, 60), rng=rng, suffix=f"-new{page}")

    seen = walk(lambda: Image.objects.filter(product=product), sort, 6, between=insert)
    assert len(seen) == len(set(seen)), "a row was returned twice"
    assert [pk for pk in seen if pk in set(original)] == original, "an original row was skipped or reordered"
    full_order = [image.pk for image in order_queryset(Image.objects.filter(product=product), sort)]
    positions = [full_order.index(pk) for pk in seen]
    assert positions == sorted(positions), "the walk is not in the search order"


def test_continuation_over_http_follows_the_same_order(client, product):
    add_images(product, 23)
    body = search_body(sort="cloud_fraction")
    response = put(client, "images", {**body, "limit": 1000})
    ids = [item["id"] for item in response.json()["data"]]
    expected = [
        image.pk
        for image in order_queryset(
            Image.objects.filter(product=product), Sort("cloud_fraction", "cloud_fraction", False)
        )
    ]
    assert ids == expected
    from django.test import override_settings

    with override_settings(CATALOG_PAGE_SIZE=5):
        walked, link = [], None
        while True:
            path = "images" if link is None else link.split(BASE, 1)[1]
            page = put(client, path, body).json()
            walked += [item["id"] for item in page["data"]]
            link = page["links"].get("next")
            if not link:
                break
    assert walked == expected


# ---- plan shapes -----------------------------------------------------------------------------------------
def explain(queryset) -> str:
    sql, params = queryset.query.get_compiler(connection=connection).as_sql()
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("EXPLAIN " + sql, params)
        return "\n".join(row[0] for row in cursor.fetchall())


def viewset_for(user: User) -> ImageViewSet:
    from rest_framework.test import APIRequestFactory

    view = ImageViewSet()
    request = APIRequestFactory().put("/")
    request.user = user
    view.request = request
    view.format_kwarg = None
    return view


@pytest.fixture
def analyzed(product):
    """2,000 images over a 20°×10° grid and two products, with planner statistics."""
    other = Product.objects.create(
        id="acme:other", namespace="acme", owners=list(product.owners), readers=list(product.readers)
    )
    add_images(product, 1500)
    add_images(other, 500)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE imagery_image")
    return product


def test_intersects_uses_the_spatial_index(alice, analyzed):
    triangle = {"type": "Polygon", "coordinates": [[[1, 1], [2, 1], [2, 2], [1, 1]]]}
    search = SearchRequest(filter=search_body()["filter"], intersects=json.dumps(triangle))
    plan = explain(order_queryset(viewset_for(alice).search_queryset(search), None)[:101])
    # The GiST on (product, geometry) or on geometry, with the bounding-box test as its index condition.
    assert "image_product_geometry" in plan or "imagery_image_geometry" in plan, plan
    assert (
        "Index Cond: (((product_id)::text = 'acme:perf'::text) AND (geometry &&" in plan
        or "Index Cond: (geometry &&" in plan
    ), plan


def test_keyset_bound_is_an_index_condition(alice, analyzed):
    queryset = viewset_for(alice).search_queryset(SearchRequest(filter=search_body()["filter"]))
    from django.db.models import F
    from django.db.models.fields.tuple_lookups import Tuple, TupleGreaterThan

    bound = TupleGreaterThan(Tuple(F("cloud_fraction"), F("pk")), (0.5, f"{PRODUCT}:img-00100"))
    page = order_queryset(queryset.filter(bound), Sort("cloud_fraction", "cloud_fraction", False))
    plan = explain(page[:101])
    lines = plan.splitlines()
    assert "Index Scan using image_product_cloud" in lines[1], plan  # in index order: no Sort step
    assert "ROW(cloud_fraction, (id)::text) > ROW(" in plan.split("Filter:")[0], plan  # an Index Cond


def test_default_order_within_a_product_and_date_range_avoids_the_primary_key_walk(alice, analyzed):
    body = json.dumps(
        [
            {"op": "eq", "name": "product_id", "val": PRODUCT},
            {"name": "acquired", "op": "gte", "val": "2022-01-01"},
            {"name": "acquired", "op": "lt", "val": "2023-01-01"},
        ]
    )
    queryset = viewset_for(alice).search_queryset(SearchRequest(filter=body))
    plan = explain(order_queryset(queryset, None)[:101])
    assert "imagery_image_pkey" not in plan, plan
    assert "image_product_id_acquired" in plan or "image_product_acquired" in plan, plan


# ---- serializers -----------------------------------------------------------------------------------------
def drf_representation(serializer, instance) -> dict:
    """What DRF's generic ModelSerializer.to_representation gives, with our ACL redaction on top."""
    from rest_framework import serializers

    data = serializers.ModelSerializer.to_representation(serializer, instance)
    request = serializer.context.get("request")
    from catalogsite.permissions import visible_acl

    for field in serializer.ACL_FIELDS:
        if field in data:
            data[field] = visible_acl(request.user, instance, field)
    data.pop("id", None)
    return data


def test_fast_serialization_equals_drf(alice, product):
    from rest_framework.test import APIRequestFactory

    image = add_images(product, 1)[0]
    image.geometry = GEOSGeometry("SRID=4326;MULTIPOLYGON(((179 0,180 0,180 1,179 0)),((-180 0,-179 0,-180 1,-180 0)))")
    image.bits_per_pixel = [1.0, None, 3.5]
    image.brightness_temperature_k1_k2 = [[1.0, 2.0]]
    image.extra_properties = {"a": 1, "b": "x"}
    image.save()
    band = Band.objects.create(
        id=f"{PRODUCT}:red",
        product=product,
        name="red",
        type="spectral",
        data_range=[0, 1],
        wavelength_nm_center=650.0,
        owners=list(product.owners),
    )
    request = APIRequestFactory().get("/")
    request.user = alice
    for serializer_class, instance in (
        (ImageSerializer, Image.objects.get(pk=image.pk)),
        (ProductSerializer, Product.objects.get(pk=PRODUCT)),
        (BandSerializer, Band.objects.get(pk=band.pk)),
    ):
        serializer = serializer_class(context={"request": request})
        fast = serializer.to_representation(instance)
        generic = drf_representation(serializer_class(context={"request": request}), instance)
        if serializer_class is BandSerializer:  # BandSerializer drops the attributes of other band types
            generic = {key: value for key, value in generic.items() if key in fast}
        assert json.loads(json.dumps(fast)) == json.loads(json.dumps(generic)), serializer_class.__name__
