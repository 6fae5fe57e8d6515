"""`/products`: ids and namespaces, default ACLs, documents, pagination links, product jobs, GET filters and
query counts (protocol §1.3, §2, §4.2, §7)."""

from __future__ import annotations

import re

import pytest

from accounts.models import Organization
from imagery.models import Image
from products.jobs import product_task_run
from products.models import Band, Product, ProductTask
from tests.catalog.helpers import (
    BASE,
    TIMESTAMP_RE,
    assert_error,
    counts,
    document,
    ids_of,
    leaf,
    make_band,
    make_image,
    make_product,
    search_body,
    snapshot,
)
from tests.factories import make_user

pytestmark = pytest.mark.django_db

PRODUCT_ATTRIBUTES = {
    "name",
    "description",
    "is_core",
    "revisit_period_minutes_min",
    "revisit_period_minutes_max",
    "start_datetime",
    "end_datetime",
    "resolution_min",
    "resolution_max",
    "default_display_bands",
    "image_index_name",
    "product_tier",
    "created",
    "modified",
    "tags",
    "extra_properties",
    "owners",
    "readers",
    "writers",
}
DELETE_TASK = {"data": {"type": "product_delete_task"}}


def acl_task(**attributes):
    return {"data": {"type": "product_update_acls", "attributes": attributes}}


def run_job(product_id: str, kind: str) -> None:
    """What the dramatiq worker does, synchronously."""
    product_task_run(task_id=ProductTask.objects.get(product_id=product_id, kind=kind).pk)


# ---- ids and namespaces ------------------------------------------------------------------------------------------
def test_product_id_is_prefixed_with_the_creators_organization(alice_api):
    response = alice_api.post("products", document("product", {"name": "P1"}, "p1"))

    assert response.status_code == 201, response.content
    assert response.json()["data"]["id"] == "acme:p1"
    assert response.json()["data"]["type"] == "product"
    assert Product.objects.filter(pk="acme:p1", namespace="acme").exists()


def test_an_already_prefixed_product_id_is_kept(alice_api):
    response = alice_api.post("products", document("product", {}, "acme:p2"))

    assert response.status_code == 201, response.content
    assert response.json()["data"]["id"] == "acme:p2"
    assert list(Product.objects.values_list("pk", flat=True)) == ["acme:p2"]


def test_a_foreign_unknown_prefix_is_part_of_the_name_and_gets_prefixed(alice_api):
    response = alice_api.post("products", document("product", {}, "landsat:l8"))

    assert response.status_code == 201, response.content
    assert response.json()["data"]["id"] == "acme:landsat:l8"


def test_a_user_without_an_organization_creates_in_their_sha1_namespace(api):
    solo = make_user("solo")
    client = api(solo)

    created = client.post("products", document("product", {}, "p"))
    prefixed = client.post("products", document("product", {}, f"{solo.namespace}:q"))

    assert created.status_code == 201, created.content
    assert created.json()["data"]["id"] == f"{solo.namespace}:p"
    assert created.json()["data"]["attributes"]["owners"] == [f"user:{solo.namespace}"]
    assert prefixed.status_code == 201, prefixed.content
    assert prefixed.json()["data"]["id"] == f"{solo.namespace}:q"


def test_creating_in_another_existing_organization_is_forbidden(alice_api):
    Organization.objects.create(slug="otherorg")

    response = alice_api.post("products", document("product", {}, "otherorg:p"))

    error = assert_error(response, 403)
    assert "otherorg" in error["detail"]
    assert not Product.objects.exists()


def test_creating_in_another_users_namespace_is_forbidden(alice_api):
    bob = make_user("bob")

    response = alice_api.post("products", document("product", {}, f"{bob.namespace}:p"))

    assert_error(response, 403)
    assert not Product.objects.exists()


@pytest.mark.parametrize("second_id", ["p", "acme:p"])
def test_duplicate_product_is_a_409(alice_api, second_id):
    assert alice_api.post("products", document("product", {"name": "first"}, "p")).status_code == 201

    response = alice_api.post("products", document("product", {"name": "second"}, second_id))

    error = assert_error(response, 409)
    assert "acme:p" in error["detail"]
    assert Product.objects.get(pk="acme:p").name == "first"


def test_default_acls_are_the_creator_and_the_org_admins(alice, alice_api):
    response = alice_api.post("products", document("product", {}, "p"))

    attributes = response.json()["data"]["attributes"]
    assert attributes["owners"] == [f"user:{alice.namespace}", "org:acme"]
    assert attributes["readers"] == []
    assert attributes["writers"] == []
    assert Product.objects.get(pk="acme:p").owners == [f"user:{alice.namespace}", "org:acme"]


def test_the_creators_org_admin_owns_the_new_product(alice_api, api):
    boss = api(make_user("boss", org="acme", org_admin=True))
    alice_api.post("products", document("product", {}, "p"))

    response = boss.patch("products/acme:p", document("product", {"readers": ["org:partner"]}, "acme:p"))

    assert response.status_code == 200, response.content
    assert Product.objects.get(pk="acme:p").readers == ["org:partner"]


def test_only_platform_admins_may_mark_a_product_core(alice_api):
    response = alice_api.post("products", document("product", {"is_core": True}, "p"))

    error = assert_error(response, 400, 403, 422)
    assert "is_core" in error["detail"] or error.get("source", {}).get("pointer", "").endswith("is_core")
    assert not Product.objects.exists()


# ---- documents ---------------------------------------------------------------------------------------------------
def test_post_get_and_patch_answer_the_full_attribute_set(alice_api):
    body = document(
        "product",
        {
            "name": "Full",
            "description": "d",
            "tags": ["t1"],
            "extra_properties": {"k": "v", "n": 1},
            "readers": ["org:otherorg"],
            "start_datetime": "2020-01-01",
        },
        "full",
    )

    created = alice_api.post("products", body)
    fetched = alice_api.get("products/acme:full")
    patched = alice_api.patch("products/acme:full", document("product", {"name": "Renamed"}, "acme:full"))

    for response in (created, fetched, patched):
        assert response.status_code in (200, 201), response.content
        attributes = response.json()["data"]["attributes"]
        assert PRODUCT_ATTRIBUTES <= set(attributes)
        assert "id" not in attributes
    patched_attributes = patched.json()["data"]["attributes"]
    assert patched_attributes["name"] == "Renamed"
    assert patched_attributes["description"] == "d"
    assert patched_attributes["tags"] == ["t1"]
    assert patched_attributes["extra_properties"] == {"k": "v", "n": 1}
    assert patched_attributes["start_datetime"] == "2020-01-01T00:00:00.000000Z"
    assert created.json()["jsonapi"] == {"version": "1.0"}


def test_timestamps_are_utc_with_a_z_suffix(alice_api):
    body = document("product", {"start_datetime": "2020-06-01T12:00:00+02:00", "end_datetime": "2020-07-01"}, "p")

    created = alice_api.post("products", body).json()["data"]["attributes"]
    patched = alice_api.patch("products/acme:p", document("product", {"name": "x"}, "acme:p")).json()

    for key in ("created", "modified", "start_datetime", "end_datetime"):
        assert re.match(TIMESTAMP_RE, created[key]), (key, created[key])
    assert created["start_datetime"].startswith("2020-06-01T10:00:00")
    assert re.match(TIMESTAMP_RE, patched["data"]["attributes"]["modified"])
    assert patched["data"]["attributes"]["modified"] >= created["modified"]
    assert patched["data"]["attributes"]["created"] == created["created"]


def test_patch_changes_only_the_given_attributes(alice_api, alice_product):
    Product.objects.filter(pk="acme:p").update(description="keep me", tags=["t"])
    before = snapshot(alice_product)

    response = alice_api.patch("products/acme:p", document("product", {"name": "Q"}, "acme:p"))

    assert response.status_code == 200, response.content
    after = snapshot(alice_product)
    changed = {key for key in before if before[key] != after[key]}
    assert changed == {"name", "modified"}


def test_head_tells_whether_a_product_exists(alice_api, alice_product):
    assert alice_api.head("products/acme:p").status_code == 200
    assert alice_api.head("products/acme:nope").status_code == 404


# ---- delete --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("child", ["band", "image"])
def test_deleting_a_product_with_related_objects_is_a_409(alice_api, alice_product, child):
    if child == "band":
        make_band(alice_product, "red")
    else:
        make_image(alice_product, "img")
    before = counts()

    response = alice_api.delete("products/acme:p")

    error = assert_error(response, 409)
    assert "related" in error["detail"].lower()
    assert counts() == before


def test_deleting_an_empty_product(alice_api, alice_product):
    response = alice_api.delete("products/acme:p")

    assert response.status_code == 204
    assert_error(alice_api.get("products/acme:p"), 404)
    assert_error(alice_api.delete("products/acme:p"), 404)


# ---- pagination links and get_many -----------------------------------------------------------------------------
def test_links_are_absolute_and_next_reproduces_the_search(alice, alice_api, settings):
    settings.CATALOG_PAGE_SIZE = 2
    for index in range(3):
        make_product(f"acme:p{index}", owners=[f"user:{alice.namespace}"])
    body = search_body(leaf("id", "prefix", "acme:"), sort="-created")

    response = alice_api.put("products", body)

    links = response.json()["links"]
    assert links["self"] == f"http://testserver{BASE}/products"
    assert links["next"].startswith(f"http://testserver{BASE}/products?continuation=")


def test_links_follow_the_host_header(alice, alice_api, settings):
    settings.CATALOG_PAGE_SIZE = 1
    settings.ALLOWED_HOSTS = ["127.0.0.1", "localhost", "testserver"]
    for index in range(2):
        make_product(f"acme:p{index}", owners=[f"user:{alice.namespace}"])

    response = alice_api.put("products", {}, HTTP_HOST="127.0.0.1:8000")

    assert response.status_code == 200, response.content
    assert response.json()["links"]["next"].startswith(f"http://127.0.0.1:8000{BASE}/products?")


def test_get_list_links_next_keeps_the_query_parameters(alice, alice_api, settings):
    settings.CATALOG_PAGE_SIZE = 1
    for index in range(3):
        make_product(f"acme:p{index}", owners=[f"user:{alice.namespace}"], tags=["keep"])

    first = alice_api.get("products?tags=keep&sort=-name")
    second = alice_api.get(first.json()["links"]["next"].removeprefix("http://testserver"))

    assert ids_of(first) == ["acme:p2"]
    assert ids_of(second) == ["acme:p1"]


def test_get_many_returns_every_id_in_one_page_above_the_page_size(alice, alice_api, settings):
    settings.CATALOG_PAGE_SIZE = 5
    wanted = [f"acme:p{index:02d}" for index in range(12)]
    for product_id in wanted:
        make_product(product_id, owners=[f"user:{alice.namespace}"])

    response = alice_api.put("products", search_body(leaf("id", "eq", wanted)))

    assert response.status_code == 200, response.content
    assert sorted(ids_of(response)) == wanted


def test_text_search_finds_words_in_name_and_description(alice, alice_api):
    owners = [f"user:{alice.namespace}"]
    make_product("acme:a", owners=owners, name="Landsat 8", description="Surface reflectance")
    make_product("acme:b", owners=owners, name="Sentinel-2", description="landsat-like bands")
    make_product("acme:c", owners=owners, name="Other")

    response = alice_api.put("products", {"text": "LANDSAT"})
    both_words = alice_api.put("products", {"text": "landsat reflectance"})

    assert sorted(ids_of(response)) == ["acme:a", "acme:b"]
    assert ids_of(both_words) == ["acme:a"]


# ---- GET collection filters ------------------------------------------------------------------------------------
def test_get_collection_query_filters(alice, alice_api):
    owners = [f"user:{alice.namespace}"]
    make_product("acme:a", owners=owners, name="Alpha", tags=["x"], product_tier="gold")
    make_product("acme:b", owners=owners, name="Beta", tags=["x", "y"])
    make_product("acme:c", owners=owners, name="Gamma", tags=["y"], product_tier="gold")

    assert ids_of(alice_api.get("products?tags=x")) == ["acme:a", "acme:b"]
    assert ids_of(alice_api.get("products?tags=y&product_tier=gold")) == ["acme:c"]
    assert ids_of(alice_api.get("products?name__icontains=ET")) == ["acme:b"]
    assert ids_of(alice_api.get("products?id__startswith=acme:a")) == ["acme:a"]
    error = assert_error(alice_api.get("products?tags=x&colour=red"), 400)
    assert "colour" in error["detail"]


# ---- product jobs ----------------------------------------------------------------------------------------------
def test_delete_related_objects_runs_and_reports_success(alice_api, alice_product):
    make_band(alice_product, "red", resolution_value=10, resolution_unit="meters")
    make_band(alice_product, "nir")
    for index in range(3):
        make_image(alice_product, f"img{index}")

    started = alice_api.post("products/acme:p/delete_related_objects", DELETE_TASK)
    running = alice_api.get("products/acme:p/delete_related_objects")
    run_job("acme:p", "delete_related_objects")
    done = alice_api.get("products/acme:p/delete_related_objects")

    assert started.status_code == 201, started.content
    assert started.json()["data"]["type"] == "product_delete_task"
    assert started.json()["data"]["id"] == "acme:p"
    assert started.json()["data"]["attributes"]["status"] == "RUNNING"
    assert running.json()["data"]["attributes"]["status"] == "RUNNING"
    attributes = done.json()["data"]["attributes"]
    assert attributes["status"] == "SUCCESS"
    assert attributes["objects_deleted"] == 5
    assert re.match(TIMESTAMP_RE, attributes["start_datetime"])
    assert attributes["duration_in_seconds"] >= 0
    assert not Band.objects.exists() and not Image.objects.exists()
    assert Product.objects.get(pk="acme:p").resolution_min_value is None
    assert alice_api.delete("products/acme:p").status_code == 204


def test_delete_related_objects_on_an_empty_product_is_a_204(alice_api, alice_product):
    response = alice_api.post("products/acme:p/delete_related_objects", DELETE_TASK)

    assert response.status_code == 204
    assert not ProductTask.objects.exists()
    assert alice_api.get("products/acme:p/delete_related_objects").json()["data"]["attributes"]["status"] == "NONE"


@pytest.mark.parametrize(
    ("path", "body"), [("delete_related_objects", DELETE_TASK), ("update_related_objects_acls", acl_task(inherit=True))]
)
def test_a_second_job_while_one_is_running_is_a_409(alice_api, alice_product, path, body):
    make_band(alice_product, "red")
    assert alice_api.post(f"products/acme:p/{path}", body).status_code == 201
    task_before = snapshot(ProductTask.objects.get())

    response = alice_api.post(f"products/acme:p/{path}", body)

    assert_error(response, 409)
    assert snapshot(ProductTask.objects.get()) == task_before
    assert Band.objects.exists()


def test_a_finished_job_can_be_started_again(alice_api, alice_product):
    make_band(alice_product, "red")
    alice_api.post("products/acme:p/update_related_objects_acls", acl_task(readers=["org:a"]))
    run_job("acme:p", "update_related_objects_acls")

    response = alice_api.post("products/acme:p/update_related_objects_acls", acl_task(readers=["org:b"]))
    run_job("acme:p", "update_related_objects_acls")

    assert response.status_code == 201, response.content
    assert Band.objects.get().readers == ["org:b"]


def test_update_related_objects_acls_with_inherit_copies_the_product_acls(alice, alice_api, alice_product):
    # Explicit ACLs (set by 1.x clients) differ from the product's, so they do not follow a product change.
    make_band(alice_product, "red", readers=["org:old"])
    make_image(alice_product, "img", writers=["email:old@example.com"])
    patched = alice_api.patch(
        "products/acme:p",
        document("product", {"readers": ["org:partner"], "writers": ["email:w@example.com"]}, "acme:p"),
    )
    assert patched.status_code == 200, patched.content
    # Changing the product's ACLs does not touch bands and images whose ACLs were set explicitly.
    assert Band.objects.get().readers == ["org:old"] and Image.objects.get().writers == ["email:old@example.com"]

    started = alice_api.post(
        "products/acme:p/update_related_objects_acls",
        acl_task(owners=None, readers=["org:extra"], writers=None, inherit=True),
    )
    run_job("acme:p", "update_related_objects_acls")
    status = alice_api.get("products/acme:p/update_related_objects_acls").json()["data"]

    assert started.status_code == 201, started.content
    assert started.json()["data"]["type"] == "product_update_acls"
    assert status["attributes"]["status"] == "SUCCESS"
    assert status["attributes"]["objects_updated"] == 2
    for obj in (Band.objects.get(), Image.objects.get()):
        assert obj.owners == [f"user:{alice.namespace}", "org:acme"]
        assert obj.readers == ["org:extra"]
        assert obj.writers == ["email:w@example.com"]


def test_update_related_objects_acls_without_inherit_leaves_unspecified_lists(alice_api, alice_product):
    make_band(alice_product, "red", writers=["org:keep"])

    alice_api.post("products/acme:p/update_related_objects_acls", acl_task(readers="org:single", inherit=False))
    run_job("acme:p", "update_related_objects_acls")

    band = Band.objects.get()
    assert band.readers == ["org:single"]
    assert band.writers == ["org:keep"]


# ---- query counts ---------------------------------------------------------------------------------------------
def _queries(django_assert_max_num_queries, send) -> tuple[int, list[str]]:
    with django_assert_max_num_queries(25) as captured:
        response = send()
    assert response.status_code == 200, response.content
    return len(captured.captured_queries), ids_of(response)


@pytest.mark.parametrize("how", ["get_list", "put_search"])
def test_listing_products_costs_the_same_for_5_and_50_results(alice, alice_api, django_assert_max_num_queries, how):
    for index in range(50):
        make_product(
            f"acme:p{index:02d}", owners=[f"user:{alice.namespace}", "org:acme"], readers=["org:x"], tags=["t"]
        )

    def send(limit: int):
        if how == "get_list":
            return lambda: alice_api.get(f"products?limit={limit}")
        return lambda: alice_api.put("products", search_body(leaf("tags", "eq", "t"), limit=limit))

    small, small_ids = _queries(django_assert_max_num_queries, send(5))
    large, large_ids = _queries(django_assert_max_num_queries, send(50))

    assert (len(small_ids), len(large_ids)) == (5, 50)
    assert small == large


# ---- ACL changes reach the bands and images that inherit them ------------------------------------------------------
def test_sharing_a_product_shares_its_inheriting_bands_and_images(api, alice, alice_api, alice_product):
    bob = make_user("bob", org="bobs")
    inheriting_image = make_image(alice_product, "old")
    inheriting_band = make_band(alice_product, "red")
    explicit = make_image(alice_product, "private", owners=[f"user:{alice.namespace}"])
    bob_api = api(bob)
    assert ids_of(bob_api.put("images", search_body(leaf("product_id", "eq", "acme:p")))) == []

    response = alice_api.patch("products/acme:p", document("product", {"readers": ["org:bobs"]}, "acme:p"))

    assert response.status_code == 200, response.content
    found = bob_api.put("images", search_body(leaf("product_id", "eq", "acme:p")))
    assert ids_of(found) == [inheriting_image.pk]
    assert bob_api.get(f"bands/{inheriting_band.pk}").status_code == 200
    assert bob_api.get(f"images/{explicit.pk}").status_code == 404
    assert snapshot(explicit)["readers"] == []
