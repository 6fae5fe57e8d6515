"""Hostile and broken input, each through the real upload flow (API → PUT → worker → sandboxed child).

Every case must end in `failure` with a clear error event and a `complete` event, create no image, leave
no staged bytes, and leave the worker able to ingest the next (good) upload.
"""

from __future__ import annotations

import io
import json
import os
import re
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import rasterio

from imagery.models import Image
from tests.uploads.helpers import DATA, RGB_BANDS, eventually, make_product, npy_bytes, wait_for_upload
from uploads.choices import ImageUploadStatus
from uploads.models import ImageUpload, ImageUploadEvent, ImageUploadFile
from uploads.storage import imagery_storage, list_keys

pytestmark = pytest.mark.django_db(transaction=True)

RGB = (DATA / "RGB.byte.tif").read_bytes()
RGBA_UINT16_BANDS = [("b", "UInt16", 0), ("g", "UInt16", 1), ("r", "UInt16", 2), ("a", "UInt16", 3)]


def random_bytes() -> bytes:
    data = bytearray(os.urandom(4096))
    data[:4] = b"\x13\x37\x00\x01"  # never a magic number by accident
    return bytes(data)


def decompression_bomb(tmp_path: Path) -> bytes:
    """A ~100 KB GeoTIFF that declares 200 000 x 200 000 x 3 uint16 (240 GB decoded) — no block written."""
    path = tmp_path / "bomb.tif"
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=200_000,
        height=200_000,
        count=3,
        dtype="uint16",
        crs="EPSG:4326",
        transform=rasterio.transform.from_origin(0, 10, 0.00005, 0.00005),
        tiled=True,
        blockxsize=4096,
        blockysize=4096,
        compress="deflate",
        sparse_ok=True,
    ):
        pass
    data = path.read_bytes()
    assert len(data) < 2_000_000
    return data


def vrt_renamed_tif(tmp_path: Path, canary: str) -> bytes:
    """A VRT document (uploaded as 'scene.tif') whose raw band reads a local file holding `canary`."""
    secret = tmp_path / "secret.txt"
    secret.write_text(canary * 64)
    return (
        f'<VRTDataset rasterXSize="64" rasterYSize="8"><SRS>EPSG:4326</SRS>'
        f"<GeoTransform>0,1,0,0,0,-1</GeoTransform>"
        f'<VRTRasterBand dataType="Byte" band="1" subClass="VRTRawRasterBand">'
        f'<SourceFilename relativeToVRT="0">{secret}</SourceFilename>'
        f"<ImageOffset>0</ImageOffset><PixelOffset>1</PixelOffset><LineOffset>64</LineOffset>"
        f"</VRTRasterBand></VRTDataset>"
    ).encode()


def npy_header_only(shape, descr: str) -> bytes:
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, {"descr": descr, "fortran_order": False, "shape": shape})
    return buffer.getvalue() + b"\x00" * 64


def npy_object_dtype() -> bytes:
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, {"descr": "|O", "fortran_order": False, "shape": (2, 2)})
    return buffer.getvalue() + b"\x80\x04\x95 pickle payload that must never be unpickled"


@dataclass
class Case:
    name: str
    payload: object  # bytes, or a callable(tmp_path) -> bytes
    expect: str  # substring of the error event message
    upload_type: str = "file"
    bands: list = None
    image: dict = None

    def data(self, tmp_path: Path) -> bytes:
        return self.payload(tmp_path) if callable(self.payload) else self.payload


NDARRAY_GEO = {"geotrans": [0.0, 1.0, 0.0, 0.0, 0.0, -1.0], "cs_code": "EPSG:4326"}
CASES = [
    Case("empty file", b"", "file 0 is empty (0 bytes)"),
    Case("random bytes", random_bytes(), "is not a GeoTIFF or JPEG 2000 file"),
    Case("truncated TIFF", RGB[:20_000], "the file could not be read"),
    Case("corrupt.tif", (DATA / "corrupt.tif").read_bytes(), "the file could not be read: file 0, band 1"),
    Case("VRT renamed .tif", lambda tmp: vrt_renamed_tif(tmp, CANARY), "is an XML/text document"),
    Case("VRT file", (DATA / "white-gemini-iv.vrt").read_bytes(), "is an XML/text document"),
    Case(
        "decompression bomb",
        decompression_bomb,
        "declared size is too large: 200000x200000x3",
        bands=[("b1", "UInt16", 0), ("b2", "UInt16", 1), ("b3", "UInt16", 2)],
    ),
    Case(
        "npy with a huge declared shape",
        npy_header_only((100_000, 100_000, 3), "<u2"),
        "declared size is too large: 100000x100000x3",
        upload_type="ndarray",
        image=NDARRAY_GEO,
    ),
    Case(
        "npy of object dtype",
        npy_object_dtype(),
        "object or structured dtype",
        upload_type="ndarray",
        image=NDARRAY_GEO,
    ),
    Case(
        "npy shorter than its header says",
        npy_bytes(np.zeros((50, 50), dtype="uint8"))[:-100],
        "but the file has",
        upload_type="ndarray",
        image=NDARRAY_GEO,
        bands=[("g", "Byte", 0)],
    ),
    Case("tif sent as an ndarray", RGB, "is not an .npy array", upload_type="ndarray", image=NDARRAY_GEO),
    Case("npy sent as a file", npy_bytes(np.zeros((5, 5), dtype="uint8")), "upload arrays with upload_ndarray"),
    Case("non-georeferenced JPEG", (DATA / "389225main_sw_1965_1024.jpg").read_bytes(), "is a JPEG image"),
    Case("non-georeferenced TIFF", (DATA / "float.tif").read_bytes(), "not georeferenced", bands=[("v", "Float64", 0)]),
    Case(
        "TIFF with a rotated transform and no CRS",
        (DATA / "rotated.tif").read_bytes(),
        "not georeferenced",
        bands=[("v", "Byte", 0)],
    ),
    Case(
        "more bands in the file than in the product",
        RGB,
        "file 0 has 3 band(s) but the product declares 2",
        bands=[("red", "Byte", 0), ("green", "Byte", 1)],
    ),
    Case(
        "product band missing from the file",
        RGB,
        "band 'nir' is band_index 3 of file 0, which has 3 band(s)",
        bands=[*RGB_BANDS, ("nir", "Byte", 3)],
    ),
    Case(
        "dtype not matching the product",
        (DATA / "RGBA.uint16.tif").read_bytes(),
        "band 'b' is declared Byte but file 0 band 0 is UInt16",
        bands=[("b", "Byte", 0), ("g", "Byte", 1), ("r", "Byte", 2), ("a", "Byte", 3)],
    ),
    Case(
        "ndarray dtype not matching the product",
        npy_bytes(np.zeros((8, 8), dtype="float32")),
        "band 'g' is declared Byte but file 0 band 0 is Float32",
        upload_type="ndarray",
        image=NDARRAY_GEO,
        bands=[("g", "Byte", 0)],
    ),
    Case(
        "cs_code disagreeing with the file",
        RGB,
        "EPSG:4326 does not agree with the coordinate system",
        image={"cs_code": "EPSG:4326"},
    ),
    Case("product without bands", RGB, "the product has no bands", bands=[]),
]
CANARY = f"TESSERA-CANARY-{uuid.uuid4().hex}"


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_hostile_input_fails_cleanly(case, upload_client, alice, ingest_worker, tmp_path):
    product = make_product(alice, f"hostile-{uuid.uuid4().hex[:8]}", RGB_BANDS if case.bands is None else case.bands)
    payload = case.data(tmp_path)
    options = {"upload_size": max(len(payload) - 128, 0)} if case.upload_type == "ndarray" else None
    upload_id = upload_client.upload(
        product_id=product.pk,
        name="hostile",
        payloads=[payload],
        upload_type=case.upload_type,
        image=case.image,
        options=options,
    )
    upload = wait_for_upload(upload_id)
    events = list(upload.events.order_by("id"))
    messages = [event.message for event in events]
    assert upload.status == ImageUploadStatus.FAILURE, messages
    types = [event.event_type for event in events]
    assert types[:2] == ["queue", "run"] and types[-2:] == ["error", "complete"], types
    error = events[-2]
    assert error.severity == "ERROR" and case.expect in error.message, error.message
    assert events[-1].message.startswith(("InvalidFileError: ", "ResourceLimitError: "))
    assert not re.search(r"/\w+/", error.message)  # no server path in what the user reads
    assert not Image.objects.exists()
    eventually(
        lambda: ImageUploadFile.objects.filter(upload=upload, staging_deleted_at__isnull=False).exists(),
        message="staging cleanup",
    )
    assert list(list_keys("staging")) == [] and list(list_keys("rasters")) == []
    # the client sees the error in upload.events
    document = upload_client.get(upload_id).json()
    assert any(case.expect in item["attributes"]["message"] for item in document["included"])
    if case.name == "VRT renamed .tif":
        assert_canary_never_leaked(tmp_path)


def assert_canary_never_leaked(tmp_path: Path) -> None:
    texts = [
        json.dumps(list(ImageUploadEvent.objects.values()), default=str),
        json.dumps(list(ImageUpload.objects.values()), default=str),
    ]
    assert not any(CANARY in text for text in texts)
    root = Path(imagery_storage().location)
    for path in root.rglob("*"):
        if path.is_file():
            assert CANARY.encode() not in path.read_bytes()


def test_the_worker_survives_hostile_input_and_ingests_the_next_upload(upload_client, product, ingest_worker):
    bad = upload_client.upload(product_id=product.pk, name="bad", payloads=[(DATA / "corrupt.tif").read_bytes()])
    good = upload_client.upload(product_id=product.pk, name="good", payloads=[RGB])
    assert wait_for_upload(bad).status == ImageUploadStatus.FAILURE
    assert wait_for_upload(good).status == ImageUploadStatus.SUCCESS
    assert list(Image.objects.values_list("name", flat=True)) == ["good"]


@pytest.mark.parametrize("child", ["tests.uploads.memory_hog", "tests.uploads.oom_killed"])
def test_a_parser_over_its_memory_limit_fails_the_upload(
    upload_client, product, ingest_worker, settings, monkeypatch, child
):
    """The child runs under RLIMIT_AS; whether it dies of MemoryError or is killed, the upload fails once."""
    from uploads import sandbox

    monkeypatch.setattr(sandbox, "CHILD_MODULE", child)
    settings.INGEST_CHILD_MEMORY = 512 * 1024 * 1024
    upload_id = upload_client.upload(product_id=product.pk, name="oom", payloads=[RGB])
    upload = wait_for_upload(upload_id)
    assert upload.status == ImageUploadStatus.FAILURE
    assert upload.attempts == 1
    error = upload.events.get(event_type="error")
    assert "within the ingest limits" in error.message and "memory limit 512 MiB" in error.message, error.message
    if child.endswith("oom_killed"):
        assert "killed (SIGKILL)" in error.message
    assert upload.events.get(event_type="complete").message.startswith("ResourceLimitError")


def test_a_parser_over_its_time_limit_fails_the_upload_with_a_timeout_event(
    upload_client, product, ingest_worker, settings
):
    settings.INGEST_CHILD_TIMEOUT = 0.05
    upload_id = upload_client.upload(product_id=product.pk, name="slow", payloads=[RGB])
    upload = wait_for_upload(upload_id)
    assert upload.status == ImageUploadStatus.FAILURE
    timeout = upload.events.get(event_type="timeout")
    assert timeout.severity == "ERROR" and "longer than" in timeout.message
    assert upload.events.get(event_type="complete").message.startswith("TimeoutError")
