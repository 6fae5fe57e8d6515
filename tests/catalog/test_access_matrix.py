"""The access rule of protocol §7.1 as a declarative matrix: actor × resource × action → expected answer.

One world: organization `acme` owns product `acme:shared` (owners = [user:<owner>, org:acme], the default),
shared with readers through each principal kind (`org:`, `email:`, `group:`) and with one writer (`user:`).
Its band and image inherit those ACLs. `acme:bare` has the same ACLs and no children (so it can be deleted).
A plain member of acme is NOT an owner: `org:acme` in owners means acme's admins only.

Expected answers: anonymous → 401; cannot read → 404 (never 403) and absent from lists/search/count/summary;
reader → reads, 403 on writes; writer → may PATCH plain attributes, 403 on ACL changes and DELETE;
owner and org admin → everything. Every denied write leaves the row unchanged.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pytest
from rest_framework.test import APIClient

from accounts.models import Organization, User
from accounts.tokens import issue_access_token
from imagery.models import Image
from products.models import Band, Product, ProductTask
from tests.catalog.helpers import (
    Api,
    assert_error,
    band_attributes,
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
from tests.factories import make_user

pytestmark = pytest.mark.django_db

# ---- the declaration ----------------------------------------------------------------------------------------
ACTOR_LEVEL = {
    "anonymous": "anonymous",
    "other_org_user": "none",
    "owning_org_member": "none",  # org:acme is in owners, which grants acme's *admins* only
    "reader_via_org": "read",
    "reader_via_email": "read",
    "reader_via_group": "read",
    "writer_via_user": "write",
    "owner": "own",
    "owning_org_admin": "own",
}
ACTORS = list(ACTOR_LEVEL)
READ_LEVELS = {"read", "write", "own"}

DETAIL = {"anonymous": 401, "none": 404, "read": 200, "write": 200, "own": 200}
EXPECTED: dict[str, dict[str, int]] = {
    "get_detail": DETAIL,
    "head_detail": DETAIL,
    "include_product": DETAIL,
    "patch_plain": {"anonymous": 401, "none": 404, "read": 403, "write": 200, "own": 200},
    "patch_acl": {"anonymous": 401, "none": 404, "read": 403, "write": 403, "own": 200},
    "delete": {"anonymous": 401, "none": 404, "read": 403, "write": 403, "own": 204},
    "delete_related_objects": {"anonymous": 401, "none": 404, "read": 403, "write": 403, "own": 201},
    "delete_related_status": DETAIL,
    "update_related_objects_acls": {"anonymous": 401, "none": 404, "read": 403, "write": 403, "own": 201},
    "derived_bands": DETAIL,
}
# List-like reads: anonymous → 401, everyone else → 200 with the object present iff they can read it.
LISTINGS = ("get_list", "put_search", "put_count")

RESOURCES = ("product", "band", "image")
COLLECTION = {"product": "products", "band": "bands", "image": "images"}
MODEL = {"product": Product, "band": Band, "image": Image}
PLAIN_PATCH = {"product": ("name", "Renamed"), "band": ("description", "changed"), "image": ("cloud_fraction", 0.9)}
NEW_READERS = ["org:newco"]

READER_EMAIL = "reader.mail@example.org"


@dataclass
class World:
    users: dict[str, Any]
    apis: dict[str, Api]
    shared: Product
    bare: Product
    band: Band
    image: Image
    # (ACL field, principal) through which each non-owner actor is granted access.
    grants: dict[str, tuple[str, str]] = field(default_factory=dict)

    def target(self, resource: str):
        return {"product": self.bare, "band": self.band, "image": self.image}[resource]


def expected(action: str, actor: str) -> int:
    return EXPECTED[action][ACTOR_LEVEL[actor]]


USERNAMES = {
    "other_org_user": ("other", "other"),
    "owning_org_member": ("member", "acme"),
    "reader_via_org": ("rorg", "rdr"),
    "reader_via_email": ("rmail", "mail"),
    "reader_via_group": ("rgroup", "grp"),
    "writer_via_user": ("writer", "wrt"),
    "owner": ("owner", "acme"),
    "owning_org_admin": ("admin", "acme"),
}


def _build_world() -> World:
    users: dict[str, Any] = {"anonymous": None}
    for actor, (username, org) in USERNAMES.items():
        users[actor] = make_user(
            username,
            org=org,
            org_admin=actor == "owning_org_admin",
            email=READER_EMAIL if actor == "reader_via_email" else None,
            groups=["analysts"] if actor == "reader_via_group" else (),
        )
    apis = {}
    for actor, user in users.items():
        client = APIClient()
        if user is not None:
            client.credentials(HTTP_AUTHORIZATION=f"Bearer {issue_access_token(user=user)}")
        apis[actor] = Api(client)
    grants = {
        "reader_via_org": ("readers", "org:rdr"),
        "reader_via_email": ("readers", f"email:{READER_EMAIL}"),
        "reader_via_group": ("readers", "group:grp:analysts"),
        "writer_via_user": ("writers", f"user:{users['writer_via_user'].namespace}"),
    }
    acl = {
        "readers": ["org:rdr", f"email:{READER_EMAIL}", "group:grp:analysts"],
        "writers": [grants["writer_via_user"][1]],
    }
    # Created through the API by the owner, so the world also rests on default owners and ACL inheritance.
    owner = apis["owner"]
    for name in ("shared", "bare"):
        response = owner.post("products", document("product", {"name": name.title(), **acl}, name))
        assert response.status_code == 201, response.content
    response = owner.post("bands", document("band", band_attributes("acme:shared", "red", resolution=10)))
    assert response.status_code == 201, response.content
    response = owner.post("images", document("image", image_attributes("acme:shared", "img1")))
    assert response.status_code == 201, response.content
    return World(
        users=users,
        apis=apis,
        shared=Product.objects.get(pk="acme:shared"),
        bare=Product.objects.get(pk="acme:bare"),
        band=Band.objects.get(pk="acme:shared:red"),
        image=Image.objects.get(pk="acme:shared:img1"),
        grants=grants,
    )


def _destroy_world() -> None:
    products = ["acme:shared", "acme:bare"]
    Image.objects.filter(product_id__in=products).delete()
    Band.objects.filter(product_id__in=products).delete()
    Product.objects.filter(pk__in=products).delete()
    User.objects.filter(username__in=[username for username, _ in USERNAMES.values()]).delete()
    Organization.objects.filter(slug__in={org for _, org in USERNAMES.values()}).delete()


@pytest.fixture(scope="module")
def world(django_db_setup, django_db_blocker) -> World:
    """Built once for the module and committed; every test runs in its own rolled-back transaction on top."""
    with django_db_blocker.unblock():
        _destroy_world()
        try:
            yield _build_world()
        finally:
            _destroy_world()


def test_world_acls_are_as_declared(world):
    """The matrix rests on these ACLs (default owners + inheritance by the band and image): check them once."""
    owner_ns = world.users["owner"].namespace
    for obj in (world.shared, world.bare, world.band, world.image):
        assert obj.owners == [f"user:{owner_ns}", "org:acme"]
        assert obj.readers == ["org:rdr", f"email:{READER_EMAIL}", "group:grp:analysts"]
        assert obj.writers == [world.grants["writer_via_user"][1]]


# ---- detail reads ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("resource", RESOURCES)
@pytest.mark.parametrize("actor", ACTORS)
def test_get_detail(world, actor, resource):
    target = world.target(resource)

    response = world.apis[actor].get(f"{COLLECTION[resource]}/{target.pk}")

    status = expected("get_detail", actor)
    if status == 200:
        assert response.status_code == 200, response.content
        assert response.json()["data"]["id"] == target.pk
        assert response.json()["data"]["type"] == resource
    else:
        assert_error(response, status)


@pytest.mark.parametrize("resource", RESOURCES)
@pytest.mark.parametrize("actor", ACTORS)
def test_head_detail(world, actor, resource):
    target = world.target(resource)

    response = world.apis[actor].head(f"{COLLECTION[resource]}/{target.pk}")

    assert response.status_code == expected("head_detail", actor)
    assert response.content == b""


@pytest.mark.parametrize("resource", ("band", "image"))
@pytest.mark.parametrize("actor", ACTORS)
def test_include_product_of_a_readable_product(world, actor, resource):
    target = world.target(resource)

    response = world.apis[actor].get(f"{COLLECTION[resource]}/{target.pk}?include=product")

    status = expected("include_product", actor)
    if status == 200:
        assert response.status_code == 200, response.content
        assert included_of(response) == [("product", "acme:shared")]
    else:
        assert_error(response, status)


# ---- list-like reads ------------------------------------------------------------------------------------------
def _listing(world: World, actor: str, resource: str, how: str):
    target = world.target(resource)
    client = world.apis[actor]
    if how == "get_list":
        return client.get(COLLECTION[resource])
    body = search_body(leaf("id", "eq", target.pk))
    if how == "put_count":
        body["limit"] = 0
    return client.put(COLLECTION[resource], body)


@pytest.mark.parametrize("how", LISTINGS)
@pytest.mark.parametrize("resource", RESOURCES)
@pytest.mark.parametrize("actor", ACTORS)
def test_listings_show_only_readable_objects(world, actor, resource, how):
    target = world.target(resource)

    response = _listing(world, actor, resource, how)

    if actor == "anonymous":
        assert_error(response, 401)
        return
    assert response.status_code == 200, response.content
    readable = ACTOR_LEVEL[actor] in READ_LEVELS
    if how == "put_count":
        assert response.json()["meta"]["count"] == (1 if readable else 0)
        assert response.json()["data"] == []
    else:
        assert (target.pk in ids_of(response)) is readable


@pytest.mark.parametrize("actor", ACTORS)
def test_summary_counts_only_readable_images(world, actor):
    stranger = make_user("stranger", org="elsewhere")
    hidden = make_product("elsewhere:hidden", owners=[f"user:{stranger.namespace}"])
    make_image(hidden, "secret", files=[{"href": "gs://b/s.tif", "size_bytes": 7, "hash": "h"}])

    unfiltered = world.apis[actor].put("images/summary/all", {})
    filtered = world.apis[actor].put("images/summary/all", search_body(leaf("product_id", "eq", "acme:shared")))

    if actor == "anonymous":
        assert_error(unfiltered, 401)
        assert_error(filtered, 401)
        return
    readable = ACTOR_LEVEL[actor] in READ_LEVELS
    visible = (
        {"count": 1, "bytes": 1000, "products": ["acme:shared"]}
        if readable
        else {"count": 0, "bytes": 0, "products": []}
    )
    for response in (unfiltered, filtered):
        assert response.status_code == 200, response.content
        assert response.json()["data"]["attributes"] == visible


# ---- writes -----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("resource", RESOURCES)
@pytest.mark.parametrize("actor", ACTORS)
def test_patch_plain_attribute(world, actor, resource):
    target = world.target(resource)
    before = snapshot(target)
    name, value = PLAIN_PATCH[resource]

    response = world.apis[actor].patch(
        f"{COLLECTION[resource]}/{target.pk}", document(resource, {name: value}, target.pk)
    )

    status = expected("patch_plain", actor)
    if status == 200:
        assert response.status_code == 200, response.content
        assert response.json()["data"]["attributes"][name] == value
        assert getattr(MODEL[resource].objects.get(pk=target.pk), name) == value
    else:
        assert_error(response, status)
        assert snapshot(target) == before


@pytest.mark.parametrize("acl_field", ("readers", "writers", "owners"))
@pytest.mark.parametrize("resource", RESOURCES)
@pytest.mark.parametrize("actor", ACTORS)
def test_patch_acl_field(world, actor, resource, acl_field):
    target = world.target(resource)
    before = snapshot(target)
    new_value = [f"user:{world.users['owner'].namespace}", "org:newco"] if acl_field == "owners" else NEW_READERS

    response = world.apis[actor].patch(
        f"{COLLECTION[resource]}/{target.pk}", document(resource, {acl_field: new_value}, target.pk)
    )

    status = expected("patch_acl", actor)
    if status == 200:
        assert response.status_code == 200, response.content
        assert response.json()["data"]["attributes"][acl_field] == new_value
        assert getattr(MODEL[resource].objects.get(pk=target.pk), acl_field) == new_value
    else:
        assert_error(response, status)
        assert snapshot(target) == before


@pytest.mark.parametrize("resource", RESOURCES)
@pytest.mark.parametrize("actor", ACTORS)
def test_delete(world, actor, resource):
    target = world.target(resource)
    before = snapshot(target)

    response = world.apis[actor].delete(f"{COLLECTION[resource]}/{target.pk}")

    status = expected("delete", actor)
    if status == 204:
        assert response.status_code == 204, response.content
        assert not MODEL[resource].objects.filter(pk=target.pk).exists()
    else:
        assert_error(response, status)
        assert snapshot(target) == before


@pytest.mark.parametrize("actor", ACTORS)
def test_delete_related_objects(world, actor):
    band_before, image_before = snapshot(world.band), snapshot(world.image)

    response = world.apis[actor].post(
        "products/acme:shared/delete_related_objects", {"data": {"type": "product_delete_task"}}
    )

    status = expected("delete_related_objects", actor)
    if status == 201:
        assert response.status_code == 201, response.content
        assert response.json()["data"]["attributes"]["status"] == "RUNNING"
        assert ProductTask.objects.filter(product_id="acme:shared", kind="delete_related_objects").exists()
    else:
        assert_error(response, status)
        assert not ProductTask.objects.exists()
    # The job runs later; either way nothing was deleted by the request itself.
    assert snapshot(world.band) == band_before
    assert snapshot(world.image) == image_before


@pytest.mark.parametrize("path", ("delete_related_objects", "update_related_objects_acls"))
@pytest.mark.parametrize("actor", ACTORS)
def test_related_objects_job_status(world, actor, path):
    response = world.apis[actor].get(f"products/acme:shared/{path}")

    status = expected("delete_related_status", actor)
    if status == 200:
        assert response.status_code == 200, response.content
        assert response.json()["data"]["attributes"]["status"] == "NONE"
    else:
        assert_error(response, status)


@pytest.mark.parametrize("actor", ACTORS)
def test_update_related_objects_acls(world, actor):
    band_before, image_before = snapshot(world.band), snapshot(world.image)
    body = {
        "data": {
            "type": "product_update_acls",
            "attributes": {"owners": None, "readers": NEW_READERS, "writers": None, "inherit": False},
        }
    }

    response = world.apis[actor].post("products/acme:shared/update_related_objects_acls", body)

    status = expected("update_related_objects_acls", actor)
    if status == 201:
        assert response.status_code == 201, response.content
        assert response.json()["data"]["attributes"]["status"] == "RUNNING"
    else:
        assert_error(response, status)
        assert not ProductTask.objects.exists()
    assert snapshot(world.band) == band_before
    assert snapshot(world.image) == image_before


@pytest.mark.parametrize("actor", ACTORS)
def test_derived_bands_relationship(world, actor):
    response = world.apis[actor].put("products/acme:shared/relationships/derived_bands", {})

    status = expected("derived_bands", actor)
    if status == 200:
        assert response.status_code == 200, response.content
        # The product has only a `red` band: of the standard set, only derived:rsqrt applies.
        assert ids_of(response) == ["derived:rsqrt"]
    else:
        assert_error(response, status)


# ---- creating children ------------------------------------------------------------------------------------------
CREATE_CHILD = {"anonymous": 401, "none": 404, "read": 403, "write": 201, "own": 201}


@pytest.mark.parametrize("resource", ("band", "image"))
@pytest.mark.parametrize("actor", ACTORS)
def test_create_child_requires_write_access_to_the_product(world, actor, resource):
    attributes = (
        band_attributes("acme:shared", "green") if resource == "band" else image_attributes("acme:shared", "img2")
    )

    response = world.apis[actor].post(COLLECTION[resource], document(resource, attributes))

    status = CREATE_CHILD[ACTOR_LEVEL[actor]]
    new_id = "acme:shared:green" if resource == "band" else "acme:shared:img2"
    if status == 201:
        assert response.status_code == 201, response.content
        assert response.json()["data"]["id"] == new_id
    else:
        assert_error(response, status)
        assert not MODEL[resource].objects.filter(pk=new_id).exists()


@pytest.mark.parametrize("actor", ["writer_via_user", "owner", "owning_org_admin"])
def test_only_product_owners_may_give_children_their_own_acls(world, actor):
    body = document("band", band_attributes("acme:shared", "green", readers=["org:newco"]))

    response = world.apis[actor].post("bands", body)

    if ACTOR_LEVEL[actor] == "own":
        assert response.status_code == 201, response.content
        assert Band.objects.get(pk="acme:shared:green").readers == ["org:newco"]
    else:
        assert_error(response, 403)
        assert not Band.objects.filter(pk="acme:shared:green").exists()


# ---- redaction --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("how", ("detail", "search"))
@pytest.mark.parametrize("resource", RESOURCES)
@pytest.mark.parametrize("actor", [actor for actor, level in ACTOR_LEVEL.items() if level in READ_LEVELS])
def test_non_owners_see_only_the_acl_entries_that_grant_them_access(world, actor, resource, how):
    target = world.target(resource)
    client = world.apis[actor]
    if how == "detail":
        response = client.get(f"{COLLECTION[resource]}/{target.pk}")
        attributes = response.json()["data"]["attributes"]
    else:
        response = client.put(COLLECTION[resource], search_body(leaf("id", "eq", target.pk)))
        [item] = response.json()["data"]
        attributes = item["attributes"]
    assert response.status_code == 200

    assert attributes["owners"] == target.owners
    if ACTOR_LEVEL[actor] == "own":
        assert attributes["readers"] == target.readers
        assert attributes["writers"] == target.writers
    else:
        acl_field, principal = world.grants[actor]
        visible = {"readers": [], "writers": [], acl_field: [principal]}
        assert attributes["readers"] == visible["readers"]
        assert attributes["writers"] == visible["writers"]


# ---- include when only the child is readable --------------------------------------------------------------------
@pytest.fixture
def private_product_with_shared_children(world):
    """`acme:private` readable by its owners only; its band and image are shared with `org:rdr` explicitly."""
    owner = world.apis["owner"]
    response = owner.post("products", document("product", {"name": "Private"}, "private"))
    assert response.status_code == 201, response.content
    band = band_attributes("acme:private", "red", readers=["org:rdr"])
    assert owner.post("bands", document("band", band)).status_code == 201
    image = image_attributes("acme:private", "img1", readers=["org:rdr"])
    assert owner.post("images", document("image", image)).status_code == 201
    return Product.objects.get(pk="acme:private")


@pytest.mark.parametrize("resource", ("band", "image"))
def test_include_never_leaks_an_unreadable_product(world, private_product_with_shared_children, resource):
    reader = world.apis["reader_via_org"]
    child_id = "acme:private:red" if resource == "band" else "acme:private:img1"
    assert_error(reader.get("products/acme:private"), 404)

    detail = reader.get(f"{COLLECTION[resource]}/{child_id}?include=product")
    search = reader.put(COLLECTION[resource], search_body(leaf("product_id", "eq", "acme:private"), include="product"))

    assert detail.status_code == 200, detail.content
    assert detail.json()["data"]["id"] == child_id
    assert ("product", "acme:private") not in included_of(detail)
    assert search.status_code == 200, search.content
    assert ids_of(search) == [child_id]
    assert ("product", "acme:private") not in included_of(search)
    assert "Private" not in json.dumps(detail.json()) + json.dumps(search.json())


@pytest.mark.parametrize("resource", ("band", "image"))
def test_include_gives_the_product_to_those_who_can_read_it(world, private_product_with_shared_children, resource):
    child_id = "acme:private:red" if resource == "band" else "acme:private:img1"

    response = world.apis["owning_org_admin"].get(f"{COLLECTION[resource]}/{child_id}?include=product")

    assert response.status_code == 200, response.content
    assert included_of(response) == [("product", "acme:private")]


def test_a_readable_image_counts_in_summaries_while_its_unreadable_product_stays_hidden(
    world, private_product_with_shared_children
):
    reader = world.apis["reader_via_org"]

    summary = reader.put("images/summary/all", search_body(leaf("product_id", "eq", "acme:private")))
    derived = reader.put("products/acme:private/relationships/derived_bands", {})

    # The image itself is readable, so it counts; the product stays hidden everywhere it is addressed.
    assert summary.json()["data"]["attributes"]["count"] == 1
    assert_error(derived, 404)


# ---- org membership: org:X in readers/writers (not owners) grants every member -------------------------------
def test_org_principal_in_readers_lets_every_member_read_but_not_write(world):
    owner, member = world.apis["owner"], world.apis["owning_org_member"]
    assert owner.post("products", document("product", {"readers": ["org:acme"]}, "team")).status_code == 201
    before = snapshot(Product.objects.get(pk="acme:team"))

    read = member.get("products/acme:team")
    write = member.patch("products/acme:team", document("product", {"name": "mine"}, "acme:team"))
    delete = member.delete("products/acme:team")

    assert read.status_code == 200
    assert read.json()["data"]["attributes"]["readers"] == ["org:acme"]
    assert_error(write, 403)
    assert_error(delete, 403)
    assert snapshot(Product.objects.get(pk="acme:team")) == before


def test_org_principal_in_writers_lets_every_member_write_but_not_delete_or_share(world):
    owner, member = world.apis["owner"], world.apis["owning_org_member"]
    assert owner.post("products", document("product", {"writers": ["org:acme"]}, "team")).status_code == 201

    write = member.patch("products/acme:team", document("product", {"name": "ours"}, "acme:team"))
    share = member.patch("products/acme:team", document("product", {"readers": ["org:other"]}, "acme:team"))
    delete = member.delete("products/acme:team")

    assert write.status_code == 200, write.content
    assert_error(share, 403)
    assert_error(delete, 403)
    product = Product.objects.get(pk="acme:team")
    assert (product.name, product.readers) == ("ours", [])


def test_org_admin_of_another_org_owns_nothing_here(world, api):
    outsider = api(make_user("otheradmin", org="other", org_admin=True))
    before = snapshot(world.bare)

    assert_error(outsider.get("products/acme:bare"), 404)
    assert_error(outsider.delete("products/acme:bare"), 404)
    assert snapshot(world.bare) == before


def test_principals_compare_case_insensitively(world):
    """§7.1: `org:`, `group:` and `email:` principals are lowercase; mixed-case input must still grant access."""
    owner = world.apis["owner"]
    acl = {"readers": ["org:RDR", "email:Reader.Mail@Example.ORG", "group:GRP:Analysts"]}
    response = owner.post("products", document("product", {"name": "Cased", **acl}, "cased"))
    assert response.status_code == 201, response.content

    denied = [
        actor
        for actor in ("reader_via_org", "reader_via_email", "reader_via_group")
        if world.apis[actor].get("products/acme:cased").status_code != 200
    ]
    assert denied == []
    # serializers.principal_validator means to store them lowercased (and deduplicated).
    assert Product.objects.get(pk="acme:cased").readers == ["org:rdr", f"email:{READER_EMAIL}", "group:grp:analysts"]


# ---- filters must not reveal redacted ACL entries -----------------------------------------------------------------
NON_OWNER_READERS = [actor for actor, level in ACTOR_LEVEL.items() if level in ("read", "write")]


@pytest.mark.parametrize("actor", NON_OWNER_READERS)
def test_acl_filters_do_not_reveal_redacted_entries(world, actor):
    """A non-owner sees only the readers/writers entries that grant them access; searching on the others must
    answer exactly as for a principal that appears nowhere (or be refused) — otherwise redaction is moot."""
    client = world.apis[actor]
    granted = world.grants[actor]
    leaks = []
    for resource in RESOURCES:
        target = world.target(resource)
        hidden = [
            (name, principal)
            for name in ("readers", "writers")
            for principal in getattr(target, name)
            if (name, principal) != granted
        ]
        assert hidden, "the world must hold entries this actor cannot see"

        def outcome(name: str, op: str, principal: str, resource=resource, target=target):
            body = search_body(leaf("id", "eq", target.pk), leaf(name, op, principal))
            response = client.put(COLLECTION[resource], body)
            assert response.status_code < 500, response.content
            return response.status_code, ids_of(response) if response.status_code == 200 else None

        for op in ("eq", "ne"):
            for name, principal in hidden:
                if outcome(name, op, principal) != outcome(name, op, "org:appears-nowhere"):
                    leaks.append((resource, name, op, principal))
    assert leaks == []
