"""The web UI's access rules, form handling and responses, with Django's test client (no browser).

Every page goes through `restrict(user, action)`: another organization's private product never shows up in
a page, a select box, a map or a count, and its pages answer 404 exactly like a missing one.
"""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from tests.factories import make_user

pytestmark = pytest.mark.django_db


def product_of(user, local_id: str, *, name: str = "", readers=(), bands=("red",)):
    from django.db import transaction

    from products.services import band_create, product_create

    with transaction.atomic():
        product = product_create(user=user, requested_id=local_id, attributes={"name": name or local_id})
        if readers:
            product.readers = list(readers)
            product.save()
        for index, band in enumerate(bands):
            band_create(
                user=user,
                attributes={
                    "product_id": product.pk,
                    "name": band,
                    "type": "spectral",
                    "data_type": "Byte",
                    "band_index": index,
                },
            )
    return product


def image_of(product, name: str = "scene", *, preview: bytes | None = None, file_bytes: bytes = b"II*\x00data"):
    """An image as ingest leaves it: files and preview in imagery storage, footprint, product ACLs."""
    from django.contrib.gis.geos import Polygon
    from django.core.files.base import ContentFile

    from imagery.models import Image
    from uploads import storage

    key = f"rasters/{product.namespace}/test/{name}/file-0.tif"
    storage.imagery_storage().save(key, ContentFile(file_bytes))
    preview_file = None
    if preview is not None:
        preview_key = f"rasters/{product.namespace}/test/{name}/preview.png"
        storage.imagery_storage().save(preview_key, ContentFile(preview))
        preview_file = storage.href_for(preview_key)
    return Image.objects.create(
        id=f"{product.pk}:{name}",
        product=product,
        name=name,
        owners=product.owners,
        readers=product.readers,
        writers=product.writers,
        geometry=Polygon.from_bbox((10, 50, 11, 51)),
        acquired="2021-05-01T00:00:00Z",
        files=[{"href": storage.href_for(key), "size_bytes": len(file_bytes), "hash": "abc"}],
        size_bytes=len(file_bytes),
        preview_file=preview_file,
        cs_code="EPSG:4326",
        geotrans=[0, 1, 0, 0, 0, -1],
        x_pixels=1,
        y_pixels=1,
    )


@pytest.fixture
def alice():
    return make_user("alice", org="acme", org_admin=True)


@pytest.fixture
def carol():
    return make_user("carol", org="globex")


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32


# ---- who sees what ---------------------------------------------------------------------------------------------
def test_every_page_asks_anonymous_visitors_to_log_in(alice):
    product = product_of(alice, "p")
    client = Client()
    for url in (
        reverse("dashboard"),
        reverse("products:product_list"),
        reverse("products:product_add"),
        reverse("products:product_detail", args=[product.pk]),
        reverse("uploads:image_upload_list"),
        reverse("uploads:image_upload_add"),
        reverse("accounts:organization_detail"),
        reverse("accounts:refresh_token_list"),
        reverse("imagery:image_footprints"),
    ):
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith("/login/?next="), url


def test_another_organizations_private_product_is_invisible_everywhere(alice, carol):
    private = product_of(alice, "secret", name="Top secret")
    image = image_of(private, preview=PNG)
    client = client_for(carol)

    for url in (
        reverse("products:product_detail", args=[private.pk]),
        reverse("products:product_edit", args=[private.pk]),
        reverse("products:product_share", args=[private.pk]),
        reverse("products:product_delete", args=[private.pk]),
        reverse("products:band_add", args=[private.pk]),
        reverse("products:band_edit", args=[f"{private.pk}:red"]),
        reverse("products:product_task", args=[private.pk, "delete_related_objects"]),
        reverse("imagery:image_detail", args=[image.pk]),
        reverse("imagery:image_preview", args=[image.pk]),
        reverse("imagery:image_file", args=[image.pk, 0]),
    ):
        response = client.get(url)
        assert response.status_code == 404, url
        assert b"Top secret" not in response.content
    assert client.post(reverse("products:product_delete_related", args=[private.pk])).status_code == 404

    for url in (
        reverse("dashboard"),
        reverse("products:product_list"),
        reverse("uploads:image_upload_add"),
        reverse("uploads:image_upload_list"),
        f"{reverse('products:product_list')}?q=secret",
    ):
        response = client.get(url)
        assert response.status_code == 200
        assert b"acme:secret" not in response.content and b"Top secret" not in response.content, url
    assert client.get(reverse("dashboard")).context["visible_products"] == 0
    footprints = client.get(reverse("imagery:image_footprints"), {"product_id": private.pk}).json()
    assert footprints["features"] == []
    # The uploads filter's product select refuses the hidden product as a value too.
    response = client.get(reverse("uploads:image_upload_list"), {"product": private.pk})
    assert "product" in response.context["filter_errors"]


def test_a_reader_sees_the_product_but_cannot_change_share_or_delete_it(alice, carol):
    shared = product_of(alice, "shared", readers=["org:globex"])
    image_of(shared)
    client = client_for(carol)
    detail = client.get(reverse("products:product_detail", args=[shared.pk]))
    assert detail.status_code == 200
    assert detail.context["can_change"] is False and detail.context["can_share"] is False
    # Readers see only the ACL entries that grant them access (protocol §7.1 redaction).
    assert [value for value, _ in detail.context["acl"]["readers"]] == ["org:globex"]
    for url in (
        reverse("products:product_edit", args=[shared.pk]),
        reverse("products:product_share", args=[shared.pk]),
        reverse("products:product_delete", args=[shared.pk]),
        reverse("products:band_add", args=[shared.pk]),
        reverse("products:band_edit", args=[f"{shared.pk}:red"]),
    ):
        assert client.get(url).status_code == 403, url
    # Not offered as an upload target: reading is not writing.
    form = client.get(reverse("uploads:image_upload_add")).context["form"]
    assert list(form.fields["product"].queryset) == []
    features = client.get(reverse("imagery:image_footprints"), {"product_id": shared.pk}).json()["features"]
    assert [feature["properties"]["name"] for feature in features] == ["scene"]
    assert features[0]["properties"]["url"] == reverse("imagery:image_detail", args=[f"{shared.pk}:scene"])


def test_uploads_of_others_stay_private_to_uploader_and_product_owners(alice, carol):
    from django.db import transaction

    from uploads.services import UploadSpec, image_upload_create

    shared = product_of(alice, "shared", readers=["org:globex"])
    spec = UploadSpec(
        product_id=shared.pk,
        image_name="x",
        image_attributes={"acquired": "2021-01-01"},
        upload_type="file",
        image_files=["x.tif"],
        overviews=[],
        overview_resampler=None,
        upload_size=None,
    )
    with transaction.atomic():
        upload, _ = image_upload_create(user=alice, spec=spec)
    assert client_for(alice).get(reverse("uploads:image_upload_detail", args=[upload.pk])).status_code == 200
    carol_client = client_for(carol)
    assert carol_client.get(reverse("uploads:image_upload_detail", args=[upload.pk])).status_code == 404
    assert carol_client.post(reverse("uploads:image_upload_cancel", args=[upload.pk])).status_code == 404
    assert carol_client.get(reverse("uploads:image_upload_events", args=[upload.pk])).status_code == 404
    assert b"x.tif" not in carol_client.get(reverse("uploads:image_upload_list")).content


# ---- forms write through the services, with the API's validation -------------------------------------------------
def test_product_form_creates_in_the_callers_namespace_and_reports_conflicts(alice):
    from products.models import Product

    client = client_for(alice)
    response = client.post(reverse("products:product_add"), {"id": "ndvi", "name": "NDVI", "tags": "a, b, a"})
    assert response.status_code == 302 and response["Location"] == reverse(
        "products:product_detail", args=["acme:ndvi"]
    )
    product = Product.objects.get(pk="acme:ndvi")
    assert product.tags == ["a", "b"]
    assert product.owners == [f"user:{alice.namespace}", "org:acme"]
    again = client.post(reverse("products:product_add"), {"id": "ndvi"})
    assert again.status_code == 200 and "already exists" in str(again.context["form"].errors["id"])
    bad = client.post(reverse("products:product_add"), {"id": "has space"})
    assert "only letters" in str(bad.context["form"].errors["id"])
    later = client.post(
        reverse("products:product_add"),
        {"id": "x", "start_datetime": "2021-02-01T00:00", "end_datetime": "2020-01-01T00:00"},
    )
    assert "before start_datetime" in str(later.context["form"].errors)


def test_band_forms_hold_only_the_fields_of_their_type(alice):
    product = product_of(alice, "p", bands=())
    client = client_for(alice)
    fields = {
        band_type: set(client.get(reverse("products:band_add", args=[product.pk, band_type])).context["form"].fields)
        for band_type in ("spectral", "microwave", "mask", "class", "generic")
    }
    assert "wavelength_nm_center" in fields["spectral"] and "frequency" not in fields["spectral"]
    assert "frequency" in fields["microwave"] and "wavelength_nm_center" not in fields["microwave"]
    assert "is_alpha" in fields["mask"] and "data_range" not in fields["mask"]
    assert {"colormap_name", "class_labels"} <= fields["class"] and "physical_range" not in fields["class"]
    assert {"physical_range", "colormap_name"} <= fields["generic"] and "class_labels" not in fields["generic"]
    assert client.get(reverse("products:band_add", args=[product.pk, "hyperspectral"])).status_code == 404

    response = client.post(
        reverse("products:band_add", args=[product.pk, "class"]),
        {
            "name": "landcover",
            "data_type": "Byte",
            "colormap_name": "viridis",
            "class_labels": "water\nforest\nurban",
            "file_index": "0",
        },
    )
    assert response.status_code == 302, response.context["form"].errors
    from products.models import Band

    band = Band.objects.get(pk=f"{product.pk}:landcover")
    assert (band.type, band.colormap_name, band.class_labels) == ("class", "viridis", ["water", "forest", "urban"])
    edited = client.post(
        reverse("products:band_edit", args=[band.pk]),
        {"data_type": "UInt16", "colormap_name": "", "class_labels": "", "file_index": "0", "jpx_layer_index": "0"},
    )
    assert edited.status_code == 302, edited.context["form"].errors
    band.refresh_from_db()
    assert (band.data_type, band.colormap_name, band.class_labels, band.name) == ("UInt16", None, None, "landcover")


def test_share_form_validates_principals_and_keeps_the_editor_an_owner(alice):
    product = product_of(alice, "p")
    client = client_for(alice)
    url = reverse("products:product_share", args=[product.pk])
    owners = "\n".join(product.owners)
    bad = client.post(url, {"owners": owners, "readers": "everyone"})
    assert "not a valid principal" in str(bad.context["form"].errors["readers"])
    owner_email = client.post(url, {"owners": owners + "\nemail:x@example.org"})
    assert "not a valid principal" in str(owner_email.context["form"].errors["owners"])
    locked_out = client.post(url, {"owners": "user:someoneelse"})
    assert "no longer be an owner" in str(locked_out.context["form"].errors["owners"])
    ok = client.post(url, {"owners": owners, "readers": "org:Globex, email:Ana@Example.org", "writers": ""})
    assert ok.status_code == 302, ok.context["form"].errors
    product.refresh_from_db()
    # Normalized like the API does (case of orgs and emails).
    assert product.readers == ["org:globex", "email:ana@example.org"]
    assert product.owners == [f"user:{alice.namespace}", "org:acme"]


def test_deleting_a_product_with_bands_answers_409_in_words(alice):
    from products.models import Product

    product = product_of(alice, "p")
    client = client_for(alice)
    response = client.post(reverse("products:product_delete", args=[product.pk]))
    assert response.status_code == 409
    assert b"can only be deleted once it is empty" in response.content
    assert Product.objects.filter(pk=product.pk).exists()


def test_preview_and_files_are_served_with_safe_content_types(alice, settings):
    product = product_of(alice, "p")
    image = image_of(product, preview=PNG, file_bytes=b"<html><script>alert(1)</script></html>")
    client = client_for(alice)
    preview = client.get(reverse("imagery:image_preview", args=[image.pk]))
    assert preview.status_code == 200
    assert preview["Content-Type"] == "image/png"
    assert preview["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" in preview["Content-Security-Policy"]
    assert b"".join(preview.streaming_content) == PNG
    download = client.get(reverse("imagery:image_file", args=[image.pk, 0]))
    assert download.status_code == 200
    assert download["Content-Type"] == "application/octet-stream"
    assert download["Content-Disposition"].startswith("attachment;")
    assert "sandbox" in download["Content-Security-Policy"]
    # A "preview" that is not a PNG is never served (whatever ended up in storage).
    fake = image_of(product, "fake", preview=b"<svg onload=alert(1)>")
    assert client.get(reverse("imagery:image_preview", args=[fake.pk])).status_code == 404
    assert client.get(reverse("imagery:image_file", args=[image.pk, 5])).status_code == 404


# ---- organization and tokens -------------------------------------------------------------------------------------
def test_only_org_admins_change_roles_and_groups_and_only_in_their_organization(alice, carol):
    from accounts.models import Group, Membership

    bob = make_user("bob", org="acme")
    bob_client = client_for(bob)
    membership = Membership.objects.get(user=alice)
    assert (
        bob_client.post(
            reverse("accounts:membership_edit", args=[membership.pk]), {f"m{membership.pk}-role": "member"}
        ).status_code
        == 403
    )
    assert bob_client.post(reverse("accounts:group_add"), {"name": "x"}).status_code == 403
    # The last admin cannot step down.
    alice_client = client_for(alice)
    response = alice_client.post(
        reverse("accounts:membership_edit", args=[membership.pk]), {f"m{membership.pk}-role": "member"}, follow=True
    )
    assert "only admin" in response.content.decode()
    assert Membership.objects.get(user=alice).role == "org-admin"
    # Another organization's members and groups are out of reach (404).
    carol_membership = Membership.objects.get(user=carol)
    assert (
        alice_client.post(
            reverse("accounts:membership_edit", args=[carol_membership.pk]),
            {f"m{carol_membership.pk}-role": "org-admin"},
        ).status_code
        == 404
    )
    group = Group.objects.create(organization=carol_membership.organization, name="g")
    assert alice_client.get(reverse("accounts:group_edit", args=[group.pk])).status_code == 404
    # Group members can only come from the group's organization.
    alice_client.post(reverse("accounts:group_add"), {"name": "analysts"})
    analysts = Group.objects.get(name="analysts")
    response = alice_client.post(reverse("accounts:group_edit", args=[analysts.pk]), {"members": [carol.pk]})
    assert "members" in response.context["form"].errors
    assert (
        alice_client.post(reverse("accounts:group_add"), {"name": "org-admin"}, follow=True).content.count(b"reserved")
        == 1
    )


def test_tokens_are_personal(alice, carol):
    from accounts.tokens import refresh_token_create

    token, _ = refresh_token_create(user=carol, name="carol's")
    client = client_for(alice)
    assert client.post(reverse("accounts:refresh_token_revoke", args=[token.pk])).status_code == 404
    token.refresh_from_db()
    assert token.revoked_at is None
    page = client.get(reverse("accounts:refresh_token_list"))
    assert b"carol&#x27;s" not in page.content and token.prefix.encode() not in page.content
    created = client.post(reverse("accounts:refresh_token_add"), {"name": "ci", "expires_in_days": "30"})
    assert created["Cache-Control"] == "no-store"
    assert created.context["secret"].startswith("tsr_")
    assert created.context["created"].expires_at is not None
