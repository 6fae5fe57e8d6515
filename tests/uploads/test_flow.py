"""The whole upload flow with a real worker: API → resumable PUT → pending → dramatiq (Redis) → child → Image."""

from __future__ import annotations

import hashlib
import json
import threading
import time

import numpy as np
import pytest
import rasterio
from rio_cogeo.cogeo import cog_validate

from imagery.models import Image
from tests.uploads.helpers import DATA, eventually, make_product, npy_bytes, wait_for_upload
from uploads import storage
from uploads.choices import ImageUploadStatus
from uploads.models import ImageUpload, ImageUploadFile
from uploads.storage import imagery_storage

pytestmark = pytest.mark.django_db(transaction=True)

RGB = (DATA / "RGB.byte.tif").read_bytes()


def stored_path(href: str) -> str:
    return imagery_storage().path(storage.key_for_href(href))


def event_types(upload: ImageUpload) -> list[str]:
    return list(upload.events.order_by("id").values_list("event_type", flat=True))


def test_geotiff_upload_reaches_success_with_derived_and_user_attributes(upload_client, product, ingest_worker):
    image = {
        "cloud_fraction": 0.1,
        "tags": ["guide"],
        "extra_properties": {"reviewer": "joe"},
        "acquired": "2012-01-02",
    }
    upload_id = upload_client.upload(
        product_id=product.pk,
        name="scene1",
        payloads=[RGB],
        image=image,
        options={"overviews": [2, 4], "overview_resampler": "average"},
    )
    upload = wait_for_upload(upload_id)
    assert upload.status == ImageUploadStatus.SUCCESS, list(upload.events.values_list("message", flat=True))
    assert event_types(upload) == ["queue", "run", "usage", "complete"]
    complete = upload.events.get(event_type="complete")
    assert complete.severity == "INFO" and complete.component == "tessera-ingest"

    image = Image.objects.get(pk=f"{product.pk}:scene1")
    assert image.cs_code == "EPSG:32618"
    assert (image.x_pixels, image.y_pixels) == (791, 718)
    with rasterio.open(DATA / "RGB.byte.tif") as src:
        assert image.geotrans == pytest.approx(list(src.transform.to_gdal()))
    assert image.fill_fraction == pytest.approx(0.6746, abs=0.01)
    assert len(image.bits_per_pixel) == 3 and 0 < image.bits_per_pixel[0] < 8
    assert image.cloud_fraction == 0.1 and image.tags == ["guide"] and image.extra_properties == {"reviewer": "joe"}
    assert image.acquired.isoformat().startswith("2012-01-02")
    assert image.storage_state == "available"
    # footprint: the valid-data area of the scene (Bahamas, ~ -78.5..-75.5 W, 23.5..25.6 N), not its bounds
    lon, lat = image.geometry.centroid.coords
    assert -79 < lon < -75.5 and 23 < lat < 26
    assert 0.6 < image.geometry.area / image.geometry.envelope.area < 0.95

    (file_entry,) = image.files
    path = stored_path(file_entry["href"])
    content = open(path, "rb").read()
    assert file_entry["size_bytes"] == len(content) == image.size_bytes
    assert file_entry["hash"] == hashlib.md5(content).hexdigest()
    valid, errors, _ = cog_validate(path, quiet=True)
    assert valid, errors
    with rasterio.open(path) as cog:
        assert cog.overviews(1) == [2, 4]
        assert cog.count == 3 and cog.dtypes[0] == "uint8" and cog.nodata == 0
        with rasterio.open(DATA / "RGB.byte.tif") as src:
            assert np.array_equal(cog.read(), src.read())
    preview = stored_path(image.preview_file)
    assert open(preview, "rb").read(8) == b"\x89PNG\r\n\x1a\n"
    assert sorted(upload.result_keys) == sorted(
        [storage.key_for_href(file_entry["href"]), storage.key_for_href(image.preview_file)]
    )
    # staging is gone after ingest
    staged = eventually(
        lambda: ImageUploadFile.objects.filter(upload=upload, staging_deleted_at__isnull=False).first(),
        message="staging cleanup",
    )
    assert not imagery_storage().exists(staged.staging_key)
    # and the image is searchable through the API
    found = upload_client.client.put(
        f"/{upload_client.prefix}/images",
        {"filter": json.dumps([{"op": "eq", "name": "product_id", "val": product.pk}])},
        format="json",
    ).json()
    assert [item["id"] for item in found["data"]] == [image.pk]


def test_the_image_exists_whenever_success_is_visible(upload_client, product, ingest_worker):
    """What the client does on its first `success` poll (protocol §5.3 step 5), raced against the worker."""
    seen: list[tuple[str, int]] = []
    upload_id_box: list[str] = []
    stop = threading.Event()

    def poll():
        from django.db import connection

        try:
            while not stop.is_set():
                if upload_id_box:
                    status = upload_client.get(upload_id_box[0], include="").json()["data"]["attributes"]["status"]
                    if status == "success":
                        image_id = f"{product.pk}:raced"
                        seen.append(
                            (status, upload_client.client.get(f"/{upload_client.prefix}/images/{image_id}").status_code)
                        )
                        return
                time.sleep(0.005)
        finally:
            connection.close()

    poller = threading.Thread(target=poll)
    poller.start()
    try:
        upload_id_box.append(upload_client.upload(product_id=product.pk, name="raced", payloads=[RGB]))
        wait_for_upload(upload_id_box[0])
        poller.join(timeout=10)
    finally:
        stop.set()
        poller.join()
    assert seen == [("success", 200)]


@pytest.mark.parametrize("layout", ["2d", "rows-cols-bands"])
def test_ndarray_upload_with_overviews(upload_client, alice, ingest_worker, layout):
    if layout == "2d":
        product = make_product(alice, "nd2", [("elevation", "Float32", 0)])
        array = np.linspace(0, 1000, 120 * 100, dtype="float32").reshape(120, 100)
        bands = 1
    else:
        product = make_product(alice, "nd3", [("b1", "UInt16", 0), ("b2", "UInt16", 1), ("b3", "UInt16", 2)])
        # what the client sends for a (bands, rows, cols) array: np.moveaxis(a, 0, -1)
        array = np.moveaxis(np.arange(3 * 120 * 100, dtype="uint16").reshape(3, 120, 100), 0, -1)
        bands = 3
    payload = npy_bytes(array)
    image = {"geotrans": [500000.0, 30.0, 0.0, 4000000.0, 0.0, -30.0], "cs_code": "EPSG:32615"}
    upload_id = upload_client.upload(
        product_id=product.pk,
        name="arr",
        payloads=[payload],
        upload_type="ndarray",
        image=image,
        options={"upload_size": array.nbytes, "overviews": [2, 4], "overview_resampler": "average"},
    )
    upload = wait_for_upload(upload_id)
    assert upload.status == ImageUploadStatus.SUCCESS, list(upload.events.values_list("message", flat=True))
    image = Image.objects.get(pk=f"{product.pk}:arr")
    assert (image.x_pixels, image.y_pixels) == (100, 120)
    assert image.cs_code == "EPSG:32615"
    assert image.geotrans == [500000.0, 30.0, 0.0, 4000000.0, 0.0, -30.0]
    with rasterio.open(stored_path(image.files[0]["href"])) as cog:
        assert cog.count == bands and cog.overviews(1) == [2, 4]
        data = cog.read()
    expected = array[np.newaxis] if layout == "2d" else np.moveaxis(array, -1, 0)
    assert np.array_equal(data, expected)


def test_multi_file_image_one_band_per_file(upload_client, alice, ingest_worker, tmp_path):
    product = make_product(
        alice, "multifile", [("red", "Byte", 0), ("green", "Byte", 0), ("blue", "Byte", 0)], file_indexes=[0, 1, 2]
    )
    payloads = []
    with rasterio.open(DATA / "rgb-byte-tenth.tif") as src:
        profile = {**src.profile, "count": 1}
        for band in range(3):
            path = tmp_path / f"band{band}.tif"
            with rasterio.open(path, "w", **profile) as dst:
                dst.write(src.read(band + 1), 1)
            payloads.append(path.read_bytes())
    upload_id = upload_client.upload(product_id=product.pk, name="split", payloads=payloads)
    upload = wait_for_upload(upload_id)
    assert upload.status == ImageUploadStatus.SUCCESS, list(upload.events.values_list("message", flat=True))
    image = Image.objects.get(pk=f"{product.pk}:split")
    assert len(image.files) == 3
    assert image.cs_code is None and "UTM Zone 18" in image.projection  # a CRS without an EPSG code
    with rasterio.open(DATA / "rgb-byte-tenth.tif") as src:
        for band, entry in enumerate(image.files):
            with rasterio.open(stored_path(entry["href"])) as cog:
                assert np.array_equal(cog.read(1), src.read(band + 1))


def test_jpeg2000_upload(upload_client, product, ingest_worker, tmp_path):
    path = tmp_path / "scene.jp2"
    with rasterio.open(DATA / "rgb-byte-tenth.tif") as src:
        with rasterio.open(
            path,
            "w",
            driver="JP2OpenJPEG",
            width=src.width,
            height=src.height,
            count=3,
            dtype="uint8",
            crs=src.crs,
            transform=src.transform,
        ) as dst:
            dst.write(src.read())
    upload_id = upload_client.upload(product_id=product.pk, name="jp2", payloads=[path.read_bytes()])
    upload = wait_for_upload(upload_id)
    assert upload.status == ImageUploadStatus.SUCCESS, list(upload.events.values_list("message", flat=True))
    assert Image.objects.get(pk=f"{product.pk}:jp2").x_pixels == 79


def test_overwrite_replaces_data_and_recomputed_attributes(upload_client, product, ingest_worker):
    first = upload_client.upload(product_id=product.pk, name="again", payloads=[RGB], image={"cloud_fraction": 0.5})
    assert wait_for_upload(first).status == ImageUploadStatus.SUCCESS
    old = Image.objects.get(pk=f"{product.pk}:again")
    old_keys = [storage.key_for_href(old.files[0]["href"]), storage.key_for_href(old.preview_file)]
    created = old.created

    second = upload_client.upload(
        product_id=product.pk, name="again", payloads=[(DATA / "rgb-byte-tenth.tif").read_bytes()]
    )
    assert wait_for_upload(second).status == ImageUploadStatus.SUCCESS
    new = Image.objects.get(pk=f"{product.pk}:again")
    assert (new.x_pixels, new.y_pixels) == (79, 71)
    assert new.cloud_fraction is None  # not carried over from the replaced image
    assert new.created == created and new.owners == old.owners
    assert new.files[0]["href"] != old.files[0]["href"]
    eventually(lambda: not any(imagery_storage().exists(key) for key in old_keys), message="old objects deleted")
    assert ImageUpload.objects.get(pk=first).result_keys == []
    from uploads.orphans import find_orphans

    assert find_orphans() == []


def test_user_geometry_overrides_the_derived_footprint(upload_client, product, ingest_worker):
    polygon = {"type": "Polygon", "coordinates": [[[-78, 24], [-77, 24], [-77, 25], [-78, 25], [-78, 24]]]}
    upload_id = upload_client.upload(product_id=product.pk, name="geom", payloads=[RGB], image={"geometry": polygon})
    assert wait_for_upload(upload_id).status == ImageUploadStatus.SUCCESS
    image = Image.objects.get(pk=f"{product.pk}:geom")
    assert json.loads(image.geometry.geojson)["coordinates"] == polygon["coordinates"]


def test_remote_images_need_no_upload(upload_client, product):
    """storage_state=remote images are plain POST /images documents (protocol §2.1); uploads don't touch them."""
    body = {
        "data": {
            "type": "image",
            "id": f"{product.pk}:remote1",
            "attributes": {
                "name": "remote1",
                "product_id": product.pk,
                "acquired": "2021-05-01T00:00:00Z",
                "geometry": {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 1], [0, 0]]]},
                "storage_state": "remote",
                "files": [{"href": "https://example.com/a.tif", "provider_id": "x"}],
            },
        }
    }
    response = upload_client.client.post(f"/{upload_client.prefix}/images?include=product", body, format="json")
    assert response.status_code == 201, response.content
    assert Image.objects.get(pk=f"{product.pk}:remote1").storage_state == "remote"
    assert not ImageUpload.objects.exists()
