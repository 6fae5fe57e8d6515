"""raster.sources: which hrefs are opened, and how (local paths, GDAL /vsis3/ with the storage's settings)."""

from __future__ import annotations

from pathlib import Path
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


# ---- open datasets kept per thread -----------------------------------------------------------------------
def _copy_rgb(tmp_path, name="scene.tif"):
    import shutil

    target = tmp_path / name
    import rasterio
    from rasterio.enums import Resampling

    shutil.copy(Path(__file__).resolve().parent.parent / "data" / "RGB.byte.tif", target)
    with rasterio.open(target, "r+") as dataset:
        dataset.build_overviews([2], Resampling.nearest)
    return sources.SourceLocation(str(target), {})


def _first_pixels(location):
    with sources.open_dataset(location) as dataset:
        return dataset, dataset.read(1, window=((0, 8), (300, 308)))


def test_a_second_read_of_a_file_reuses_its_open_dataset(tmp_path, settings):
    settings.RASTER_DATASET_CACHE_SIZE = 4
    location = _copy_rgb(tmp_path)
    first, pixels = _first_pixels(location)
    second, again = _first_pixels(location)
    assert second is first and not first.closed
    assert (pixels == again).all()
    with sources.open_dataset(location, overview_level=0) as overview:
        assert overview is not first and overview.width < first.width  # an overview is its own dataset
    sources.close_cached_datasets()
    assert first.closed and overview.closed


def test_a_replaced_file_is_reopened_and_a_deleted_one_is_missing(tmp_path, settings):
    import numpy as np
    import rasterio

    settings.RASTER_DATASET_CACHE_SIZE = 4
    location = _copy_rgb(tmp_path)
    first, pixels = _first_pixels(location)
    with rasterio.open(location.path) as src:
        profile, data = src.profile, src.read()
    replacement = tmp_path / "replacement.tif"
    with rasterio.open(replacement, "w", **{**profile, "compress": "deflate"}) as dst:
        dst.write(np.full_like(data, 7))
    replacement.replace(location.path)
    second, new_pixels = _first_pixels(location)
    assert second is not first and (new_pixels == 7).all() and not (pixels == 7).all()
    Path(location.path).unlink()
    with pytest.raises(sources.SourceUnavailable, match="missing"), sources.open_dataset(location):
        pass


def test_the_cache_is_bounded_expires_and_can_be_switched_off(tmp_path, settings, monkeypatch):
    settings.RASTER_DATASET_CACHE_SIZE = 2
    locations = [_copy_rgb(tmp_path, f"scene-{i}.tif") for i in range(3)]
    opened = [_first_pixels(location)[0] for location in locations]
    assert opened[0].closed and not opened[1].closed and not opened[2].closed  # least recently used went
    assert _first_pixels(locations[2])[0] is opened[2]

    settings.RASTER_DATASET_CACHE_SECONDS = 0
    monkeypatch.setattr(sources.time, "monotonic", lambda: 10**9)  # every cached handle is now too old
    assert _first_pixels(locations[2])[0] is not opened[2] and opened[2].closed

    sources.close_cached_datasets()
    settings.RASTER_DATASET_CACHE_SIZE = 0
    first, _ = _first_pixels(locations[1])
    second, _ = _first_pixels(locations[1])
    assert first is not second and first.closed and second.closed


def test_a_gdal_error_drops_the_handle_but_the_callers_own_error_keeps_it(tmp_path, settings):
    from rasterio.errors import RasterioIOError

    settings.RASTER_DATASET_CACHE_SIZE = 4
    location = _copy_rgb(tmp_path)
    with pytest.raises(ValueError), sources.open_dataset(location) as dataset:
        raise ValueError("a budget check of the caller")
    assert not dataset.closed and _first_pixels(location)[0] is dataset
    with pytest.raises(sources.SourceUnavailable, match="cannot be read"), sources.open_dataset(location) as same:
        raise RasterioIOError("read failed in the middle of a block")
    assert same is dataset and dataset.closed
    assert _first_pixels(location)[0] is not dataset
