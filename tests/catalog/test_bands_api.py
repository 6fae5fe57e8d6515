"""`/bands` and the derived bands (protocol §4.3, §8): ids, inherited ACLs, sort order, product resolution,
per-type attributes, searches and query counts."""

from __future__ import annotations

import pytest

from products.models import Band, Product
from tests.catalog.helpers import (
    assert_error,
    band_attributes,
    document,
    ids_of,
    included_of,
    leaf,
    make_band,
    make_product,
    search_body,
    snapshot,
)

pytestmark = pytest.mark.django_db

COMMON = {
    "name",
    "product_id",
    "description",
    "type",
    "sort_order",
    "vendor_order",
    "data_type",
    "nodata",
    "data_range",
    "display_range",
    "resolution",
    "band_index",
    "file_index",
    "jpx_layer_index",
    "vendor_band_name",
    "processing_levels",
    "derived_params",
    "created",
    "modified",
    "tags",
    "extra_properties",
    "owners",
    "readers",
    "writers",
}
TYPE_ATTRIBUTES = {
    "spectral": {
        "physical_range",
        "physical_range_unit",
        "wavelength_nm_center",
        "wavelength_nm_min",
        "wavelength_nm_max",
        "wavelength_nm_fwhm",
    },
    "microwave": {"frequency", "bandwidth", "physical_range", "physical_range_unit"},
    "mask": {"is_alpha"},
    "class": {"colormap_name", "colormap", "class_labels"},
    "generic": {"physical_range", "physical_range_unit", "colormap_name", "colormap"},
}
ALL_TYPE_ATTRIBUTES = set().union(*TYPE_ATTRIBUTES.values())


def create(client, name: str, band_type: str = "spectral", product_id: str = "acme:p", **attributes):
    return client.post("bands", document("band", band_attributes(product_id, name, band_type, **attributes)))


def resolution_of(product_id: str = "acme:p"):
    product = Product.objects.get(pk=product_id)
    return (
        product.resolution_min_value,
        product.resolution_min_unit,
        product.resolution_max_value,
        product.resolution_max_unit,
    )


# ---- ids and ACLs -------------------------------------------------------------------------------------------------
def test_band_id_is_product_id_colon_name(alice_api, alice_product):
    # Exactly what the client sends (§2.1), with the id composed client-side.
    body = {
        "data": {
            "type": "band",
            "id": "acme:p:red",
            "attributes": {
                "name": "red",
                "product_id": "acme:p",
                "data_type": "UInt16",
                "data_range": [0.0, 10000.0],
                "display_range": [0.0, 4000.0],
                "resolution": {"value": 10.0, "unit": "meters"},
                "band_index": 0,
                "nodata": 0,
                "wavelength_nm_center": 665,
                "type": "spectral",
            },
        }
    }

    response = alice_api.post("bands?include=product", body)

    assert response.status_code == 201, response.content
    data = response.json()["data"]
    assert data["id"] == "acme:p:red"
    assert data["attributes"]["product_id"] == "acme:p"
    assert data["attributes"]["resolution"] == {"value": 10.0, "unit": "meters"}
    assert data["relationships"]["product"]["data"] == {"type": "product", "id": "acme:p"}
    assert included_of(response) == [("product", "acme:p")]
    assert Band.objects.filter(pk="acme:p:red", product_id="acme:p", name="red").exists()


def test_band_without_id_gets_one(alice_api, alice_product):
    response = create(alice_api, "nir")

    assert response.json()["data"]["id"] == "acme:p:nir"


def test_duplicate_band_is_a_409(alice_api, alice_product):
    assert create(alice_api, "red", description="first").status_code == 201

    response = create(alice_api, "red", description="second")

    assert_error(response, 409)
    assert Band.objects.get(pk="acme:p:red").description == "first"


def test_bands_inherit_the_product_acls(alice, alice_api):
    make_product(
        "acme:shared",
        owners=[f"user:{alice.namespace}", "org:acme"],
        readers=["org:partner"],
        writers=["email:w@example.com"],
    )

    response = create(alice_api, "red", product_id="acme:shared")

    attributes = response.json()["data"]["attributes"]
    assert attributes["owners"] == [f"user:{alice.namespace}", "org:acme"]
    assert attributes["readers"] == ["org:partner"]
    assert attributes["writers"] == ["email:w@example.com"]
    band = Band.objects.get(pk="acme:shared:red")
    assert (band.owners, band.readers, band.writers) == (attributes["owners"], ["org:partner"], ["email:w@example.com"])


def test_product_owner_may_give_a_band_its_own_acls(alice_api, alice_product):
    response = create(alice_api, "red", readers=["org:partner"])

    assert response.status_code == 201, response.content
    assert Band.objects.get().readers == ["org:partner"]


# ---- sort order -----------------------------------------------------------------------------------------------------
def test_sort_order_defaults_to_the_next_free_value(alice_api, alice_product):
    orders = [create(alice_api, name).json()["data"]["attributes"]["sort_order"] for name in ("a", "b", "c")]
    explicit = create(alice_api, "d", sort_order=10).json()["data"]["attributes"]["sort_order"]
    after = create(alice_api, "e").json()["data"]["attributes"]["sort_order"]

    assert orders == [0, 1, 2]
    assert (explicit, after) == (10, 11)


def test_sort_order_is_per_product(alice, alice_api, alice_product):
    make_product("acme:q", owners=[f"user:{alice.namespace}"])
    create(alice_api, "a")
    create(alice_api, "b")

    response = create(alice_api, "a", product_id="acme:q")

    assert response.json()["data"]["attributes"]["sort_order"] == 0


def test_product_bands_search_as_the_client_sends_it(alice_api, alice_product):
    for name, order in (("c", 2), ("a", 0), ("b", 1)):
        make_band(alice_product, name, sort_order=order)

    response = alice_api.put(
        "bands", search_body(leaf("product_id", "eq", "acme:p"), sort="sort_order", include="product")
    )

    assert ids_of(response) == ["acme:p:a", "acme:p:b", "acme:p:c"]
    assert included_of(response) == [("product", "acme:p")]


# ---- product resolution -------------------------------------------------------------------------------------------
def test_product_resolution_follows_band_create_update_and_delete(alice_api, alice_product):
    create(alice_api, "red", resolution={"value": 10, "unit": "meters"})
    create(alice_api, "swir", resolution="30m")
    create(alice_api, "mask", "mask")  # no resolution: ignored
    after_create = resolution_of()
    product = alice_api.get("products/acme:p").json()["data"]["attributes"]

    alice_api.patch("bands/acme:p:swir", document("band", {"resolution": 60}, "acme:p:swir"))
    after_update = resolution_of()
    alice_api.delete("bands/acme:p:red")
    after_delete = resolution_of()
    alice_api.delete("bands/acme:p:swir")
    after_all = resolution_of()

    assert after_create == (10.0, "meters", 30.0, "meters")
    assert product["resolution_min"] == {"value": 10.0, "unit": "meters"}
    assert product["resolution_max"] == {"value": 30.0, "unit": "meters"}
    assert after_update == (10.0, "meters", 60.0, "meters")
    assert after_delete == (60.0, "meters", 60.0, "meters")
    assert after_all == (None, None, None, None)


def test_product_resolution_in_degrees_when_no_band_is_in_metres(alice_api, alice_product):
    create(alice_api, "a", resolution={"value": 0.01, "unit": "degrees"})
    create(alice_api, "b", resolution="0.1deg")

    assert resolution_of() == (0.01, "degrees", 0.1, "degrees")


def test_product_resolution_filters_in_metres(alice_api, alice_product):
    create(alice_api, "red", resolution=10)

    hit = alice_api.put("products", search_body(leaf("resolution_min", "lt", 30)))
    miss = alice_api.put("products", search_body(leaf("resolution_min", "gt", 30)))

    assert ids_of(hit) == ["acme:p"]
    assert ids_of(miss) == []


# ---- types -------------------------------------------------------------------------------------------------------
def test_mask_bands_range_over_0_1(alice_api, alice_product):
    response = create(alice_api, "alpha", "mask", is_alpha=True)
    explicit = create(alice_api, "cloud", "mask", data_range=[0, 1], display_range=[0, 1])

    attributes = response.json()["data"]["attributes"]
    assert attributes["data_range"] == [0.0, 1.0]
    assert attributes["display_range"] == [0.0, 1.0]
    assert attributes["is_alpha"] is True
    assert explicit.status_code == 201, explicit.content


def test_mask_band_range_cannot_be_patched_to_something_else(alice_api, alice_product):
    create(alice_api, "alpha", "mask")
    band = Band.objects.get()
    before = snapshot(band)

    response = alice_api.patch("bands/acme:p:alpha", document("band", {"data_range": [0, 255]}, "acme:p:alpha"))

    assert_error(response, 400, 422)
    assert snapshot(band) == before


@pytest.mark.parametrize("band_type", list(TYPE_ATTRIBUTES))
def test_responses_carry_only_the_attributes_of_the_band_type(alice_api, alice_product, band_type):
    created = create(alice_api, f"b-{band_type}", band_type)
    fetched = alice_api.get(f"bands/acme:p:b-{band_type}")
    patched = alice_api.patch(
        f"bands/acme:p:b-{band_type}", document("band", {"description": "x"}, f"acme:p:b-{band_type}")
    )
    searched = alice_api.put("bands", search_body(leaf("type", "eq", band_type)))

    for attributes in (
        created.json()["data"]["attributes"],
        fetched.json()["data"]["attributes"],
        patched.json()["data"]["attributes"],
        searched.json()["data"][0]["attributes"],
    ):
        assert COMMON <= set(attributes)
        assert set(attributes) & ALL_TYPE_ATTRIBUTES == TYPE_ATTRIBUTES[band_type]
        assert attributes["type"] == band_type


def test_type_specific_attributes_round_trip(alice_api, alice_product):
    spectral = create(
        alice_api,
        "red",
        wavelength_nm_center=665,
        wavelength_nm_min=650,
        wavelength_nm_max=680,
        physical_range=[0, 1],
        physical_range_unit="reflectance",
    )
    klass = create(
        alice_api,
        "lc",
        "class",
        colormap_name="cdl",
        class_labels=["water", None, "forest"],
        colormap=[[0, 0, 255, 255], [0, 255, 0, 255]],
    )
    micro = create(alice_api, "vv", "microwave", frequency=5.405, bandwidth=100)

    s = spectral.json()["data"]["attributes"]
    c = klass.json()["data"]["attributes"]
    m = micro.json()["data"]["attributes"]
    assert (s["wavelength_nm_center"], s["physical_range"], s["physical_range_unit"]) == (665, [0, 1], "reflectance")
    assert (c["colormap_name"], c["class_labels"]) == ("cdl", ["water", None, "forest"])
    assert c["colormap"] == [[0, 0, 255, 255], [0, 255, 0, 255]]
    assert (m["frequency"], m["bandwidth"]) == (5.405, 100)


@pytest.mark.parametrize(("attribute", "value"), [("name", "blue"), ("product_id", "acme:q"), ("type", "mask")])
def test_immutable_band_attributes(alice, alice_api, alice_product, attribute, value):
    make_product("acme:q", owners=[f"user:{alice.namespace}"])
    create(alice_api, "red")
    band = Band.objects.get()
    before = snapshot(band)

    response = alice_api.patch("bands/acme:p:red", document("band", {attribute: value}, "acme:p:red"))

    error = assert_error(response, 400, 422)
    assert attribute in error["detail"]
    assert snapshot(band) == before


def test_patch_answers_the_full_attribute_set(alice_api, alice_product):
    create(alice_api, "red", description="d", tags=["t"], nodata=0, data_range=[0, 10000])

    response = alice_api.patch("bands/acme:p:red", document("band", {"vendor_order": 3}, "acme:p:red"))

    attributes = response.json()["data"]["attributes"]
    assert COMMON <= set(attributes)
    assert (attributes["vendor_order"], attributes["description"], attributes["tags"]) == (3, "d", ["t"])
    assert attributes["data_range"] == [0, 10000]


# ---- GET filters, get_many, query counts ---------------------------------------------------------------------------
def test_get_collection_query_filters(alice, alice_api, alice_product):
    make_band(alice_product, "red", data_type="UInt16", tags=["vis"], wavelength_nm_center=665)
    make_band(alice_product, "alpha", band_type="mask")
    other = make_product("acme:q", owners=[f"user:{alice.namespace}"])
    make_band(other, "red", data_type="UInt16")

    assert ids_of(alice_api.get("bands?product_id=acme:p")) == ["acme:p:alpha", "acme:p:red"]
    assert ids_of(alice_api.get("bands?type=mask")) == ["acme:p:alpha"]
    assert ids_of(alice_api.get("bands?data_type=UInt16&tags=vis")) == ["acme:p:red"]
    assert ids_of(alice_api.get("bands?wavelength_nm_center__gte=600")) == ["acme:p:red"]
    assert_error(alice_api.get("bands?type=hyper"), 400)
    error = assert_error(alice_api.get("bands?product=acme:p"), 400)
    assert "product" in error["detail"]


def test_get_many_bands_above_the_page_size(alice_api, alice_product, settings):
    settings.CATALOG_PAGE_SIZE = 3
    wanted = [make_band(alice_product, f"b{index}").pk for index in range(7)]

    response = alice_api.put("bands", search_body(leaf("id", "eq", wanted)))

    assert sorted(ids_of(response)) == sorted(wanted)


def test_band_search_costs_the_same_for_5_and_50_results(alice_api, alice_product, django_assert_max_num_queries):
    for index in range(50):
        make_band(alice_product, f"b{index:02d}", band_type=("spectral", "mask", "class")[index % 3])
    body = search_body(leaf("product_id", "eq", "acme:p"), include="product", sort="sort_order")

    with django_assert_max_num_queries(25) as small:
        five = alice_api.put("bands", {**body, "limit": 5})
    with django_assert_max_num_queries(25) as large:
        fifty = alice_api.put("bands", body)

    assert (len(ids_of(five)), len(ids_of(fifty))) == (5, 50)
    assert included_of(fifty) == [("product", "acme:p")]
    assert len(small.captured_queries) == len(large.captured_queries)


# ---- derived bands ------------------------------------------------------------------------------------------------
def test_derived_bands_of_a_product_are_those_whose_sources_it_has(alice_api, alice_product):
    for name in ("red", "nir"):
        make_band(alice_product, name)

    response = alice_api.put("products/acme:p/relationships/derived_bands", {})

    assert response.status_code == 200, response.content
    assert ids_of(response) == ["derived:bai", "derived:ndvi", "derived:rsqrt"]
    assert {item["type"] for item in response.json()["data"]} == {"derived_band"}


def test_derived_band_documents(alice_api):
    by_id = alice_api.get("derived_bands/derived:ndvi")
    short = alice_api.get("derived_bands/ndvi")
    listed = alice_api.get("derived_bands")
    searched = alice_api.put("derived_bands", search_body(leaf("bands", "eq", "swir1")))

    attributes = by_id.json()["data"]["attributes"]
    assert attributes["bands"] == ["nir", "red"]
    assert attributes["function_name"] == "ndi_uint16"
    assert attributes["data_range"] == [0, 65535] and attributes["physical_range"] == [-1, 1]
    assert short.json()["data"]["id"] == "derived:ndvi"
    assert len(ids_of(listed)) == 8
    assert ids_of(searched) == ["derived:ndwi", "derived:ndwi1"]
    assert_error(alice_api.get("derived_bands/derived:nope"), 404)
