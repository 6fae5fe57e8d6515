"""Plain-HTTP downloads for people and tools: a GeoTIFF, PNG or JPEG of an image or of a search's mosaic.

The query string is turned into the same `RasterRequest` POST /npz takes, so the pixels are exactly those of
`Image.download()`; only the encoding differs (a GeoTIFF with its georeferencing and an internal mask, or a
PNG with the mask as alpha / a JPEG). PNG and JPEG are pictures: bytes, display-scaled unless told otherwise,
and sized to fit RASTER_EXPORT_DEFAULT_SIZE when no resolution or size is given.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from django.conf import settings
from rasterio.io import MemoryFile
from rest_framework import exceptions
from rio_tiler.utils import render

from catalogsite.choices import Action
from catalogsite.jsonapi import BadRequest
from imagery.choices import StorageState
from imagery.filtersets import ImageFilterSet
from imagery.models import Image
from products.models import Product

from . import scaling
from .services import (
    RESAMPLERS,
    RasterPlan,
    RasterRequest,
    RasterResult,
    image_footprint,
    output_grid,
    parse_bounds,
    parse_outsize,
    parse_resolution,
    plan_raster,
    product_bands,
    read_raster,
    resolve_band,
)
from .tiles import default_bands, parse_band_list, parse_scaling

FORMATS = {"tif": "image/tiff", "png": "image/png", "jpg": "image/jpeg"}


@dataclass(frozen=True)
class Export:
    content: bytes
    content_type: str
    filename: str


def _filename(stem: str, bands: tuple[str, ...], fmt: str) -> str:
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", f"{stem}-{'-'.join(bands)}").strip("._")[:180] or "raster"
    return f"{safe}.{fmt}"


def _flag(params, key: str) -> bool | None:
    value = params.get(key)
    if value is None or value == "":
        return None
    if value.lower() in ("1", "true", "yes"):
        return True
    if value.lower() in ("0", "false", "no"):
        return False
    raise BadRequest(f"{key} is true or false.", parameter=key)


def build_request(*, user, ids: list[str], product: Product, params, fmt: str) -> RasterRequest:
    """Query parameters → a RasterRequest with the client's scaling and alpha rules applied server-side."""
    if fmt not in FORMATS:
        raise BadRequest("The format is tif, png or jpg.", parameter="format")
    by_name = product_bands(user=user, product_ids={product.pk})[product.pk]
    bands = list(parse_band_list(params.get("bands")) or default_bands(product, by_name))
    picture = fmt in ("png", "jpg")
    spec = parse_scaling(params.get("scaling"), "display" if picture else None)
    data_type = params.get("data_type") or ("Byte" if picture else None)
    if picture and data_type != "Byte":
        raise BadRequest(
            "PNG and JPEG hold bytes: leave data_type out (or Byte) and choose a scaling.", parameter="data_type"
        )
    mask_alpha = _flag(params, "mask_alpha")
    if mask_alpha is None:
        mask_alpha = "alpha" in by_name  # Image.ndarray()'s default
    drop_alpha = False
    if mask_alpha and "alpha" not in bands:
        bands.append("alpha")
        drop_alpha = True
        if isinstance(spec, list):
            spec = [*spec, None]
    specs = [resolve_band(product.pk, by_name, name) for name in bands]
    properties = [s.scaling_properties() for s in specs]
    try:
        scales, data_type = scaling.scaling_parameters(bands=properties, scaling=spec, data_type=data_type)
    except scaling.ScalingError as exc:
        raise BadRequest(str(exc), parameter="scaling") from exc
    resampler = params.get("resampling") or "near"
    if resampler not in RESAMPLERS:
        raise BadRequest(f"resampling must be one of {list(RESAMPLERS)}.", parameter="resampling")
    bbox = parse_bounds(_numbers(params.get("bbox")), "bbox")
    resolution = parse_resolution(_number_or_none(params.get("resolution")))
    width, height = params.get("width"), params.get("height")
    outsize = None
    if width or height:
        outsize = parse_outsize([_int(width, "width"), _int(height, "height")], "width")
    if resolution is not None and outsize is not None:
        raise BadRequest("Give either resolution or width/height, not both.", parameter="resolution")
    crs = params.get("crs") or None
    bbox_crs = params.get("bbox_crs") or ("EPSG:4326" if bbox is not None else None)
    request = RasterRequest(
        ids=tuple(ids),
        bands=tuple(bands),
        scales=tuple(scales) if scales else None,
        data_type=data_type,
        srs=crs,
        resolution=resolution,
        bounds=bbox,
        bounds_srs=bbox_crs,
        outsize=outsize,
        resampler=resampler,
        mask_alpha=mask_alpha,
        drop_alpha=drop_alpha,
        mask_nodata=_flag(params, "mask_nodata") is not False,
    )
    if picture and resolution is None and outsize is None:
        request = _fit_picture(user=user, request=request)
    return request


def _fit_picture(*, user, request: RasterRequest) -> RasterRequest:
    """Without a size, a picture keeps its native pixels up to RASTER_EXPORT_DEFAULT_SIZE on its longer side."""
    found = {image.pk: image for image in Image.objects.restrict(user, Action.VIEW).filter(pk__in=set(request.ids))}
    if len(found) != len(set(request.ids)):
        return request  # plan_raster answers the 404
    grid = output_grid(request=request, footprints=[image_footprint(found[i]) for i in request.ids])
    limit = settings.RASTER_EXPORT_DEFAULT_SIZE
    if max(grid.width, grid.height) <= limit:
        return request
    return replace(request, outsize=(limit, 0) if grid.width >= grid.height else (0, limit))


def _numbers(value: str | None) -> list[float] | None:
    if not value:
        return None
    try:
        return [float(part) for part in value.split(",")]
    except ValueError as exc:
        raise BadRequest("bbox is minx,miny,maxx,maxy (four numbers).", parameter="bbox") from exc


def _number_or_none(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return float(value)
    except ValueError as exc:
        raise BadRequest("resolution is a number (in units of crs).", parameter="resolution") from exc


def _int(value: str | None, key: str) -> int:
    if not value:
        return 0
    try:
        return int(value)
    except ValueError as exc:
        raise BadRequest(f"{key} is a whole number of pixels.", parameter=key) from exc


def image_export(*, user, image_id: str, params, fmt: str) -> Export:
    image = Image.objects.restrict(user, Action.VIEW).filter(pk=image_id).first()
    if image is None:
        raise exceptions.NotFound(f"Image {image_id} not found.")
    request = build_request(user=user, ids=[image.pk], product=image.product, params=params, fmt=fmt)
    plan = plan_raster(user=user, request=request)
    return _encode(
        plan=plan,
        result=read_raster(plan=plan),
        fmt=fmt,
        filename=_filename(image.pk, request.bands, fmt),
        nodata=_nodata(params),
    )


def mosaic_export(*, user, params, fmt: str) -> Export:
    """A mosaic of a product's images matching search filters (bbox required), oldest first, newest on top."""
    product_id = params.get("product")
    if not product_id:
        raise BadRequest("product=<product id> is required.", parameter="product")
    product = Product.objects.restrict(user, Action.VIEW).filter(pk=product_id).first()
    if product is None:
        raise exceptions.NotFound(f"Product {product_id} not found.")
    if not params.get("bbox"):
        raise BadRequest(
            "bbox=minx,miny,maxx,maxy (EPSG:4326 unless bbox_crs) is required for a mosaic.", parameter="bbox"
        )
    visible = Image.objects.restrict(user, Action.VIEW).filter(product=product, storage_state=StorageState.AVAILABLE)
    filters = {key: params[key] for key in ImageFilterSet.base_filters if key in params and key != "product_id"}
    if "bbox_crs" not in params or params.get("bbox_crs", "").upper() == "EPSG:4326":
        filters["bbox"] = params["bbox"]
    filterset = ImageFilterSet(filters, queryset=visible)
    if not filterset.is_valid():
        field, errors = next(iter(filterset.errors.items()))
        raise BadRequest(f"{field}: {' '.join(errors)}", parameter=field)
    limit = settings.RASTER_MAX_IMAGES
    ids = list(filterset.qs.order_by("acquired", "pk").values_list("pk", flat=True)[: limit + 1])
    if not ids:
        raise exceptions.NotFound("No image of this product matches the filters.")
    if len(ids) > limit:
        raise BadRequest(
            f"More than {limit} images match; narrow the filters (acquired_after/before, bbox, "
            "cloud_fraction__lte, tags).",
            parameter="bbox",
        )
    request = build_request(user=user, ids=ids, product=product, params=params, fmt=fmt)
    plan = plan_raster(user=user, request=request)
    return _encode(
        plan=plan,
        result=read_raster(plan=plan),
        fmt=fmt,
        filename=_filename(f"{product.pk}-mosaic", request.bands, fmt),
        nodata=_nodata(params),
    )


def _nodata(params) -> float | None:
    value = params.get("nodata")
    if not value:
        return None
    try:
        return float(value)
    except ValueError as exc:
        raise BadRequest("nodata is a number.", parameter="nodata") from exc


def _encode(*, plan: RasterPlan, result: RasterResult, fmt: str, filename: str, nodata: float | None) -> Export:
    data, mask = result.data, result.mask
    bands = data.shape[0]
    if fmt == "jpg" and bands not in (1, 3):
        raise BadRequest(f"A JPEG holds 1 or 3 bands, not {bands}.", parameter="bands")
    if fmt == "png" and bands not in (1, 2, 3, 4):
        raise BadRequest(f"A PNG holds 1 to 4 bands, not {bands}.", parameter="bands")
    valid = ~mask.all(axis=0)
    grid = plan.grid
    profile: dict[str, Any] = {
        "width": grid.width,
        "height": grid.height,
        "count": bands,
        "dtype": data.dtype.name,
        "crs": grid.crs,
        "transform": grid.transform,
    }
    if fmt == "tif":
        profile.update(driver="GTiff", tiled=True, blockxsize=512, blockysize=512, compress="deflate")
        if nodata is not None:
            data = data.copy()
            data[mask] = np.asarray(nodata).astype(data.dtype)
            profile["nodata"] = nodata
        with MemoryFile() as memfile:
            with memfile.open(**profile) as dst:
                dst.write(data)
                for index, name in enumerate(plan.request.bands[i] for i in plan.output_bands):
                    dst.set_band_description(index + 1, name)
                if nodata is None:
                    dst.write_mask(np.where(valid, 255, 0).astype(np.uint8))
            content = memfile.read()
    else:
        alpha = np.where(valid, 255, 0).astype(np.uint8)
        if fmt == "png":
            content = render(data, mask=alpha, img_format="PNG")
        else:
            content = render(data, img_format="JPEG")
    return Export(content=content, content_type=FORMATS[fmt], filename=filename)
