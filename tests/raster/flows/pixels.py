"""Pixel access with the real client: ndarray, raster_info, download, mosaic/stack, derived bands, scaling.

The images are uploaded with `Image.upload()` and ingested by the server (real COGs). Two images of the same
scene: "scene" is RGB.byte.tif itself; "later" is the same grid shifted 100 pixels east with every valid
pixel set to 200 (acquired a day later), so mosaics show which image is on top.

Inputs: COMPAT_RGB (path of RGB.byte.tif), COMPAT_WORKDIR (a scratch directory).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "compat" / "flows"))

import numpy as np  # noqa: E402
import rasterio  # noqa: E402
from _flowlib import check, env, note, run, step, unique  # noqa: E402
from descarteslabs.catalog import Image, Product, SpectralBand  # noqa: E402
from descarteslabs.exceptions import NotFoundError  # noqa: E402
from rasterio.crs import CRS  # noqa: E402
from rasterio.transform import Affine  # noqa: E402

DISPLAY_MAX = 100


def gdal_round(values: np.ndarray) -> np.ndarray:
    """Round half up (GDAL's float → integer conversion for non-negative values)."""
    return np.floor(values + 0.5)


def make_product() -> Product:
    product = Product(id=unique("pixels"), name="Pixels")
    product.save()
    for index, name in enumerate(("red", "green", "blue")):
        SpectralBand(
            name=name,
            product=product,
            band_index=index,
            data_type="Byte",
            nodata=0,
            data_range=[0, 255],
            display_range=[0, DISPLAY_MAX],
        ).save()
    # A 3.x derived band: a normalized difference of two stored bands, computed by the raster service.
    SpectralBand(
        name="ndvi",
        product=product,
        data_type="UInt16",
        data_range=[0, 65535],
        physical_range=[-1, 1],
        derived_params={"function": "ndi_uint16", "bands": ["green", "red"]},
    ).save()
    return product


def upload(product: Product, name: str, path: str, acquired: str) -> Image:
    image = Image(product=product, name=name, acquired=acquired)
    status = image.upload(path)
    status.wait_for_completion(timeout=90)
    assert status.status == "success", f"upload of {name} ended {status.status}: {status.events}"
    return Image.get(image.id)


def write_later(source: str, workdir: Path) -> str:
    """The second image: 100 pixels further east, every valid pixel 200."""
    with rasterio.open(source) as src:
        data, profile = src.read(), src.profile
    profile["transform"] = profile["transform"] * Affine.translation(100, 0)
    path = workdir / "later.tif"
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(np.where(data > 0, 200, 0).astype(np.uint8))
    return str(path)


def main() -> None:
    rgb = env("COMPAT_RGB")
    workdir = Path(env("COMPAT_WORKDIR"))
    with rasterio.open(rgb) as src:
        source, src_crs, src_transform = src.read(), src.crs, src.transform
    nodata = source == 0

    step("product with bands, two uploaded images")
    product = make_product()
    scene = upload(product, "scene", rgb, "2021-05-01")
    later = upload(product, "later", write_later(rgb, workdir), "2021-05-02")
    resolution = scene.geotrans[1]

    def native_ndarray() -> None:
        arr = scene.ndarray("red green blue", resolution=resolution)
        assert arr.shape == source.shape and arr.dtype == np.uint8, (arr.shape, arr.dtype)
        valid = ~arr.mask
        assert np.array_equal(arr.data[valid], source[valid]), "pixels differ from rasterio's read"
        assert arr.mask[nodata].all(), "every nodata pixel must be masked"
        # The default geocontext cuts along the image's footprint (its valid-data outline) …
        note(f"default geocontext: {int(arr.mask.sum() - nodata.sum())} valid pixels outside the footprint cutline")
        # … without the cutline the mask is exactly nodata.
        plain = scene.geocontext.assign(geometry=None)
        arr = scene.ndarray("red green blue", geocontext=plain, resolution=resolution)
        assert np.array_equal(arr.mask, nodata), "mask must equal the nodata pixels"
        assert np.array_equal(arr.data[~nodata], source[~nodata])
        # The image's own grid (shape instead of resolution): the same pixels.
        arr = scene.ndarray("red green blue", geocontext=plain)
        assert np.array_equal(arr.mask, nodata) and np.array_equal(arr.data[~nodata], source[~nodata])

    check(native_ndarray)

    def raster_info() -> None:
        arr, info = scene.ndarray("red", resolution=resolution, raster_info=True)
        assert arr.shape == (1, *source.shape[1:])
        crs = CRS.from_wkt(info["coordinateSystem"]["wkt"])
        assert crs == src_crs, crs
        transform = Affine.from_gdal(*info["geoTransform"])
        assert abs(transform.c - src_transform.c) < 1e-6 and abs(transform.f - src_transform.f) < 1e-6
        assert abs(transform.a - resolution) < 1e-9 and abs(transform.e + resolution) < 1e-9

    check(raster_info)

    def download() -> None:
        dest = workdir / "scene.tif"
        path = scene.download("red green blue", geocontext=scene.geocontext.assign(geometry=None), dest=str(dest))
        assert Path(path) == dest
        with rasterio.open(dest) as got:
            assert got.crs == src_crs and got.count == 3 and got.dtypes[0] == "uint8"
            assert abs(got.transform.c - src_transform.c) < 1e-6 and abs(got.transform.f - src_transform.f) < 1e-6
            assert (got.width, got.height) == (source.shape[2], source.shape[1])
            assert np.array_equal(got.read(), source), "downloaded pixels differ"
        png = scene.download(
            "red green blue",
            geocontext=scene.geocontext.assign(geometry=None),
            dest=str(workdir / "scene.png"),
            scaling="display",
        )
        assert Path(png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    check(download)

    def mosaic_and_stack() -> None:
        aoi = scene.geometry.buffer(0.01)
        images = product.images().intersects(aoi).sort("acquired").collect()
        assert [i.name for i in images] == ["scene", "later"], [i.name for i in images]
        mosaic = images.mosaic("red green blue", resolution=600.0)
        stack = images.stack("red green blue", resolution=600.0)
        assert mosaic.shape[0] == 3 and stack.shape == (2, *mosaic.shape), (mosaic.shape, stack.shape)
        first, second = stack[0], stack[1]
        top = ~np.ma.getmaskarray(second)
        assert top.any() and (~np.ma.getmaskarray(first) & ~top).any()
        assert (mosaic.data[top] == 200).all(), "where the later image has pixels, it is on top"
        assert (second.data[top] == 200).all()
        only_first = ~np.ma.getmaskarray(first) & ~top
        assert np.array_equal(mosaic.data[only_first], first.data[only_first])
        reverse = (
            product.images().intersects(aoi).sort("-acquired").collect().mosaic("red green blue", resolution=600.0)
        )
        both = top & ~np.ma.getmaskarray(first)
        assert both.any() and np.array_equal(reverse.data[both], first.data[both]), "the last id is on top"
        note(f"mosaic {mosaic.shape}, stack {stack.shape}, overlap {int(both.sum())} values")

    check(mosaic_and_stack)

    def derived_ndvi() -> None:
        plain = scene.geocontext.assign(geometry=None)
        raw = scene.ndarray("ndvi", geocontext=plain)
        assert raw.dtype == np.uint16 and raw.shape == (1, *source.shape[1:])
        green, red = source[1].astype(np.float64), source[0].astype(np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            ndi = (green - red) / (green + red)
        expected_mask = nodata[0] | nodata[1] | (green + red == 0)
        assert np.array_equal(raw.mask[0], expected_mask)
        expected = gdal_round((ndi + 1) * (65535 / 2))[~expected_mask]
        assert np.array_equal(raw.data[0][~expected_mask], expected.astype(np.uint16))
        physical = scene.ndarray("ndvi", geocontext=plain, scaling="physical")
        assert physical.dtype == np.float64
        assert np.abs(physical.data[0][~expected_mask] - ndi[~expected_mask]).max() <= 1 / 65535 + 1e-12

    check(derived_ndvi)

    def display_scaling() -> None:
        scales, data_type = scene.scaling_parameters(["red", "green", "blue"], scaling="display")
        assert data_type == "Byte" and scales == [(0, DISPLAY_MAX, 0, 255)] * 3, (scales, data_type)
        arr = scene.ndarray("red green blue", geocontext=scene.geocontext.assign(geometry=None), scaling="display")
        assert arr.dtype == np.uint8 and 0 <= arr.min() and arr.max() <= 255
        expected = np.clip(gdal_round(source.astype(np.float64) * (255 / DISPLAY_MAX)), 0, 255)
        assert np.array_equal(arr.data[~nodata], expected[~nodata].astype(np.uint8))
        assert arr.max() == 255, "values above the display range saturate"

    check(display_scaling)

    def unknown_image() -> None:
        # An id that does not exist is a NotFoundError, exactly like an image of someone else (tests/raster).
        ghost = Image(id=f"{product.id}:ghost", product_id=product.id, name="ghost")
        try:
            ghost.ndarray("red", resolution=resolution, geocontext=later.geocontext)
        except NotFoundError as exc:
            note(f"unknown image: {type(exc).__name__}")
        else:
            raise AssertionError("an unknown image id must raise NotFoundError")

    check(unknown_image)


if __name__ == "__main__":
    run(main)
