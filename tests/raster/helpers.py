"""Helpers of the raster tests: products with bands, COG images stored exactly as ingest stores them, requests.

Images are Cloud-Optimized GeoTIFFs in the "imagery" storage under a `rasters/...` key, with
`files=[{"href": href_for(key), "size_bytes": …, "hash": md5}]` and georeferencing attributes taken from the
file — the shape `uploads.services` gives ingested images (the compatibility tests use the real ingest).
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
import rasterio.shutil
from rasterio.transform import Affine
from rasterio.warp import transform_geom

DATA = Path(__file__).resolve().parent.parent / "data"
RGB = DATA / "RGB.byte.tif"


def make_product(user, local_id: str, bands: list[dict[str, Any]]):
    """A product of `user` with bands given as attribute dicts (name, type, data_type, band_index, ...)."""
    from django.db import transaction

    from products.services import band_create, product_create

    with transaction.atomic():
        product = product_create(user=user, requested_id=local_id, attributes={"name": local_id})
        for attributes in bands:
            band_create(user=user, attributes={"type": "spectral", "product_id": product.pk, **attributes})
    return product


def rgb_bands(*, nodata: float | None = 0, display_range=(0, 255)) -> list[dict[str, Any]]:
    return [
        {
            "name": name,
            "data_type": "Byte",
            "band_index": index,
            "nodata": nodata,
            "data_range": [0, 255],
            "display_range": list(display_range),
        }
        for index, name in enumerate(("red", "green", "blue"))
    ]


def write_cog(
    path: Path, data: np.ndarray, *, crs: str, transform: Affine, nodata: float | None, overviews: int = 2
) -> None:
    """A COG like ingest writes (DEFLATE, 512 blocks) with `overviews` power-of-two overview levels."""
    profile = {
        "driver": "GTiff",
        "width": data.shape[2],
        "height": data.shape[1],
        "count": data.shape[0],
        "dtype": data.dtype.name,
        "crs": crs,
        "transform": transform,
        "nodata": nodata,
    }
    plain = path.with_suffix(".plain.tif")
    with rasterio.open(plain, "w", **profile) as dst:
        dst.write(data)
    options = {"OVERVIEWS": "NONE"} if not overviews else {"OVERVIEWS": "IGNORE_EXISTING", "OVERVIEW_COUNT": overviews}
    with rasterio.open(plain) as src:
        rasterio.shutil.copy(src, path, driver="COG", COMPRESS="DEFLATE", BLOCKSIZE=512, **options)
    plain.unlink()


def store_file(path: Path, *, namespace: str = "tests") -> dict[str, Any]:
    """Store a local file under a fresh `rasters/` key; returns the image `files` entry ingest would write."""
    from uploads import storage

    key = f"{storage.raster_prefix(namespace=namespace, upload_id=uuid.uuid4().hex, attempt=1)}/file-0.tif"
    stored = storage.save_local_file(key=key, path=path)
    return {"href": storage.href_for(key), "size_bytes": stored.size_bytes, "hash": stored.md5}


def footprint(crs, transform: Affine, width: int, height: int) -> dict[str, Any]:
    """The image's bounds as a densified EPSG:4326 polygon."""
    steps = np.linspace(0, 1, 11)
    ring = (
        [(s * width, 0) for s in steps]
        + [(width, s * height) for s in steps]
        + [((1 - s) * width, height) for s in steps]
        + [(0, (1 - s) * height) for s in steps]
    )
    coords = [transform @ point for point in ring]
    coords.append(coords[0])
    return transform_geom(crs, "EPSG:4326", {"type": "Polygon", "coordinates": [coords]})


def make_image(
    user,
    product,
    name: str,
    data: np.ndarray,
    *,
    crs: str,
    transform: Affine,
    nodata: float | None = 0,
    tmp_path: Path,
    overviews: int = 2,
    **attributes,
):
    """Write `data` (bands, rows, cols) as a stored COG and create its Image (ACLs inherited from the product)."""
    from catalogsite.geo import parse_geometry
    from imagery.services import image_create

    path = tmp_path / f"{name}-{uuid.uuid4().hex[:8]}.tif"
    write_cog(path, data, crs=crs, transform=transform, nodata=nodata, overviews=overviews)
    files = [store_file(path)]
    fields = {
        "product_id": product.pk,
        "name": name,
        "cs_code": crs,
        "geotrans": list(transform.to_gdal()),
        "x_pixels": data.shape[2],
        "y_pixels": data.shape[1],
        "files": files,
        "geometry": parse_geometry(footprint(crs, transform, data.shape[2], data.shape[1])),
        "acquired": "2020-01-01T00:00:00Z",
        "storage_state": "available",
        **attributes,
    }
    return image_create(user=user, attributes=fields)


def rgb_source() -> tuple[np.ndarray, Affine, str]:
    with rasterio.open(RGB) as src:
        return src.read(), src.transform, src.crs.to_string()


def npz(client, body: dict[str, Any]):
    """POST /raster/v2/npz as the client does (application/json)."""
    return client.post("/raster/v2/npz", data=json.dumps(body), content_type="application/json")


def read_npz(response) -> tuple[dict, np.ma.MaskedArray]:
    """Parse a streamed npz response with the client's own reader (descarteslabs raster.py)."""
    import io

    from descarteslabs.core.client.services.raster.raster import read_tiled_blosc_array

    raw = io.BytesIO(b"".join(response.streaming_content))
    metadata = json.loads(raw.readline())
    array_meta = json.loads(raw.readline())
    array = read_tiled_blosc_array(array_meta, raw, progress=False)
    assert raw.read() == b"", "trailing bytes after the last chunk"
    return metadata, array
