"""The uploads admin: list filters, the event log inline, cancel/retry actions through the services."""

from __future__ import annotations

import pytest
from django.test import Client

from accounts.models import User
from tests.factories import make_user
from tests.uploads.helpers import DATA
from uploads.choices import ImageUploadStatus
from uploads.models import ImageUpload

pytestmark = pytest.mark.django_db
TIF = (DATA / "rgb-byte-tenth.tif").read_bytes()


def staff_client(user, *, superuser: bool = False) -> Client:
    User.objects.filter(pk=user.pk).update(is_staff=True, is_superuser=superuser)
    client = Client()
    client.force_login(User.objects.get(pk=user.pk))
    return client


def staged(upload_client, product, name: str) -> str:
    data = upload_client.create(product_id=product.pk, name=name).json()["data"]
    assert upload_client.put(data["attributes"]["resumable_urls"][0], TIF).status_code == 200
    return data["id"]


def test_changelist_filters_and_detail_with_events(upload_client, product, alice, enqueued):
    upload_id = staged(upload_client, product, "a")
    upload_client.patch_status(upload_id, "pending")
    client = staff_client(make_user("root", org="staff"), superuser=True)
    page = client.get("/admin/uploads/imageupload/?status__exact=pending")
    assert page.status_code == 200 and upload_id in page.content.decode()
    assert upload_id not in client.get("/admin/uploads/imageupload/?status__exact=failure").content.decode()
    detail = client.get(f"/admin/uploads/imageupload/{upload_id}/change/").content.decode()
    assert "Queued for ingest" in detail and "tmpabcdef.tif" in detail


def test_cancel_action_uses_the_service(upload_client, product, enqueued, django_capture_on_commit_callbacks):
    pending = staged(upload_client, product, "a")
    upload_client.patch_status(pending, "pending")
    finished = staged(upload_client, product, "b")
    ImageUpload.objects.filter(pk=finished).update(status=ImageUploadStatus.SUCCESS)
    client = staff_client(make_user("root", org="staff"), superuser=True)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/admin/uploads/imageupload/",
            {"action": "cancel_uploads", "_selected_action": [pending, finished]},
            follow=True,
        )
    text = response.content.decode()
    assert "1 upload(s) canceled" in text and "can no longer be canceled" in text
    assert ImageUpload.objects.get(pk=pending).status == ImageUploadStatus.CANCELED
    assert ImageUpload.objects.get(pk=pending).events.last().component == "tessera-admin"
    assert ImageUpload.objects.get(pk=finished).status == ImageUploadStatus.SUCCESS


def test_retry_action_reruns_a_failure_whose_bytes_were_kept(
    upload_client, product, enqueued, settings, django_capture_on_commit_callbacks
):
    from uploads import services

    settings.UPLOAD_FAILED_STAGING_RETENTION = 3600
    upload_id = staged(upload_client, product, "a")
    upload_client.patch_status(upload_id, "pending")
    services._claim(upload_id=upload_id, worker="w")
    services._finish_failure(
        upload=ImageUpload.objects.get(pk=upload_id),
        worker="w",
        event_type="error",
        error="InternalError",
        message="a bug, since fixed",
    )
    client = staff_client(make_user("root", org="staff"), superuser=True)
    enqueued.clear()
    with django_capture_on_commit_callbacks(execute=True):
        client.post("/admin/uploads/imageupload/", {"action": "retry_uploads", "_selected_action": [upload_id]})
    upload = ImageUpload.objects.get(pk=upload_id)
    assert upload.status == ImageUploadStatus.PENDING and upload.attempts == 0
    assert [message.args for message in enqueued] == [(upload_id,)]
    assert services.image_upload_ingest(upload_id=upload_id) == "success"
    assert upload.events.filter(event_type="complete").count() == 1


def test_retry_is_refused_when_the_staged_bytes_are_gone(
    upload_client, product, enqueued, django_capture_on_commit_callbacks
):
    from uploads import services

    upload_id = staged(upload_client, product, "a")
    upload_client.patch_status(upload_id, "pending")
    services._claim(upload_id=upload_id, worker="w")
    with django_capture_on_commit_callbacks(execute=True):
        services._finish_failure(
            upload=ImageUpload.objects.get(pk=upload_id),
            worker="w",
            event_type="error",
            error="InvalidFileError",
            message="bad",
        )
    client = staff_client(make_user("root", org="staff"), superuser=True)
    response = client.post(
        "/admin/uploads/imageupload/", {"action": "retry_uploads", "_selected_action": [upload_id]}, follow=True
    )
    assert "staged files of upload" in response.content.decode()
    assert ImageUpload.objects.get(pk=upload_id).status == ImageUploadStatus.FAILURE


def test_staff_see_only_uploads_they_may_see(upload_client, product):
    upload_id = staged(upload_client, product, "a")
    outsider = staff_client(make_user("olga", org="otherorg"))
    assert upload_id not in outsider.get("/admin/uploads/imageupload/").content.decode()
    assert outsider.get(f"/admin/uploads/imageupload/{upload_id}/change/").status_code in (302, 404)
