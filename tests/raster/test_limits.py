"""Bad input and limits: JSON errors with statuses the client maps (protocol §2.3), never a 500, and no
allocation beyond the pixel budget."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio

from tests.raster.helpers import DATA, npz, store_file
from tests.raster.test_npz import native_body

pytestmark = pytest.mark.django_db


def error(response, status: int) -> str:
    assert response.status_code == status, getattr(response, "content", b"")[:500]
    document = response.json()
    assert document["errors"][0]["status"] == str(status)
    return document["errors"][0]["detail"]


@pytest.mark.parametrize(
    ("changes", "needle"),
    [
        ({"bands": ["red", "infrared"]}, "infrared"),
        ({"bands": []}, "bands"),
        ({"ids": []}, "ids"),
        ({"srs": "EPSG:999999"}, "srs"),
        ({"srs": "/etc/passwd"}, "srs"),
        ({"srs": "+proj=utm +init=epsg:4326"}, "srs"),
        ({"outputBoundsSRS": "not a crs"}, "outputBoundsSRS"),
        ({"outputBounds": [500, 0, 100, 10]}, "wrong order"),
        ({"outputBounds": [0, 0, 1]}, "outputBounds"),
        ({"resolution": -5}, "resolution"),
        ({"resolution": "fine"}, "resolution"),
        ({"outsize": [10, 10]}, "either resolution or outsize"),
        ({"resampleAlg": "sinc"}, "resampleAlg"),
        ({"ot": "Int8"}, "ot"),
        ({"scales": [[0, 1, 2]] * 3}, "scales"),
        ({"scales": [None]}, "scales"),
        ({"of": "npz"}, "blosc"),
        ({"output_window": [0, 0, 5, 5]}, "output_window"),
        ({"processing_level": "surface"}, "processing_level"),
        ({"mask_nodata": "yes"}, "mask_nodata"),
        ({"shape": '{"type": "Polygon"}'}, "shape"),
        ({"shape": "POLYGON ((0 0, 1 1"}, "shape"),
        ({"secret": 1}, "secret"),
    ],
)
def test_bad_requests_are_400(alice_client, rgb_image, changes, needle):
    detail = error(npz(alice_client, native_body(rgb_image, **changes)), 400)
    assert needle.lower() in detail.lower()


def test_malformed_json_is_400(alice_client):
    response = alice_client.post("/raster/v2/npz", data=b"{not json", content_type="application/json")
    error(response, 400)


def test_output_beyond_the_pixel_budget_is_refused_before_reading(alice_client, rgb_image, settings, monkeypatch):
    from raster import services

    def fail(*args, **kwargs):
        raise AssertionError("no file may be opened for a refused request")

    monkeypatch.setattr(services, "locate", fail)
    settings.RASTER_MAX_PIXELS = 1_000_000
    detail = error(npz(alice_client, native_body(rgb_image, resolution=100.0)), 400)
    assert "1000000" in detail
    # a huge area at a tiny resolution would need terabytes: still a plain 400
    detail = error(npz(alice_client, native_body(rgb_image, resolution=0.001)), 400)
    assert "limited" in detail or "more than" in detail


def test_derived_band_sources_count_in_the_budget(alice_client, rgb_image, settings, rgb_product, alice):
    from products.services import band_create

    band_create(
        user=alice,
        attributes={
            "product_id": rgb_product.pk,
            "name": "gr",
            "type": "generic",
            "data_type": "UInt16",
            "derived_params": {"function": "ndi_uint16", "bands": ["green", "red"]},
        },
    )
    settings.RASTER_MAX_PIXELS = 791 * 718 * 2
    error(npz(alice_client, native_body(rgb_image, bands=["gr"], resolution=None, outsize=[791, 718])), 400)
    settings.RASTER_MAX_PIXELS = 791 * 718 * 3
    assert (
        npz(
            alice_client, native_body(rgb_image, bands=["gr"], resolution=None, outsize=[791, 718], ot="UInt16")
        ).status_code
        == 200
    )


def test_unknown_derived_function_and_missing_source_band(alice_client, rgb_image, rgb_product, alice):
    from products.services import band_create

    band_create(
        user=alice,
        attributes={
            "product_id": rgb_product.pk,
            "name": "weird",
            "type": "generic",
            "data_type": "UInt16",
            "derived_params": {"function": "magic", "bands": ["red"]},
        },
    )
    assert "magic" in error(npz(alice_client, native_body(rgb_image, bands=["weird"])), 400)
    # derived:ndvi needs nir, which an RGB product lacks
    assert "nir" in error(npz(alice_client, native_body(rgb_image, bands=["derived:ndvi"])), 400)


def test_unreadable_files_are_422(alice_client, rgb_image, tmp_path):
    from imagery.models import Image

    corrupt = tmp_path / "corrupt.tif"
    corrupt.write_bytes((DATA / "corrupt.tif").read_bytes())
    with rasterio.open(corrupt) as src:
        transform, crs, width, height = src.transform, src.crs.to_string(), src.width, src.height
    Image.objects.filter(pk=rgb_image.pk).update(
        files=[store_file(corrupt)], geotrans=list(transform.to_gdal()), cs_code=crs, x_pixels=width, y_pixels=height
    )
    body = native_body(Image.objects.get(pk=rgb_image.pk), bands=["red"])
    detail = error(npz(alice_client, body), 422)
    assert "cannot be read" in detail and str(tmp_path) not in detail

    Image.objects.filter(pk=rgb_image.pk).update(files=[{"href": "storage://imagery/rasters/missing.tif"}])
    assert "no such file" in error(npz(alice_client, body), 422).lower()
    for href in ("https://example.com/x.tif", "s3://other-bucket/x.tif", "storage://imagery/../../etc/passwd"):
        Image.objects.filter(pk=rgb_image.pk).update(files=[{"href": href}])
        assert "only ingested images" in error(npz(alice_client, body), 422)
    Image.objects.filter(pk=rgb_image.pk).update(files=[])
    error(npz(alice_client, body), 422)


def test_images_without_georeferencing_are_422(alice_client, rgb_image):
    from imagery.models import Image

    Image.objects.filter(pk=rgb_image.pk).update(geotrans=None)
    error(npz(alice_client, native_body(rgb_image)), 422)


def test_too_many_images_or_bands(alice_client, rgb_image, settings):
    settings.RASTER_MAX_IMAGES = 2
    error(npz(alice_client, native_body(rgb_image, ids=[rgb_image.pk] * 3)), 400)
    settings.RASTER_MAX_BANDS = 2
    error(npz(alice_client, native_body(rgb_image)), 400)


def test_repeated_ids_mosaic_the_same_image(alice_client, rgb_image):
    from tests.raster.helpers import read_npz

    _, once = read_npz(npz(alice_client, native_body(rgb_image)))
    _, twice = read_npz(npz(alice_client, native_body(rgb_image, ids=[rgb_image.pk, rgb_image.pk])))
    assert np.array_equal(once.data, twice.data) and np.array_equal(once.mask, twice.mask)
