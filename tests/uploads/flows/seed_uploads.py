"""The user guide's upload flows, run by the unmodified descarteslabs 3.2.2 client against a live server.

Configured only through the environment (DESCARTESLABS_* set by the test, UPLOAD_DATA = tests/data).
Any failed expectation raises; the last line printed is "FLOW OK".
"""

import os
import sys
import tempfile
import uuid
import warnings
from pathlib import Path

import numpy as np
from descarteslabs.catalog import (
    DataType,
    Image,
    ImageUploadEventType,
    ImageUploadStatus,
    OverviewResampler,
    Product,
    Resolution,
    ResolutionUnit,
    SpectralBand,
    properties,
)

warnings.simplefilter("ignore", FutureWarning)
DATA = Path(os.environ["UPLOAD_DATA"])
TIMEOUT = 120


def log(message):
    sys.stdout.write(f"{message}\n")
    sys.stdout.flush()


def make_product(name, bands):
    product = Product(id=f"{name}-{uuid.uuid4().hex[:8]}", name=name)
    product.save()
    for index, (band_name, data_type) in enumerate(bands):
        band = SpectralBand(name=band_name, product=product)
        band.data_type = data_type
        band.data_range = (0, 10000)
        band.display_range = (0, 4000)
        band.resolution = Resolution(unit=ResolutionUnit.METERS, value=30)
        band.band_index = index
        band.save()
    return product


def finished(upload, expected):
    upload.wait_for_completion(timeout=TIMEOUT)
    messages = [f"{e.event_type}: {e.message}" for e in upload.events or []]
    assert upload.status == expected, (upload.id, upload.status, messages)
    return messages


# --- image.upload("RGB.byte.tif") ------------------------------------------------------------------
rgb = make_product("guide-rgb", [("red", DataType.BYTE), ("green", DataType.BYTE), ("blue", DataType.BYTE)])
image = Image(product=rgb, name="image1")
image.acquired = "2012-01-02"
image.cloud_fraction = 0.1
upload = image.upload(str(DATA / "RGB.byte.tif"))
assert upload.status == ImageUploadStatus.PENDING, upload.status
finished(upload, ImageUploadStatus.SUCCESS)
# the client reloaded the image on success: derived attributes are there, and the user's too
assert image.state == "saved", image.state
assert (image.x_pixels, image.y_pixels) == (791, 718), (image.x_pixels, image.y_pixels)
assert image.cs_code == "EPSG:32618", image.cs_code
assert image.cloud_fraction == 0.1
assert image.files and image.files[0].size_bytes > 0 and image.files[0].hash
assert [e.event_type for e in upload.events] == [
    ImageUploadEventType.QUEUE,
    ImageUploadEventType.RUN,
    ImageUploadEventType.USAGE,
    ImageUploadEventType.COMPLETE,
]
assert Image.get(image.id).geometry is not None
log(f"file upload ok: {upload.id}")

# --- more real files ---------------------------------------------------------------------------------
for file_name, bands in [
    ("rgb-byte-tenth.tif", [("red", DataType.BYTE), ("green", DataType.BYTE), ("blue", DataType.BYTE)]),
    ("RGBA.uint16.tif", [(name, DataType.UINT16) for name in ("b", "g", "r", "a")]),
    ("world.byte.tif", [("grey", DataType.BYTE)]),
    ("alpha.tif", [(name, DataType.BYTE) for name in ("r", "g", "b", "alpha")]),
]:
    product = make_product(f"guide-{Path(file_name).stem.replace('.', '-').lower()}", bands)
    other = Image(product=product, name="scene", acquired="2020-06-01")
    finished(other.upload(str(DATA / file_name)), ImageUploadStatus.SUCCESS)
    assert other.geometry is not None and other.x_pixels > 0
    log(f"file upload ok: {file_name}")

# --- overwrite=True replaces the data --------------------------------------------------------------------
again = Image(product=rgb, name="image1", acquired="2012-01-03")
finished(again.upload(str(DATA / "rgb-byte-tenth.tif"), overwrite=True), ImageUploadStatus.SUCCESS)
assert (Image.get(image.id).x_pixels, Image.get(image.id).y_pixels) == (79, 71)
log("overwrite ok")

# --- upload_ndarray(..., overviews=[2, 4], overview_resampler=AVERAGE) ----------------------------------
blue = make_product("guide-ndarray", [("blue", DataType.UINT16)])
rows, cols = 200, 150
ndarray = np.arange(rows * cols, dtype="uint16").reshape(1, rows, cols) % 4000
raster_meta = {
    "geoTransform": [500000.0, 60.0, 0.0, 4200000.0, 0.0, -60.0],
    "coordinateSystem": {"proj4": "+proj=utm +zone=15 +datum=WGS84 +units=m +no_defs"},
}
image2 = Image(product=blue, name="image2", acquired="2023-01-06")
upload2 = image2.upload_ndarray(
    ndarray, raster_meta=raster_meta, overviews=[2, 4], overview_resampler=OverviewResampler.AVERAGE
)
finished(upload2, ImageUploadStatus.SUCCESS)
assert (image2.x_pixels, image2.y_pixels) == (cols, rows), (image2.x_pixels, image2.y_pixels)
assert image2.geotrans == tuple(raster_meta["geoTransform"]) or list(image2.geotrans) == raster_meta["geoTransform"]
log(f"ndarray upload ok: {upload2.id}")

# a list of 2-D arrays and every supported dtype travel the same way
for dtype in Image.SUPPORTED_DATATYPES:
    data_type = {
        "uint8": DataType.BYTE,
        "int16": DataType.INT16,
        "uint16": DataType.UINT16,
        "int32": DataType.INT32,
        "uint32": DataType.UINT32,
        "float32": DataType.FLOAT32,
        "float64": DataType.FLOAT64,
    }[dtype]
    product = make_product(f"guide-dtype-{dtype}", [("value", data_type)])
    array = (np.arange(40 * 30).reshape(40, 30) % 100).astype(dtype)
    typed = Image(
        product=product,
        name=f"typed-{dtype}",
        acquired="2023-01-06",
        geotrans=[10.0, 0.001, 0.0, 50.0, 0.0, -0.001],
        cs_code="EPSG:4326",
    )
    finished(typed.upload_ndarray(array), ImageUploadStatus.SUCCESS)
log("ndarray dtypes ok")

# --- troubleshooting: the empty file ----------------------------------------------------------------------
invalid_image_path = tempfile.mkstemp()[1]
with open(invalid_image_path, "w"):
    pass
image3 = Image(product=rgb, name="scene3", acquired="2012-03-01")
upload3 = image3.upload(invalid_image_path)
messages = finished(upload3, ImageUploadStatus.FAILURE)
assert any(e.event_type == ImageUploadEventType.ERROR and "empty" in e.message for e in upload3.events), messages
assert upload3.events[-1].event_type == ImageUploadEventType.COMPLETE and upload3.events[-1].severity == "ERROR"
log(f"empty file failed as expected: {messages[-1]}")

# --- listing uploads ----------------------------------------------------------------------------------------
everything = {u.id: u.status for u in rgb.image_uploads()}
assert set(everything) >= {upload.id, upload3.id}, everything
failures = [u.id for u in rgb.image_uploads().filter(properties.status == ImageUploadStatus.FAILURE)]
assert failures == [upload3.id], failures
for found in rgb.image_uploads().filter(properties.status == ImageUploadStatus.FAILURE):
    assert found.events and found.events[-1].event_type == ImageUploadEventType.COMPLETE
of_image = sorted(u.id for u in image.image_uploads())
assert len(of_image) == 2 and upload.id in of_image, of_image
assert [u.id for u in image3.image_uploads()] == [upload3.id]
log("listing ok")

log("FLOW OK")
