"""raster.sources: which hrefs are opened, and how (local paths, GDAL /vsis3/ with the storage's settings)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from raster import sources


class FakeS3Storage:
    """The attributes django-storages' S3Storage exposes (no network: only the path and env are checked)."""

    bucket_name = "tessera-pixels"
    access_key = "AKIAEXAMPLE"
    secret_key = "secret-example"
    security_token = None
    region_name = "eu-central-1"
    endpoint_url = "http://127.0.0.1:9000"
    addressing_style = "path"


def image_with(*hrefs):
    return SimpleNamespace(pk="org:p:i", files=[{"href": href} for href in hrefs])


def test_s3_hrefs_become_vsis3_paths_with_the_storage_credentials(monkeypatch):
    monkeypatch.setattr(sources, "storages", {"imagery": FakeS3Storage()})
    monkeypatch.setattr("uploads.storage.imagery_storage", lambda: FakeS3Storage())
    location = sources.locate(image_with("s3://tessera-pixels/rasters/ns/u/a1/file-0.tif"), 0)
    assert location.path == "/vsis3/tessera-pixels/rasters/ns/u/a1/file-0.tif"
    assert location.env["AWS_ACCESS_KEY_ID"] == "AKIAEXAMPLE"
    assert location.env["AWS_SECRET_ACCESS_KEY"] == "secret-example"
    assert location.env["AWS_REGION"] == "eu-central-1"
    assert location.env["AWS_S3_ENDPOINT"] == "127.0.0.1:9000"
    assert location.env["AWS_HTTPS"] == "NO" and location.env["AWS_VIRTUAL_HOSTING"] == "FALSE"
    assert location.env["GDAL_DISABLE_READDIR_ON_OPEN"] == "EMPTY_DIR"
    with pytest.raises(sources.SourceUnavailable, match="only ingested images"):
        sources.locate(image_with("s3://another-bucket/rasters/x.tif"), 0)


def test_local_hrefs_resolve_inside_the_storage_only(settings, tmp_path):
    location = sources.locate(image_with("storage://imagery/rasters/ns/u/a1/file-0.tif"), 0)
    assert location.path.endswith("/imagery/rasters/ns/u/a1/file-0.tif") and location.env == {}
    for href in (
        "storage://imagery/../secret.tif",
        "storage://imagery//etc/passwd",
        "https://example.com/x.tif",
        "gs://bucket/x.tif",
        "/etc/passwd",
        "",
    ):
        with pytest.raises(sources.SourceUnavailable):
            sources.locate(image_with(href), 0)
    with pytest.raises(sources.SourceUnavailable, match="no file 1"):
        sources.locate(image_with("storage://imagery/rasters/a.tif"), 1)


def test_only_the_gtiff_driver_opens_stored_files(tmp_path):
    vrt = tmp_path / "file.tif"
    vrt.write_text('<VRTDataset rasterXSize="1" rasterYSize="1"></VRTDataset>')
    with pytest.raises(sources.SourceUnavailable), sources.open_dataset(sources.SourceLocation(str(vrt), {})):
        pass
