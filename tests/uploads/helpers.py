"""Helpers of the upload tests: a product with bands, an API client speaking the upload protocol, polling."""

from __future__ import annotations

import io
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import pytest

DATA = Path(__file__).resolve().parent.parent / "data"
RGB_BANDS = [("red", "Byte", 0), ("green", "Byte", 1), ("blue", "Byte", 2)]


def make_product(
    user,
    local_id: str = "uploads-product",
    bands=RGB_BANDS,
    *,
    nodata: float | None = None,
    file_indexes: list[int] | None = None,
):
    """A product of `user` with bands given as (name, data_type, band_index) triples."""
    from django.db import transaction

    from products.services import band_create, product_create

    with transaction.atomic():
        product = product_create(user=user, requested_id=local_id, attributes={"name": local_id})
        for position, (name, data_type, band_index) in enumerate(bands):
            attributes = {
                "product_id": product.pk,
                "name": name,
                "type": "spectral",
                "data_type": data_type,
                "band_index": band_index,
                "nodata": nodata,
            }
            if file_indexes is not None:
                attributes["file_index"] = file_indexes[position]
            band_create(user=user, attributes=attributes)
    return product


@dataclass
class UploadClient:
    """Speaks the upload protocol like the descarteslabs client does, through Django's test client."""

    client: Any
    prefix: str

    def create(
        self,
        *,
        product_id: str,
        name: str,
        files: list[str] | None = None,
        upload_type: str = "file",
        image: dict[str, Any] | None = None,
        options: dict[str, Any] | None = None,
        include: str = "events",
    ) -> Any:
        attributes = {"name": name, "product_id": product_id, "acquired": "2021-05-01", **(image or {})}
        upload_options = {"upload_type": upload_type, "image_files": files or ["/tmp/tmpabcdef.tif"], **(options or {})}
        body = {
            "data": {
                "type": "image_upload",
                "attributes": {
                    "image": {"data": {"type": "image", "id": f"{product_id}:{name}", "attributes": attributes}},
                    "image_id": f"{product_id}:{name}",
                    "image_upload_options": upload_options,
                },
            }
        }
        url = f"/{self.prefix}/uploads_v2" + (f"?include={include}" if include else "")
        return self.client.post(url, body, format="json")

    def put(self, url: str, data: bytes, **extra) -> Any:
        """PUT raw bytes to an absolute resumable URL, without the client's Authorization header."""
        from django.test import Client

        parts = urlsplit(url)
        return Client().generic(
            "PUT", f"{parts.path}?{parts.query}", data=data, content_type="application/octet-stream", **extra
        )

    def patch_status(self, upload_id: str, status: str) -> Any:
        body = {"data": {"type": "image_upload", "id": upload_id, "attributes": {"status": status}}}
        return self.client.patch(f"/{self.prefix}/uploads_v2/{upload_id}?include=events", body, format="json")

    def get(self, upload_id: str, include: str = "events") -> Any:
        return self.client.get(f"/{self.prefix}/uploads_v2/{upload_id}" + (f"?include={include}" if include else ""))

    def search(self, **body) -> Any:
        return self.client.put(f"/{self.prefix}/uploads_v2", body, format="json")

    def upload(
        self,
        *,
        product_id: str,
        name: str,
        payloads: list[bytes],
        upload_type: str = "file",
        image: dict[str, Any] | None = None,
        options: dict[str, Any] | None = None,
    ) -> str:
        """The whole client flow: create, PUT every file, PATCH pending. Returns the upload id."""
        files = [f"/tmp/tmp{index}.{'npy' if upload_type == 'ndarray' else 'tif'}" for index in range(len(payloads))]
        if upload_type == "ndarray" and options is None:
            options = {"upload_size": sum(len(p) for p in payloads)}
        response = self.create(
            product_id=product_id, name=name, files=files, upload_type=upload_type, image=image, options=options
        )
        assert response.status_code == 201, response.content
        document = response.json()["data"]
        for url, payload in zip(document["attributes"]["resumable_urls"], payloads, strict=True):
            put = self.put(url, payload)
            assert put.status_code == 200, put.content
        patched = self.patch_status(document["id"], "pending")
        assert patched.status_code == 200, patched.content
        return document["id"]


def client_for(auth_client, user) -> UploadClient:
    from django.conf import settings

    return UploadClient(client=auth_client(user), prefix=settings.CATALOG_URL_PREFIX)


def npy_bytes(array: np.ndarray) -> bytes:
    """An array serialized exactly as the client does (`np.save(..., allow_pickle=False)`)."""
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def wait_for_upload(upload_id: str, *, timeout: float = 60, statuses=("success", "failure", "canceled")):
    """Poll the database until the upload reaches one of `statuses`; returns it."""
    from uploads.models import ImageUpload

    deadline = time.monotonic() + timeout
    while True:
        upload = ImageUpload.objects.get(pk=upload_id)
        if upload.status in statuses:
            return upload
        if time.monotonic() > deadline:
            events = list(upload.events.values_list("event_type", "message"))
            pytest.fail(f"upload {upload_id} is still {upload.status} after {timeout} s; events: {events}")
        time.sleep(0.05)


def eventually(check, *, timeout: float = 10, message: str = "condition"):
    """Poll `check()` until it returns a truthy value (for effects that run right after a commit)."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"{message} did not happen within {timeout} s")
        time.sleep(0.05)
