"""`/images` and image summaries (protocol §2.2, §4.4): ids, inherited ACLs, footprints across the
antimeridian, sizes, summaries by interval, GET filters and query counts."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from imagery.models import Image
from tests.catalog.helpers import (
    SQUARE,
    assert_error,
    document,
    ids_of,
    image_attributes,
    included_of,
    leaf,
    make_image,
    make_product,
    search_body,
    snapshot,
)

pytestmark = pytest.mark.django_db

IMAGE_ATTRIBUTES = {
    "name",
    "product_id",
    "geometry",
    "cs_code",
    "projection",
    "geotrans",
    "x_pixels",
    "y_pixels",
    "acquired",
    "acquired_end",
    "published",
    "storage_state",
    "files",
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
    "bits_per_pixel",
    "reflectance_scale",
    "brightness_temperature_k1_k2",
    "c6s_dlsr",
    "radiance_gain_bias",
    "reflectance_gain_bias",
    "temperature_gain_bias",
    "processing_pipeline_id",
    "satellite_id",
    "provider_id",
    "provider_url",
    "preview_url",
    "preview_file",
    "created",
    "modified",
    "tags",
    "extra_properties",
    "owners",
    "readers",
    "writers",
}
ACROSS_ANTIMERIDIAN = {"type": "Polygon", "coordinates": [[[170, 0], [-170, 0], [-170, 10], [170, 10], [170, 0]]]}


def at(*parts: int) -> dt.datetime:
    return dt.datetime(*parts, tzinfo=dt.UTC)


def when(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def point(x: float, y: float) -> str:
    return json.dumps({"type": "Point", "coordinates": [x, y]})


def files(*sizes: int) -> list[dict]:
    return [{"href": f"gs://bucket/f{index}.tif", "size_bytes": size, "hash": "h"} for index, size in enumerate(sizes)]


# ---- create --------------------------------------------------------------------------------------------------------
def test_image_id_is_product_id_colon_name_and_acls_are_inherited(alice, alice_api):
    make_product(
        "acme:p", owners=[f"user:{alice.namespace}", "org:acme"], readers=["org:partner"], writers=["group:acme:ops"]
    )
    body = {"data": {"type": "image", "id": "acme:p:img1", "attributes": image_attributes("acme:p", "img1")}}

    response = alice_api.post("images?include=product", body)

    assert response.status_code == 201, response.content
    data = response.json()["data"]
    assert data["id"] == "acme:p:img1"
    assert data["attributes"]["owners"] == [f"user:{alice.namespace}", "org:acme"]
    assert data["attributes"]["readers"] == ["org:partner"]
    assert data["attributes"]["writers"] == ["group:acme:ops"]
    assert included_of(response) == [("product", "acme:p")]
    image = Image.objects.get(pk="acme:p:img1")
    assert (image.readers, image.writers) == (["org:partner"], ["group:acme:ops"])


def test_remote_image_as_the_client_creates_it(alice_api, alice_product):
    # The captured request of protocol §2.1.
    body = {
        "data": {
            "type": "image",
            "id": "acme:p:img1",
            "attributes": {
                "name": "img1",
                "product_id": "acme:p",
                "acquired": "2021-05-01T00:00:00Z",
                "geometry": {
                    "type": "Polygon",
                    "coordinates": [[[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0], [0.0, 0.0]]],
                },
                "cs_code": "EPSG:4326",
                "geotrans": [0.0, 0.1, 0.0, 1.0, 0.0, -0.1],
                "x_pixels": 10,
                "y_pixels": 10,
                "storage_state": "remote",
                "files": [{"href": "https://example.com/a.tif", "provider_id": "x"}],
                "cloud_fraction": 0.1,
            },
        }
    }

    response = alice_api.post("images?include=product", body)

    assert response.status_code == 201, response.content
    attributes = response.json()["data"]["attributes"]
    assert attributes["storage_state"] == "remote"
    assert attributes["files"] == [{"href": "https://example.com/a.tif", "provider_id": "x"}]
    assert attributes["acquired"].startswith("2021-05-01T00:00:00") and attributes["acquired"].endswith("Z")


def test_duplicate_image_is_a_409(alice_api, alice_product):
    assert alice_api.post("images", document("image", image_attributes("acme:p", "img"))).status_code == 201

    response = alice_api.post("images", document("image", image_attributes("acme:p", "img", cloud_fraction=0.5)))

    assert_error(response, 409)
    assert Image.objects.get().cloud_fraction is None


def test_post_get_and_patch_answer_the_full_attribute_set(alice_api, alice_product):
    created = alice_api.post("images", document("image", image_attributes("acme:p", "img", tags=["t"])))
    fetched = alice_api.get("images/acme:p:img")
    patched = alice_api.patch("images/acme:p:img", document("image", {"cloud_fraction": 0.25}, "acme:p:img"))

    for response in (created, fetched, patched):
        assert response.status_code in (200, 201), response.content
        attributes = response.json()["data"]["attributes"]
        assert IMAGE_ATTRIBUTES <= set(attributes)
        assert "size_bytes" not in attributes
    attributes = patched.json()["data"]["attributes"]
    assert attributes["cloud_fraction"] == 0.25
    assert attributes["tags"] == ["t"]
    assert attributes["geometry"]["type"] == "Polygon"
    for key in ("created", "modified", "acquired"):
        assert attributes[key].endswith("Z")


@pytest.mark.parametrize(("attribute", "value"), [("name", "other"), ("product_id", "acme:q")])
def test_immutable_image_attributes(alice, alice_api, alice_product, attribute, value):
    make_product("acme:q", owners=[f"user:{alice.namespace}"])
    image = make_image(alice_product, "img")
    before = snapshot(image)

    response = alice_api.patch("images/acme:p:img", document("image", {attribute: value}, "acme:p:img"))

    error = assert_error(response, 400, 422)
    assert attribute in error["detail"]
    assert snapshot(image) == before


# ---- footprints -----------------------------------------------------------------------------------------------
def test_antimeridian_footprint_is_split_and_found_from_both_sides(alice_api, alice_product):
    created = alice_api.post(
        "images", document("image", image_attributes("acme:p", "wide", geometry=ACROSS_ANTIMERIDIAN))
    )
    make_image(alice_product, "origin")

    geometry = created.json()["data"]["attributes"]["geometry"]
    assert created.status_code == 201, created.content
    assert geometry["type"] == "MultiPolygon"
    xs = [x for polygon in geometry["coordinates"] for ring in polygon for x, _ in ring]
    assert min(xs) == -180 and max(xs) == 180
    assert all(-180 <= x <= 180 for x in xs)
    for x in (175, 179.9, -175, -179.9):
        body = search_body(leaf("product_id", "eq", "acme:p"), intersects=point(x, 5))
        assert ids_of(alice_api.put("images", body)) == ["acme:p:wide"], x
    assert ids_of(alice_api.put("images", {"intersects": point(0.5, 0.5)})) == ["acme:p:origin"]
    assert ids_of(alice_api.put("images", {"intersects": point(0, 5)})) == []
    assert ids_of(alice_api.get("images?bbox=-179,1,-171,9")) == ["acme:p:wide"]


def test_longitudes_beyond_180_are_wrapped(alice_api, alice_product):
    wrapped = {"type": "Polygon", "coordinates": [[[175, 0], [185, 0], [185, 5], [175, 5], [175, 0]]]}

    response = alice_api.post("images", document("image", image_attributes("acme:p", "w", geometry=wrapped)))

    assert response.status_code == 201, response.content
    assert response.json()["data"]["attributes"]["geometry"]["type"] == "MultiPolygon"
    assert ids_of(alice_api.put("images", {"intersects": point(-177, 2)})) == ["acme:p:w"]


def test_intersects_none_also_matches_images_without_geometry(alice_api, alice_product):
    make_image(alice_product, "here")
    make_image(alice_product, "nowhere", geometry=None)
    make_image(alice_product, "far", geometry={"type": "Point", "coordinates": [50, 50]})

    plain = alice_api.put("images", {"intersects": point(0.5, 0.5)})
    with_none = alice_api.put("images", {"intersects": point(0.5, 0.5), "intersects_none": True})

    assert ids_of(plain) == ["acme:p:here"]
    assert ids_of(with_none) == ["acme:p:here", "acme:p:nowhere"]


# ---- sizes and summaries --------------------------------------------------------------------------------------
def test_summary_counts_bytes_from_files(alice, alice_api, alice_product):
    other = make_product("acme:q", owners=[f"user:{alice.namespace}"])
    for name, sizes in (("a", (100, 20)), ("b", (3,))):
        body = document("image", image_attributes("acme:p", name, files=files(*sizes)))
        assert alice_api.post("images", body).status_code == 201
    make_image(other, "c", files=files(5000))

    everything = alice_api.put("images/summary/all", {})
    one_product = alice_api.put("images/summary/all", search_body(leaf("product_id", "eq", "acme:p")))
    assert alice_api.patch("images/acme:p:b", document("image", {"files": files(7, 8)}, "acme:p:b")).status_code == 200
    after_patch = alice_api.put("images/summary/all", search_body(leaf("product_id", "eq", "acme:p")))

    assert everything.json()["data"]["attributes"] == {"count": 3, "bytes": 5123, "products": ["acme:p", "acme:q"]}
    assert one_product.json()["data"]["attributes"] == {"count": 2, "bytes": 123, "products": ["acme:p"]}
    assert after_patch.json()["data"]["attributes"]["bytes"] == 135
    assert "size_bytes" not in alice_api.get("images/acme:p:a").json()["data"]["attributes"]


def test_summary_honours_intersects_and_text(alice_api, alice_product):
    make_image(alice_product, "near", files=files(10))
    make_image(alice_product, "far", geometry={"type": "Point", "coordinates": [50, 50]}, files=files(1))

    response = alice_api.put("images/summary/all", {"intersects": point(0.5, 0.5)})
    by_text = alice_api.put("images/summary/all", {"text": "far"})

    assert response.json()["data"]["attributes"] == {"count": 1, "bytes": 10, "products": ["acme:p"]}
    assert by_text.json()["data"]["attributes"]["count"] == 1


@pytest.fixture
def monthly(alice, alice_product):
    other = make_product("acme:q", owners=[f"user:{alice.namespace}"])
    make_image(alice_product, "jan", acquired=at(2020, 1, 10), files=files(1))
    make_image(alice_product, "mar1", acquired=at(2020, 3, 5), files=files(2))
    make_image(alice_product, "mar2", acquired=at(2020, 3, 20, 23, 59), files=files(4))
    make_image(alice_product, "may", acquired=at(2020, 5, 20), files=files(8))
    make_image(other, "mar3", acquired=at(2020, 3, 7), files=files(16))


def _buckets(response) -> list[tuple[dt.datetime, int, int, list[str]]]:
    assert response.status_code == 200, response.content
    out = []
    for item in response.json()["data"]:
        attributes = item["attributes"]
        assert attributes["interval_start"].endswith("Z")
        out.append(
            (when(attributes["interval_start"]), attributes["count"], attributes["bytes"], attributes["products"])
        )
    return out


def test_summary_interval_gives_every_month_between_start_and_end(alice_api, monthly):
    body = search_body(leaf("product_id", "eq", "acme:p"), _start="2020-01-01", _end="2020-05-15")

    buckets = _buckets(alice_api.put("images/summary/acquired/month", body))

    assert buckets == [
        (at(2020, 1, 1), 1, 1, ["acme:p"]),
        (at(2020, 2, 1), 0, 0, []),
        (at(2020, 3, 1), 2, 6, ["acme:p"]),
        (at(2020, 4, 1), 0, 0, []),
        (at(2020, 5, 1), 0, 0, []),
    ]


def test_summary_interval_with_an_unbounded_end(alice_api, monthly):
    body = {"_start": "2020-02-01", "_end": ""}

    buckets = _buckets(alice_api.put("images/summary/acquired/month", body))

    assert buckets == [
        (at(2020, 2, 1), 0, 0, []),
        (at(2020, 3, 1), 3, 22, ["acme:p", "acme:q"]),
        (at(2020, 4, 1), 0, 0, []),
        (at(2020, 5, 1), 1, 8, ["acme:p"]),
    ]


def test_summary_interval_unbounded_on_both_sides_spans_the_data(alice_api, monthly):
    buckets = _buckets(alice_api.put("images/summary/acquired/quarter", {"_start": "", "_end": ""}))

    assert buckets == [(at(2020, 1, 1), 4, 23, ["acme:p", "acme:q"]), (at(2020, 4, 1), 1, 8, ["acme:p"])]


def test_summary_interval_counts_only_readable_images(api, monthly):
    from tests.factories import make_user

    stranger = api(make_user("stranger", org="elsewhere"))

    buckets = _buckets(stranger.put("images/summary/acquired/month", {"_start": "2020-01-01", "_end": "2020-04-01"}))

    assert [count for _, count, _, _ in buckets] == [0, 0, 0]


# ---- GET filters, get_many, query counts -------------------------------------------------------------------------
def test_get_collection_query_filters(alice, alice_api, alice_product):
    other = make_product("acme:q", owners=[f"user:{alice.namespace}"])
    far = {"type": "Polygon", "coordinates": [[[10, 10], [11, 10], [11, 11], [10, 11], [10, 10]]]}
    make_image(alice_product, "hit", acquired=at(2020, 6, 1), cloud_fraction=0.1, tags=["t1"])
    make_image(alice_product, "cloudy", acquired=at(2020, 6, 1), cloud_fraction=0.9, tags=["t1"])
    make_image(alice_product, "early", acquired=at(2019, 6, 1), cloud_fraction=0.1, tags=["t1"])
    make_image(alice_product, "elsewhere", acquired=at(2020, 6, 1), cloud_fraction=0.1, tags=["t1"], geometry=far)
    make_image(alice_product, "untagged", acquired=at(2020, 6, 1), cloud_fraction=0.1)
    make_image(other, "hit", acquired=at(2020, 6, 1), cloud_fraction=0.1, tags=["t1"])

    response = alice_api.get(
        "images?product_id=acme:p&acquired__gte=2020-01-01T00:00:00Z&cloud_fraction__lt=0.5&bbox=-1,-1,2,2&tags=t1"
    )

    assert response.status_code == 200, response.content
    assert ids_of(response) == ["acme:p:hit"]
    error = assert_error(alice_api.get("images?product_id=acme:p&cloudiness=0.5"), 400)
    assert "cloudiness" in error["detail"]


def test_get_many_images_above_the_page_size(alice_api, alice_product, settings):
    settings.CATALOG_PAGE_SIZE = 4
    wanted = [make_image(alice_product, f"i{index}").pk for index in range(9)]

    response = alice_api.put("images?include=product", search_body(leaf("id", "eq", wanted), include="product"))

    assert sorted(ids_of(response)) == sorted(wanted)


def test_image_search_costs_the_same_for_5_and_50_results(alice_api, alice_product, django_assert_max_num_queries):
    for index in range(50):
        make_image(
            alice_product,
            f"i{index:02d}",
            acquired=at(2020, 1, 1) + dt.timedelta(hours=index),
            cloud_fraction=index / 100,
        )
    body = search_body(
        leaf("product_id", "eq", "acme:p"),
        leaf("cloud_fraction", "lt", 0.9),
        sort="-acquired",
        include="product",
        intersects=json.dumps(SQUARE),
    )

    with django_assert_max_num_queries(25) as small:
        five = alice_api.put("images", {**body, "limit": 5})
    with django_assert_max_num_queries(25) as large:
        fifty = alice_api.put("images", body)
    with django_assert_max_num_queries(25) as listed_small:
        alice_api.get("images?product_id=acme:p&limit=5")
    with django_assert_max_num_queries(25) as listed_large:
        listed = alice_api.get("images?product_id=acme:p")

    assert (len(ids_of(five)), len(ids_of(fifty)), len(ids_of(listed))) == (5, 50, 50)
    assert included_of(fifty) == [("product", "acme:p")]
    assert len(small.captured_queries) == len(large.captured_queries)
    assert len(listed_small.captured_queries) == len(listed_large.captured_queries)
