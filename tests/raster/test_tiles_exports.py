"""XYZ tiles (rio-tiler on morecantile's Web Mercator grid) and plain-HTTP GeoTIFF/PNG/JPEG downloads."""

from __future__ import annotations

import io

import morecantile
import numpy as np
import pytest
import rasterio
from PIL import Image as PILImage

from tests.raster.helpers import RGB, make_image, rgb_source

pytestmark = pytest.mark.django_db

TMS = morecantile.tms.get("WebMercatorQuad")
CENTER = (-77.6, 24.6)  # inside the RGB scene (Bahamas)


def tile_of(zoom: int, lon: float = CENTER[0], lat: float = CENTER[1]):
    tile = TMS.tile(lon, lat, zoom)
    return tile.z, tile.x, tile.y


def picture(response) -> np.ndarray:
    return np.asarray(PILImage.open(io.BytesIO(response.content)))


def test_image_tile_png_with_transparency_and_cache_headers(alice_client, rgb_image):
    z, x, y = tile_of(9)
    response = alice_client.get(f"/raster/v2/tiles/{z}/{x}/{y}.png", {"image": rgb_image.pk})
    assert response.status_code == 200, response.content[:300]
    assert response["Content-Type"] == "image/png"
    assert response["Cache-Control"].startswith("private, max-age=")
    assert "Authorization" in response["Vary"] and response["ETag"].startswith('"')
    pixels = picture(response)
    assert pixels.shape == (256, 256, 4)
    assert pixels[..., 3].max() == 255  # the scene has data here
    again = alice_client.get(
        f"/raster/v2/tiles/{z}/{x}/{y}.png", {"image": rgb_image.pk}, HTTP_IF_NONE_MATCH=response["ETag"]
    )
    assert again.status_code == 304 and again["ETag"] == response["ETag"]
    other = alice_client.get(f"/raster/v2/tiles/{z}/{x}/{y}.png", {"image": rgb_image.pk, "bands": "red"})
    assert other["ETag"] != response["ETag"]


def test_tile_pixels_match_the_source_at_native_zoom(alice_client, rgb_image):
    """A zoom-9 tile (≈300 m pixels) of the display-scaled (0..255 → 0..255) scene looks like the scene."""
    z, x, y = tile_of(9)
    pixels = picture(alice_client.get(f"/raster/v2/tiles/{z}/{x}/{y}.png", {"image": rgb_image.pk}))
    valid = pixels[..., 3] == 255
    data, _, _ = rgb_source()
    assert valid.mean() > 0.2
    # the tile's colours are the scene's colours (same value distribution, nearest resampling)
    source_values = set(np.unique(data[0]).tolist())  # 0 too: a pixel is shown when any band is valid
    assert set(np.unique(pixels[..., 0][valid]).tolist()) <= source_values


def test_tile_outside_the_images_is_transparent(alice_client, rgb_image):
    z, x, y = tile_of(9, 10.0, 45.0)
    pixels = picture(alice_client.get(f"/raster/v2/tiles/{z}/{x}/{y}.png", {"image": rgb_image.pk}))
    assert pixels[..., 3].max() == 0


def test_product_mosaic_tile_newest_on_top_and_filters(alice, alice_client, rgb_product, rgb_image, tmp_path):
    from imagery.models import Image

    Image.objects.filter(pk=rgb_image.pk).update(cloud_fraction=0.1)
    data, transform, crs = rgb_source()
    make_image(
        alice,
        rgb_product,
        "newer",
        np.where(data > 0, 255, 0).astype(np.uint8),
        crs=crs,
        transform=transform,
        tmp_path=tmp_path,
        acquired="2020-06-01T00:00:00Z",
        cloud_fraction=0.9,
    )
    z, x, y = tile_of(9)
    url = f"/raster/v2/tiles/{z}/{x}/{y}.png"
    newest = picture(alice_client.get(url, {"product": rgb_product.pk, "bands": "red"}))
    assert newest.shape == (256, 256, 2)  # grey + alpha
    assert (newest[..., 0][newest[..., 1] == 255] == 255).all()
    filtered = picture(alice_client.get(url, {"product": rgb_product.pk, "bands": "red", "cloud_fraction__lte": "0.5"}))
    assert (filtered[..., 0][filtered[..., 1] == 255] < 255).any()
    older = picture(
        alice_client.get(url, {"product": rgb_product.pk, "bands": "red", "acquired_before": "2020-03-01T00:00:00Z"})
    )
    assert np.array_equal(older, filtered)
    bad = alice_client.get(url, {"product": rgb_product.pk, "acquired_before": "yesterday"})
    assert bad.status_code == 400


def test_single_band_colormap_and_derived_band_tiles(alice, alice_client, rgb_product, rgb_image):
    from products.services import band_create

    band_create(
        user=alice,
        attributes={
            "product_id": rgb_product.pk,
            "name": "gr",
            "type": "generic",
            "data_type": "UInt16",
            "data_range": [0, 65535],
            "physical_range": [-1, 1],
            "display_range": [0, 65535],
            "derived_params": {"function": "ndi_uint16", "bands": ["green", "red"]},
        },
    )
    z, x, y = tile_of(9)
    url = f"/raster/v2/tiles/{z}/{x}/{y}.png"
    grey = alice_client.get(url, {"image": rgb_image.pk, "bands": "gr"})
    assert grey.status_code == 200, grey.content[:300]
    coloured = picture(alice_client.get(url, {"image": rgb_image.pk, "bands": "gr", "colormap": "viridis"}))
    assert coloured.shape == (256, 256, 4)
    valid = coloured[..., 3] == 255
    assert valid.any() and not np.array_equal(coloured[..., 0][valid], coloured[..., 1][valid])
    jpeg = alice_client.get(f"/raster/v2/tiles/{z}/{x}/{y}.jpg", {"image": rgb_image.pk})
    assert jpeg["Content-Type"] == "image/jpeg" and jpeg.content[:3] == b"\xff\xd8\xff"


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/raster/v2/tiles/30/0/0.png", {"image": "x"}),
        ("/raster/v2/tiles/3/9/0.png", {"image": "x"}),
        ("/raster/v2/tiles/3/1/1.gif", {"image": "x"}),
        ("/raster/v2/tiles/3/1/1.png", {}),
        ("/raster/v2/tiles/3/1/1.png", {"image": "x", "colormap": "rainbowz"}),
        ("/raster/v2/tiles/3/1/1.png", {"image": "x", "resampling": "sinc"}),
    ],
)
def test_bad_tile_requests_are_400(alice_client, path, params):
    response = alice_client.get(path, params)
    assert response.status_code == 400 and response.json()["errors"][0]["status"] == "400"


def test_tiles_of_hidden_images_are_404_and_need_authentication(auth_client, bob, api_client, rgb_image, rgb_product):
    z, x, y = tile_of(9)
    url = f"/raster/v2/tiles/{z}/{x}/{y}.png"
    assert auth_client(bob).get(url, {"image": rgb_image.pk}).status_code == 404
    assert auth_client(bob).get(url, {"product": rgb_product.pk}).status_code == 404
    assert api_client.get(url, {"image": rgb_image.pk}).status_code == 401


def test_tiles_work_with_the_web_ui_session(client, alice, rgb_image):
    client.force_login(alice)
    z, x, y = tile_of(9)
    assert client.get(f"/raster/v2/tiles/{z}/{x}/{y}.png", {"image": rgb_image.pk}).status_code == 200


# ---- downloads ---------------------------------------------------------------------------------------------
def test_geotiff_download_has_georeferencing_pixels_and_a_filename(alice_client, rgb_image, tmp_path):
    response = alice_client.get(f"/raster/v2/images/{rgb_image.pk}.tif", {"bands": "red,green,blue"})
    assert response.status_code == 200, response.content[:300]
    assert response["Content-Type"] == "image/tiff"
    assert response["Content-Disposition"] == 'attachment; filename="rasterorg_rgb_scene-red-green-blue.tif"'
    path = tmp_path / "out.tif"
    path.write_bytes(response.content)
    with rasterio.open(path) as got, rasterio.open(RGB) as src:
        assert got.crs == src.crs and got.count == 3 and got.descriptions == ("red", "green", "blue")
        assert got.transform.c == pytest.approx(src.transform.c) and got.transform.f == pytest.approx(src.transform.f)
        data = got.read()
        expected = src.read()
        assert data.shape == expected.shape and np.array_equal(data, expected)
        assert np.array_equal(got.dataset_mask() == 0, (expected == 0).all(axis=0))


def test_png_and_jpeg_downloads_fit_the_default_size(alice_client, rgb_image, settings):
    settings.RASTER_EXPORT_DEFAULT_SIZE = 200
    png = alice_client.get(f"/raster/v2/images/{rgb_image.pk}.png")
    assert png.status_code == 200 and png["Content-Disposition"].endswith('.png"')
    pixels = picture(png)
    assert pixels.shape == (182, 200, 4) and pixels[..., 3].min() == 0 and pixels[..., 3].max() == 255
    jpeg = alice_client.get(f"/raster/v2/images/{rgb_image.pk}.jpg", {"width": "100", "height": "50"})
    assert jpeg.status_code == 200 and picture(jpeg).shape == (50, 100, 3)
    bad = alice_client.get(f"/raster/v2/images/{rgb_image.pk}.png", {"data_type": "UInt16"})
    assert bad.status_code == 400


def test_export_with_bbox_crs_and_resolution(alice_client, rgb_image, tmp_path):
    response = alice_client.get(
        f"/raster/v2/images/{rgb_image.pk}.tif",
        {"bands": "red", "bbox": "-78,24,-77,25", "crs": "EPSG:4326", "resolution": "0.01", "resampling": "bilinear"},
    )
    assert response.status_code == 200, response.content[:300]
    path = tmp_path / "bbox.tif"
    path.write_bytes(response.content)
    with rasterio.open(path) as got:
        assert got.crs.to_epsg() == 4326 and (got.width, got.height) == (100, 100)
        assert got.transform.a == pytest.approx(0.01)


def test_mosaic_download_of_a_search(alice, alice_client, rgb_product, rgb_image, tmp_path):
    data, transform, crs = rgb_source()
    make_image(
        alice,
        rgb_product,
        "newer",
        np.where(data > 0, 250, 0).astype(np.uint8),
        crs=crs,
        transform=transform,
        tmp_path=tmp_path,
        acquired="2020-06-01T00:00:00Z",
    )
    params = {
        "product": rgb_product.pk,
        "bbox": "-78,24,-77,25",
        "bands": "red",
        "resolution": "1000",
        "crs": "EPSG:32618",
    }
    response = alice_client.get("/raster/v2/mosaic.tif", params)
    assert response.status_code == 200, response.content[:300]
    path = tmp_path / "mosaic.tif"
    path.write_bytes(response.content)
    with rasterio.open(path) as got:
        band = got.read(1)
        valid = got.dataset_mask() > 0
        assert valid.any() and (band[valid] == 250).all()  # the newest image is on top
    older = alice_client.get("/raster/v2/mosaic.tif", {**params, "acquired_before": "2020-03-01T00:00:00Z"})
    assert older.status_code == 200
    assert alice_client.get("/raster/v2/mosaic.tif", {"product": rgb_product.pk}).status_code == 400
    nothing = alice_client.get("/raster/v2/mosaic.tif", {**params, "bbox": "10,40,11,41"})
    assert nothing.status_code == 404


def test_export_limits_and_access(auth_client, alice_client, bob, rgb_image, settings):
    assert auth_client(bob).get(f"/raster/v2/images/{rgb_image.pk}.tif").status_code == 404
    settings.RASTER_MAX_PIXELS = 1000
    response = alice_client.get(f"/raster/v2/images/{rgb_image.pk}.tif")
    assert response.status_code == 400 and "1000" in response.json()["errors"][0]["detail"]
    assert alice_client.get(f"/raster/v2/images/{rgb_image.pk}.tif", {"bbox": "1,2,3"}).status_code == 400
    assert alice_client.get(f"/raster/v2/images/{rgb_image.pk}.tif", {"crs": "file:///etc/passwd"}).status_code == 400
