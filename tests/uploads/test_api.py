"""The `/uploads_v2` protocol flow without a worker: documents, capability URLs, status changes, search, access."""

from __future__ import annotations

import hashlib
import io
import json
from urllib.parse import parse_qs, urlsplit

import numpy as np
import pytest

from tests.factories import make_user
from tests.uploads.helpers import DATA, client_for, make_product, npy_bytes
from uploads.choices import ImageUploadEventType, ImageUploadStatus
from uploads.models import ImageUpload, ImageUploadEvent, ImageUploadFile

pytestmark = pytest.mark.django_db

ALLOWED_ERRORS = {400, 401, 403, 404, 405, 409, 410, 422, 429}
TIF = (DATA / "rgb-byte-tenth.tif").read_bytes()


def create_ok(upload_client, product, name="scene1", **kwargs):
    response = upload_client.create(product_id=product.pk, name=name, **kwargs)
    assert response.status_code == 201, response.content
    return response.json()


def test_create_returns_a_transferring_upload_with_one_signed_url_per_file(upload_client, product, alice):
    body = create_ok(upload_client, product, files=["/tmp/tmpa.tif", "/home/x/b.tif"])
    data = body["data"]
    attributes = data["attributes"]
    assert data["type"] == "image_upload"
    assert attributes["status"] == "transferring"
    assert attributes["product_id"] == product.pk
    assert attributes["image_id"] == f"{product.pk}:scene1"
    assert attributes["user"] == alice.namespace
    assert "image" not in attributes  # never null, and a nested document would crash the 3.2.2 client
    assert attributes["image_upload_options"]["image_files"] == ["tmpa.tif", "b.tif"]
    urls = attributes["resumable_urls"]
    assert len(urls) == 2
    for index, url in enumerate(urls):
        parts = urlsplit(url)
        assert parts.scheme == "http" and parts.netloc == "testserver"
        assert parts.path.endswith(f"/uploads_v2/{data['id']}/files/{index}")
        assert parse_qs(parts.query)["token"]
    # to-many relationship and only image_upload_event objects included (protocol §2.2)
    assert data["relationships"] == {"events": {"data": []}}
    assert body["included"] == []


def test_resumable_urls_are_handed_out_only_once(upload_client, product):
    upload_id = create_ok(upload_client, product)["data"]["id"]
    assert upload_client.get(upload_id).json()["data"]["attributes"]["resumable_urls"] == []


def test_put_streams_the_bytes_to_staging_with_hashes(upload_client, product):
    data = create_ok(upload_client, product)["data"]
    response = upload_client.put(data["attributes"]["resumable_urls"][0], TIF)
    assert response.status_code == 200, response.content
    upload_file = ImageUploadFile.objects.get(upload_id=data["id"], index=0)
    assert upload_file.size_bytes == len(TIF)
    assert upload_file.sha256 == hashlib.sha256(TIF).hexdigest()
    assert upload_file.md5 == hashlib.md5(TIF).hexdigest()
    from uploads.storage import imagery_storage

    with imagery_storage().open(upload_file.staging_key, "rb") as handle:
        assert handle.read() == TIF
    assert upload_file.staging_key == f"staging/{product.namespace}/{data['id']}/0"


def test_put_never_reads_request_body(upload_client, product, monkeypatch):
    """The view streams through request.read(); touching request.body would buffer the whole file."""
    from django.core.handlers.wsgi import WSGIRequest

    def forbidden(self):
        raise AssertionError("request.body was accessed")

    monkeypatch.setattr(WSGIRequest, "body", property(forbidden))
    data = create_ok(upload_client, product)["data"]
    assert upload_client.put(data["attributes"]["resumable_urls"][0], TIF).status_code == 200


@pytest.mark.parametrize("mangle", ["missing", "garbage", "tampered", "other-index", "other-upload"])
def test_put_with_an_invalid_token_is_refused(upload_client, product, mangle):
    first = create_ok(upload_client, product, files=["a.tif", "b.tif"])["data"]
    other = create_ok(upload_client, product, name="scene2")["data"]
    url = first["attributes"]["resumable_urls"][0]
    base, token = url.split("?token=")
    if mangle == "missing":
        url = base
    elif mangle == "garbage":
        url = f"{base}?token=abc"
    elif mangle == "tampered":
        url = f"{base}?token={token[:-2]}{'A' if token[-2] != 'A' else 'B'}{token[-1]}"
    elif mangle == "other-index":
        url = f"{base[:-1]}1?token={token}"
    else:
        url = url.replace(first["id"], other["id"])
    response = upload_client.put(url, TIF)
    assert response.status_code == 403
    assert response.json()["errors"][0]["status"] == "403"
    assert not ImageUploadFile.objects.filter(received_at__isnull=False).exists()


def test_expired_url_is_refused(upload_client, product, monkeypatch, settings):
    settings.UPLOAD_URL_TTL = 60
    data = create_ok(upload_client, product)["data"]
    import time

    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() + 61)
    response = upload_client.put(data["attributes"]["resumable_urls"][0], TIF)
    assert response.status_code == 403
    assert "expired" in response.json()["errors"][0]["detail"]


def test_url_lifetime_is_capped_at_one_hour(settings):
    from django.core import signing

    from uploads.tokens import SALT, issue_upload_token

    settings.UPLOAD_URL_TTL = 10 * 24 * 3600
    payload = signing.loads(issue_upload_token(upload_id="u", index=0, cap_bytes=1, now=1000.0), salt=SALT)
    assert payload["e"] == 1000 + 3600


def test_a_used_url_cannot_be_replayed(upload_client, product):
    url = create_ok(upload_client, product)["data"]["attributes"]["resumable_urls"][0]
    assert upload_client.put(url, TIF).status_code == 200
    replay = upload_client.put(url, b"II*\x00 something else")
    assert replay.status_code == 409
    assert "already been used" in replay.json()["errors"][0]["detail"]
    assert ImageUploadFile.objects.get().size_bytes == len(TIF)


def test_put_above_the_byte_cap_is_refused_while_streaming(upload_client, product):
    array = npy_bytes(np.zeros((10, 10), dtype="uint8"))
    image = {"geotrans": [0, 1, 0, 0, 0, -1], "cs_code": "EPSG:4326"}
    data = create_ok(
        upload_client, product, upload_type="ndarray", files=["/tmp/tmpx"], image=image, options={"upload_size": 100}
    )["data"]
    url = data["attributes"]["resumable_urls"][0]
    from uploads.services import NPY_HEADER_ALLOWANCE

    too_big = array + b"\x00" * (100 + NPY_HEADER_ALLOWANCE)
    response = upload_client.put(url, too_big)
    assert response.status_code == 400
    assert "at most" in response.json()["errors"][0]["detail"]
    # Nothing was stored, and the URL can still be used for the real file.
    assert not ImageUploadFile.objects.filter(received_at__isnull=False).exists()
    from uploads.storage import imagery_storage

    assert not imagery_storage().exists(f"staging/{product.namespace}/{data['id']}/0")
    assert upload_client.put(url, array).status_code == 200


def test_put_enforces_the_cap_without_content_length(upload_client, product, settings):
    """A chunked body (no Content-Length, terminated input as under gunicorn) is counted while read."""
    import io

    settings.UPLOAD_MAX_BYTES = 1000
    url = create_ok(upload_client, product)["data"]["attributes"]["resumable_urls"][0]
    body = b"x" * 5000
    response = upload_client.put(
        url, body, CONTENT_LENGTH="", **{"wsgi.input_terminated": True, "wsgi.input": io.BytesIO(body)}
    )
    assert response.status_code == 400
    assert "larger than the 1000 bytes" in response.json()["errors"][0]["detail"]


def test_content_length_above_the_cap_is_refused_before_reading(upload_client, product, settings):
    settings.UPLOAD_MAX_BYTES = 10
    url = create_ok(upload_client, product)["data"]["attributes"]["resumable_urls"][0]
    response = upload_client.put(url, TIF)
    assert response.status_code == 400
    assert f"The file is {len(TIF)} bytes" in response.json()["errors"][0]["detail"]


def test_only_put_is_accepted_on_upload_urls(upload_client, product):
    from django.test import Client

    url = create_ok(upload_client, product)["data"]["attributes"]["resumable_urls"][0]
    parts = urlsplit(url)
    response = Client().post(f"{parts.path}?{parts.query}", data=TIF, content_type="application/octet-stream")
    assert response.status_code == 405


def test_pending_enqueues_on_commit(upload_client, product, enqueued, django_capture_on_commit_callbacks):
    data = create_ok(upload_client, product)["data"]
    assert upload_client.put(data["attributes"]["resumable_urls"][0], TIF).status_code == 200
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = upload_client.patch_status(data["id"], "pending")
    assert response.status_code == 200
    assert response.json()["data"]["attributes"]["status"] == "pending"
    assert enqueued == []  # nothing is sent before the transaction commits
    for callback in callbacks:
        callback()
    assert len(enqueued) == 1
    from uploads.tasks import ingest_image_upload

    assert enqueued[0].args == (data["id"],)
    assert enqueued[0].queue_name == ingest_image_upload.queue_name
    events = response.json()["included"]
    assert [e["attributes"]["event_type"] for e in events] == ["queue"]
    assert enqueued[0].message_id in events[0]["attributes"]["message"]


def test_pending_twice_is_idempotent(upload_client, product, enqueued, django_capture_on_commit_callbacks):
    data = create_ok(upload_client, product)["data"]
    upload_client.put(data["attributes"]["resumable_urls"][0], TIF)
    with django_capture_on_commit_callbacks(execute=True):
        assert upload_client.patch_status(data["id"], "pending").status_code == 200
        assert upload_client.patch_status(data["id"], "pending").status_code == 200
    assert len(enqueued) == 1
    assert ImageUploadEvent.objects.filter(event_type=ImageUploadEventType.QUEUE).count() == 1


def test_pending_before_the_files_arrived_is_a_conflict(upload_client, product, enqueued):
    data = create_ok(upload_client, product, files=["a.tif", "b.tif"])["data"]
    upload_client.put(data["attributes"]["resumable_urls"][0], TIF)
    response = upload_client.patch_status(data["id"], "pending")
    assert response.status_code == 409
    assert "1 (b.tif)" in response.json()["errors"][0]["detail"]
    assert ImageUpload.objects.get().status == ImageUploadStatus.TRANSFERRING


@pytest.mark.parametrize("status", ["running", "success", "failure", "bogus"])
def test_clients_cannot_set_server_statuses(upload_client, product, status):
    data = create_ok(upload_client, product)["data"]
    response = upload_client.patch_status(data["id"], status)
    assert response.status_code == 400
    assert ImageUpload.objects.get().status == ImageUploadStatus.TRANSFERRING


@pytest.mark.parametrize("start", ["transferring", "pending"])
def test_cancel_from_transferring_or_pending(
    upload_client, product, start, enqueued, django_capture_on_commit_callbacks
):
    data = create_ok(upload_client, product)["data"]
    upload_client.put(data["attributes"]["resumable_urls"][0], TIF)
    if start == "pending":
        upload_client.patch_status(data["id"], "pending")
    with django_capture_on_commit_callbacks(execute=True):
        response = upload_client.patch_status(data["id"], "canceled")
    assert response.status_code == 200
    document = response.json()
    assert document["data"]["attributes"]["status"] == "canceled"
    assert document["included"][-1]["attributes"]["event_type"] == "cancel"
    # staged bytes are removed once the cancel commits
    upload_file = ImageUploadFile.objects.get()
    assert upload_file.staging_deleted_at is not None
    from uploads.storage import imagery_storage

    assert not imagery_storage().exists(upload_file.staging_key)
    # the URL is dead now
    assert upload_client.put(data["attributes"]["resumable_urls"][0], TIF).status_code == 409


@pytest.mark.parametrize("status", ["running", "success", "failure", "canceled"])
def test_cancel_once_running_or_terminal_is_a_conflict(upload_client, product, status):
    data = create_ok(upload_client, product)["data"]
    ImageUpload.objects.filter(pk=data["id"]).update(status=status)
    response = upload_client.patch_status(data["id"], "canceled")
    assert response.status_code == 409
    assert response.json()["errors"][0]["title"] == "Conflict"
    assert ImageUpload.objects.get().status == status


def test_other_attributes_cannot_be_patched(upload_client, product):
    data = create_ok(upload_client, product)["data"]
    body = {"data": {"type": "image_upload", "id": data["id"], "attributes": {"image_id": "x:y"}}}
    response = upload_client.client.patch(f"/{upload_client.prefix}/uploads_v2/{data['id']}", body, format="json")
    assert response.status_code == 400


def test_get_without_include_has_no_relationships(upload_client, product):
    data = create_ok(upload_client, product)["data"]
    document = upload_client.get(data["id"], include="").json()
    assert "relationships" not in document["data"]
    assert "included" not in document


def test_events_are_a_to_many_relationship_with_only_event_objects_included(upload_client, product, enqueued):
    data = create_ok(upload_client, product)["data"]
    upload_client.put(data["attributes"]["resumable_urls"][0], TIF)
    upload_client.patch_status(data["id"], "pending")
    upload_client.patch_status(data["id"], "canceled")
    document = upload_client.get(data["id"]).json()
    related = document["data"]["relationships"]["events"]["data"]
    assert isinstance(related, list) and len(related) == 2
    assert {item["type"] for item in document["included"]} == {"image_upload_event"}
    assert [item["id"] for item in document["included"]] == [item["id"] for item in related]
    event = document["included"][0]["attributes"]
    assert set(event) == {"event_datetime", "component", "component_id", "event_type", "severity", "message"}
    assert event["event_datetime"].endswith("Z")
    assert "image" not in document["data"]["attributes"]


def test_search_filters_by_product_image_status_and_created(upload_client, product, alice):
    other_product = make_product(alice, "second-product")
    first = create_ok(upload_client, product, name="a")["data"]["id"]
    second = create_ok(upload_client, product, name="b")["data"]["id"]
    third = create_ok(upload_client, other_product, name="a")["data"]["id"]
    ImageUpload.objects.filter(pk=second).update(status=ImageUploadStatus.FAILURE)

    def ids(*filters, **extra):
        response = upload_client.search(filter=json.dumps(list(filters)), include="events", **extra)
        assert response.status_code == 200, response.content
        return {item["id"] for item in response.json()["data"]}

    by_product = {"op": "eq", "name": "product_id", "val": product.pk}
    assert ids(by_product) == {first, second}
    assert ids({"op": "eq", "name": "product_id", "val": other_product.pk}) == {third}
    assert ids(by_product, {"op": "eq", "name": "image_id", "val": f"{product.pk}:a"}) == {first}
    assert ids(by_product, {"op": "eq", "name": "status", "val": "failure"}) == {second}
    assert ids(by_product, {"op": "gt", "name": "created", "val": "2000-01-01"}) == {first, second}
    assert ids(by_product, {"op": "lt", "name": "created", "val": "2000-01-01"}) == set()
    count = upload_client.search(filter=json.dumps([by_product]), limit=0).json()["meta"]["count"]
    assert count == 2
    bad = upload_client.search(filter=json.dumps([{"op": "eq", "name": "status", "val": "nope"}]))
    assert bad.status_code == 400


def test_search_pages_through_uploads(upload_client, product, settings):
    settings.CATALOG_PAGE_SIZE = 2
    created = {create_ok(upload_client, product, name=f"s{i}")["data"]["id"] for i in range(5)}
    seen, url, body = (
        set(),
        f"/{upload_client.prefix}/uploads_v2",
        {"filter": json.dumps([{"op": "eq", "name": "product_id", "val": product.pk}]), "sort": "-created"},
    )
    while url:
        page = upload_client.client.put(url, body, format="json").json()
        seen.update(item["id"] for item in page["data"])
        url = page["links"].get("next")
        if url:
            url = url.replace("http://testserver", "")
    assert seen == created


def test_uploads_are_visible_to_their_creator_and_the_product_owners_only(auth_client, alice, product):
    writer = make_user("walter", org="uporg")  # an org member: writer through the org ACL below
    outsider = make_user("olga", org="otherorg")
    from products.models import Product

    Product.objects.filter(pk=product.pk).update(writers=["org:uporg"])
    writer_client = client_for(auth_client, writer)
    upload_id = create_ok(writer_client, product, name="by-writer")["data"]["id"]
    # the writer sees their own upload, the owner sees it too, an outsider gets 404 everywhere
    assert writer_client.get(upload_id).status_code == 200
    assert client_for(auth_client, alice).get(upload_id).status_code == 200
    outsider_client = client_for(auth_client, outsider)
    assert outsider_client.get(upload_id).status_code == 404
    assert outsider_client.patch_status(upload_id, "canceled").status_code == 404
    found = outsider_client.search(filter=json.dumps([{"op": "eq", "name": "product_id", "val": product.pk}]))
    assert found.json()["data"] == []
    assert ImageUpload.objects.get().status == ImageUploadStatus.TRANSFERRING


def test_upload_into_an_unreadable_product_is_404_and_readable_only_is_403(auth_client, product):
    from products.models import Product

    outsider = make_user("olga", org="otherorg")
    reader = make_user("rita", org="readerorg")
    Product.objects.filter(pk=product.pk).update(readers=["org:readerorg"])
    assert client_for(auth_client, outsider).create(product_id=product.pk, name="x").status_code == 404
    assert client_for(auth_client, reader).create(product_id=product.pk, name="x").status_code == 403
    assert not ImageUpload.objects.exists()


def test_anonymous_requests_are_401(api_client, product):
    from django.conf import settings

    assert api_client.get(f"/{settings.CATALOG_URL_PREFIX}/uploads_v2/abc").status_code == 401
    assert api_client.put(f"/{settings.CATALOG_URL_PREFIX}/uploads_v2", {}, format="json").status_code == 401


def test_uploads_cannot_be_deleted(upload_client, product):
    data = create_ok(upload_client, product)["data"]
    response = upload_client.client.delete(f"/{upload_client.prefix}/uploads_v2/{data['id']}")
    assert response.status_code == 405


@pytest.mark.parametrize(
    ("image", "options", "pointer"),
    [
        ({"acquired": None}, {}, "/data/attributes/image/data/attributes/acquired"),
        ({"files": [{"href": "gs://x"}]}, {}, "/data/attributes/image/data/attributes/files"),
        ({"owners": ["org:x"]}, {}, "/data/attributes/image/data/attributes/owners"),
        ({"projection": "+init=epsg:4326"}, {}, "/data/attributes/image/data/attributes/projection"),
        ({"projection": "/etc/passwd"}, {}, "/data/attributes/image/data/attributes/projection"),
        ({"cs_code": "file:///etc/passwd"}, {}, "/data/attributes/image/data/attributes/cs_code"),
        ({"cloud_fraction": 2}, {}, "/data/attributes/image/data/attributes/cloud_fraction"),
        ({}, {"overviews": list(range(2, 20))}, "/data/attributes/image_upload_options/overviews"),
        ({}, {"overviews": [1]}, "/data/attributes/image_upload_options/overviews"),
        ({}, {"overview_resampler": "bilinear-ish"}, "/data/attributes/image_upload_options/overview_resampler"),
        ({}, {"upload_type": "tarball"}, "/data/attributes/image_upload_options/upload_type"),
        ({}, {"image_files": []}, "/data/attributes/image_upload_options/image_files"),
        ({}, {"upload_type": "ndarray"}, "/data/attributes/image/data/attributes/geotrans"),
        ({}, {"surprise": 1}, "/data/attributes/image_upload_options/surprise"),
    ],
)
def test_invalid_create_requests_name_the_problem(upload_client, product, image, options, pointer):
    response = upload_client.create(product_id=product.pk, name="bad", image=image, options=options)
    assert response.status_code == 400, response.content
    pointers = [error.get("source", {}).get("pointer") for error in response.json()["errors"]]
    assert pointer in pointers
    assert not ImageUpload.objects.exists()


def test_image_id_must_match_product_and_name(upload_client, product):
    body = {
        "data": {
            "type": "image_upload",
            "attributes": {
                "image": {
                    "data": {
                        "type": "image",
                        "attributes": {"name": "n", "product_id": product.pk, "acquired": "2021-01-01"},
                    }
                },
                "image_id": f"{product.pk}:other",
                "image_upload_options": {"image_files": ["a.tif"]},
            },
        }
    }
    response = upload_client.client.post(f"/{upload_client.prefix}/uploads_v2", body, format="json")
    assert response.status_code == 400
    assert response.json()["errors"][0]["source"]["pointer"] == "/data/attributes/image_id"


def test_an_upload_may_target_an_existing_writable_image(upload_client, product, alice, auth_client):
    """overwrite=True is not on the wire: the server accepts uploads for existing image ids."""
    from imagery.models import Image

    Image.objects.create(
        id=f"{product.pk}:existing", product=product, name="existing", owners=product.owners, storage_state="remote"
    )
    assert upload_client.create(product_id=product.pk, name="existing").status_code == 201
    # someone who may write the product but not that image cannot replace it
    from products.models import Product

    writer = make_user("walter", org="uporg")
    Product.objects.filter(pk=product.pk).update(writers=["org:uporg"])
    response = client_for(auth_client, writer).create(product_id=product.pk, name="existing")
    assert response.status_code == 403


def test_error_statuses_stay_within_what_the_client_maps(upload_client, product):
    data = create_ok(upload_client, product)["data"]
    responses = [
        upload_client.put(data["attributes"]["resumable_urls"][0] + "x", TIF),
        upload_client.patch_status(data["id"], "success"),
        upload_client.get("does-not-exist"),
        upload_client.create(product_id="nope:nope", name="x"),
    ]
    assert {r.status_code for r in responses} <= ALLOWED_ERRORS


def test_a_retried_put_replaces_the_leftover_of_an_attempt_that_did_not_commit(upload_client, product):
    data = create_ok(upload_client, product)["data"]
    from uploads.storage import imagery_storage

    key = f"staging/{product.namespace}/{data['id']}/0"
    imagery_storage().save(key, io.BytesIO(b"half of an earlier attempt"))
    assert upload_client.put(data["attributes"]["resumable_urls"][0], TIF).status_code == 200
    with imagery_storage().open(key, "rb") as handle:
        assert handle.read() == TIF
