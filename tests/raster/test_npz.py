"""POST /raster/v2/npz: the wire (§9), native reads, warps, masks, mosaics, access and limits."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
from rasterio.transform import Affine

from tests.raster.helpers import RGB, make_image, npz, read_npz, rgb_source

pytestmark = pytest.mark.django_db


def native_body(image, **changes):
    """What Image.ndarray("red green blue") sends for the image's own grid (client geocontext defaults)."""
    gt = image.geotrans
    bounds = [gt[0], gt[3] + gt[5] * image.y_pixels, gt[0] + gt[1] * image.x_pixels, gt[3]]
    body = {
        "ids": [image.pk],
        "bands": ["red", "green", "blue"],
        "scales": None,
        "ot": "Byte",
        "srs": image.cs_code,
        "resolution": gt[1],
        "shape": None,
        "outputBounds": bounds,
        "outputBoundsSRS": image.cs_code,
        "outsize": None,
        "targetAlignedPixels": False,
        "resampleAlg": "near",
        "processing_level": None,
        "output_window": None,
        "of": "blosc",
        "mask_nodata": True,
        "mask_alpha": False,
        "drop_alpha": False,
    }
    body.update(changes)
    return body


def test_native_read_equals_rasterio(alice_client, rgb_image):
    response = npz(alice_client, native_body(rgb_image))
    assert response.status_code == 200, response.content if hasattr(response, "content") else ""
    metadata, array = read_npz(response)
    with rasterio.open(RGB) as src:
        expected = src.read()
        # One resolution for both axes (the client sends a float): square pixels over the image's bounds.
        x0, xres, _, y0, _, _ = src.transform.to_gdal()
        assert metadata["geoTransform"] == pytest.approx([x0, xres, 0, y0, 0, -xres])
        assert rasterio.crs.CRS.from_wkt(metadata["coordinateSystem"]["wkt"]) == src.crs
    assert array.dtype == np.uint8 and array.shape == expected.shape
    assert np.array_equal(array.mask, expected == 0)
    assert np.array_equal(array.data[~array.mask], expected[~array.mask])


def test_stream_layout_and_raster_info(alice_client, rgb_image):
    """512 × 512 chunks of all bands in row-major order (Image.download() zips them with block windows)."""
    import io
    import json
    import struct

    response = npz(alice_client, native_body(rgb_image, resolution=None, outsize=[791, 718]))
    raw = io.BytesIO(b"".join(response.streaming_content))
    metadata = json.loads(raw.readline())
    assert metadata["id"] == rgb_image.pk and metadata["size"] == [791, 718]
    assert metadata["coordinateSystem"]["epsg"] == 32618 and "+proj=utm" in metadata["coordinateSystem"]["proj4"]
    assert [b["description"]["name"] for b in metadata["bands"]] == ["red", "green", "blue"]
    assert metadata["metadata"]["PROJCS"] == "WGS 84 / UTM zone 18N"
    header = json.loads(raw.readline())
    assert header == {"shape": [3, 718, 791], "dtype": "uint8", "chunks": 4}
    offsets = []
    for _ in range(4):
        chunk = json.loads(raw.readline())
        offsets.append(chunk["offset"])
        for itemsize in (1, 1):  # data (uint8), then the bool mask
            head = raw.read(16)
            _, size, _, compressed = struct.unpack("<IIII", head)
            assert size == chunk["shape"][0] * chunk["shape"][1] * chunk["shape"][2] * itemsize
            raw.read(compressed - 16)
    assert offsets == [[0, 0, 0], [0, 0, 512], [0, 512, 0], [0, 512, 512]]
    assert raw.read() == b""


def test_reprojection_bilinear_and_outsize(alice_client, rgb_image):
    body = native_body(
        rgb_image,
        srs="EPSG:4326",
        resolution=None,
        outputBounds=[-78, 24, -77, 25],
        outputBoundsSRS="EPSG:4326",
        outsize=[200, 100],
        resampleAlg="bilinear",
    )
    metadata, array = read_npz(npz(alice_client, body))
    assert array.shape == (3, 100, 200)
    assert metadata["geoTransform"] == pytest.approx([-78, 0.005, 0, 25, 0, -0.01])
    assert metadata["coordinateSystem"]["epsg"] == 4326
    assert 0 < array.mask.mean() < 1 and array.data[~array.mask].min() > 0


def test_target_aligned_pixels_snap_the_bounds(alice_client, rgb_image):
    body = native_body(
        rgb_image, resolution=1000.0, outputBounds=[102_345, 2_700_010, 150_001, 2_750_500], targetAlignedPixels=True
    )
    metadata, array = read_npz(npz(alice_client, body))
    assert metadata["geoTransform"] == pytest.approx([102_000, 1000, 0, 2_751_000, 0, -1000])
    assert array.shape == (3, 51, 49)


def test_coarse_reads_use_the_cog_overviews(alice_client, rgb_image, monkeypatch):
    from raster import sources

    opened = []
    original = sources.open_dataset

    def spy(location, *, overview_level=None):
        opened.append(overview_level)
        return original(location, overview_level=overview_level)

    monkeypatch.setattr(sources, "open_dataset", spy)
    gt = rgb_image.geotrans
    read_npz(npz(alice_client, native_body(rgb_image, resolution=gt[1] * 4.5)))
    assert opened[-1] == 1, opened  # the 4x overview (the file has 2x and 4x)
    read_npz(npz(alice_client, native_body(rgb_image, resolution=gt[1] * 1.5)))
    assert opened[-1] is None, opened  # too fine for the 2x overview: full resolution


def test_mosaic_last_id_on_top_and_stack_order(alice, alice_client, rgb_product, rgb_image, tmp_path):
    data, transform, crs = rgb_source()
    shifted = make_image(
        alice,
        rgb_product,
        "shifted",
        np.where(data > 0, 200, 0).astype(np.uint8),
        crs=crs,
        transform=transform * Affine.translation(100, 0),
        tmp_path=tmp_path,
    )
    body = native_body(rgb_image, ids=[rgb_image.pk, shifted.pk], resolution=None, outsize=[791, 718])
    _, top_last = read_npz(npz(alice_client, body))
    _, top_first = read_npz(npz(alice_client, {**body, "ids": [shifted.pk, rgb_image.pk]}))
    # column 400 of the output is column 300 of `shifted` and column 400 of the scene
    overlap = (data[0][:, 300] > 0) & (data[0][:, 400] > 0)
    assert overlap.any()
    assert (top_last.data[0][:, 400][overlap] == 200).all()
    assert np.array_equal(top_first.data[0][:, 400][overlap], data[0][:, 400][overlap])
    # where only the first image has pixels, the mosaic shows it
    assert np.array_equal(top_last.data[:, :, 50][~top_last.mask[:, :, 50]], data[:, :, 50][data[:, :, 50] > 0])


def test_cutline_masks_outside_the_shape(alice_client, rgb_image):
    shape = {
        "type": "Polygon",
        "coordinates": [[[-78.0, 24.0], [-77.5, 24.0], [-77.5, 24.5], [-78.0, 24.5], [-78.0, 24.0]]],
    }
    import json

    _, full = read_npz(npz(alice_client, native_body(rgb_image)))
    _, cut = read_npz(npz(alice_client, native_body(rgb_image, shape=json.dumps(shape))))
    assert cut.mask.sum() > full.mask.sum()
    inside = ~cut.mask
    assert inside.any() and np.array_equal(cut.data[inside], full.data[inside])
    _, wkt = read_npz(
        npz(alice_client, native_body(rgb_image, shape="POLYGON ((-78 24, -77.5 24, -77.5 24.5, -78 24.5, -78 24))"))
    )
    assert np.array_equal(wkt.mask, cut.mask)


def test_mask_nodata_false_keeps_nodata_values_but_masks_outside_the_image(alice_client, rgb_image):
    gt = rgb_image.geotrans
    bounds = [gt[0] - 3000, gt[3] - 30000, gt[0] + 30000, gt[3] + 3000]
    _, masked = read_npz(npz(alice_client, native_body(rgb_image, outputBounds=bounds, resolution=gt[1])))
    _, unmasked = read_npz(
        npz(alice_client, native_body(rgb_image, outputBounds=bounds, resolution=gt[1], mask_nodata=False))
    )
    assert unmasked.mask.sum() < masked.mask.sum()
    assert unmasked.mask[:, :, :5].all() and unmasked.mask[:, :5, :].all()  # west and north of the image
    assert not unmasked.mask[:, 20:, 20:].any()  # inside the image nothing is masked, not even nodata


def test_alpha_masks_all_bands_and_is_dropped(alice, alice_client, tmp_path):
    from tests.raster.helpers import make_product

    bands = [
        {"name": n, "data_type": "Byte", "band_index": i, "data_range": [0, 255]}
        for i, n in enumerate(("red", "green", "blue"))
    ]
    bands.append(
        {"name": "alpha", "type": "mask", "data_type": "Byte", "band_index": 3, "is_alpha": True, "data_range": [0, 1]}
    )
    product = make_product(alice, "withalpha", bands)
    data = np.full((4, 64, 64), 9, dtype=np.uint8)
    data[3] = 1
    data[3, :, :16] = 0
    image = make_image(
        alice,
        product,
        "a",
        data,
        crs="EPSG:32618",
        transform=Affine(10, 0, 500000, 0, -10, 10000),
        nodata=None,
        tmp_path=tmp_path,
    )
    base = {
        "ids": [image.pk],
        "bands": ["red", "green", "alpha"],
        "scales": [None, None],
        "ot": "Byte",
        "srs": "EPSG:32618",
        "outputBounds": [500000, 9360, 500640, 10000],
        "resolution": 10.0,
        "mask_alpha": True,
        "drop_alpha": True,
    }
    _, dropped = read_npz(npz(alice_client, base))
    assert dropped.shape == (2, 64, 64)
    assert dropped.mask[:, :, :16].all() and not dropped.mask[:, :, 16:].any()
    _, kept = read_npz(npz(alice_client, {**base, "scales": None, "drop_alpha": False}))
    assert kept.shape == (3, 64, 64) and (kept.data[2][:, 16:] == 1).all()


def test_derived_ndvi_on_the_wire_and_with_derived_params(alice, alice_client, tmp_path):
    from tests.raster.helpers import make_product

    product = make_product(
        alice,
        "veg",
        [
            {"name": "red", "data_type": "UInt16", "band_index": 0, "data_range": [0, 10000], "nodata": 0},
            {"name": "nir", "data_type": "UInt16", "band_index": 1, "data_range": [0, 10000], "nodata": 0},
            {
                "name": "myndvi",
                "data_type": "UInt16",
                "data_range": [0, 65535],
                "physical_range": [-1, 1],
                "derived_params": {"function": "ndi_uint16", "bands": ["nir", "red"]},
            },
        ],
    )
    rng = np.random.default_rng(1)
    data = rng.integers(0, 10000, size=(2, 50, 60), dtype=np.uint16)
    data[:, :5, :5] = 0
    image = make_image(
        alice, product, "v", data, crs="EPSG:32618", transform=Affine(10, 0, 500000, 0, -10, 10000), tmp_path=tmp_path
    )
    body = {
        "ids": [image.pk],
        "bands": ["derived:ndvi", "myndvi"],
        "ot": "UInt16",
        "srs": "EPSG:32618",
        "outputBounds": [500000, 9500, 500600, 10000],
        "resolution": 10.0,
    }
    _, array = read_npz(npz(alice_client, body))
    red, nir = data[0].astype(float), data[1].astype(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        ndi = (nir - red) / (nir + red)
    invalid = (red == 0) | (nir == 0) | (red + nir == 0)
    expected = np.floor((ndi + 1) * 32767.5 + 0.5)
    for band in (0, 1):
        assert np.array_equal(array.mask[band], invalid)
        assert np.array_equal(array.data[band][~invalid], expected[~invalid].astype(np.uint16))
    _, physical = read_npz(
        npz(alice_client, {**body, "bands": ["derived:ndvi"], "ot": "Float64", "scales": [[0, 65535, -1, 1]]})
    )
    assert np.abs(physical.data[0][~invalid] - ndi[~invalid]).max() < 2 / 65535


def test_scaling_and_casts_on_the_wire(alice_client, rgb_image):
    _, raw = read_npz(npz(alice_client, native_body(rgb_image)))
    _, scaled = read_npz(npz(alice_client, native_body(rgb_image, scales=[[0, 100, 0, 255]] * 3)))
    valid = ~raw.mask
    expected = np.clip(np.floor(raw.data.astype(float) * 2.55 + 0.5), 0, 255)
    assert np.array_equal(scaled.data[valid], expected[valid])
    _, wide = read_npz(npz(alice_client, native_body(rgb_image, ot="Float32", scales=[[0, 255, 0, 1]] * 3)))
    assert wide.dtype == np.float32 and wide.data[valid].max() <= 1.0
    assert np.allclose(wide.data[valid], raw.data[valid] / 255, atol=1e-6)
    _, auto = read_npz(npz(alice_client, native_body(rgb_image, scales=[[], None, None])))
    assert auto.data[0][valid[0]].min() == 0 and auto.data[0][valid[0]].max() == 255
    _, upcast = read_npz(npz(alice_client, native_body(rgb_image, ot="UInt16")))
    assert upcast.dtype == np.uint16 and np.array_equal(upcast.data, raw.data)


# ---- access -----------------------------------------------------------------------------------------------
def test_other_organizations_get_404_and_anonymous_401(auth_client, bob, rgb_image, api_client):
    response = npz(auth_client(bob), native_body(rgb_image))
    assert response.status_code == 404
    assert response.json()["errors"][0]["status"] == "404"
    assert npz(api_client, native_body(rgb_image)).status_code == 401


def test_shared_product_is_readable(auth_client, bob, rgb_image, rgb_product):
    from imagery.models import Image

    Image.objects.filter(pk=rgb_image.pk).update(readers=["org:otherorg"])
    response = npz(auth_client(bob), native_body(rgb_image, bands=["red"]))
    # bands are restricted like everything else: bob sees the image but not the product's bands
    assert response.status_code == 400
    from products.models import Band

    Band.objects.filter(product=rgb_product).update(readers=["org:otherorg"])
    _, array = read_npz(npz(auth_client(bob), native_body(rgb_image, bands=["red"])))
    assert array.shape == (1, 718, 791)
