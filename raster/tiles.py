"""XYZ map tiles (Web Mercator) of one image or of a product mosaic, read with rio-tiler on morecantile's grid.

rio-tiler does the tile math and the reads (overview choice, reprojection, nodata masks); this module adds
what is the catalog's own: which images (restricted to the caller, filtered like a search, newest on top),
which bands (stored, `derived:*` or bands with `derived_params`), scaling as `scaling_parameters()` defines
it, and the colormap of a single band.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import morecantile
import numpy as np
from django.conf import settings
from django.contrib.gis.geos import Polygon
from django.urls import reverse
from rest_framework import exceptions
from rio_tiler.colormap import cmap as colormaps
from rio_tiler.errors import EmptyMosaicError, TileOutsideBounds
from rio_tiler.io import Reader
from rio_tiler.models import ImageData
from rio_tiler.mosaic import mosaic_reader
from rio_tiler.utils import render

from catalogsite.choices import Action
from catalogsite.jsonapi import BadRequest, Unprocessable
from catalogsite.prepared import PreparedLookup, fetch_together
from imagery.choices import StorageState
from imagery.filtersets import ImageFilterSet
from imagery.models import Image
from products.models import Product

from . import derived, scaling
from .services import (
    PIXEL_FIELDS,
    RESAMPLERS,
    BandSpec,
    bands_of_images,
    by_product,
    nodata_mask,
    product_bands,
    resolve_band,
)
from .sources import SourceUnavailable, locate

TMS = morecantile.tms.get("WebMercatorQuad")
# GDAL's RasterIO (decimated reads) knows fewer algorithms than its warper; the order statistics and mode of
# the warper fall back to nearest for the decimation step.
READ_RESAMPLING = {
    "near": "nearest",
    "bilinear": "bilinear",
    "cubic": "cubic",
    "cubicspline": "cubic_spline",
    "lanczos": "lanczos",
    "average": "average",
    "mode": "mode",
}
FORMATS = {"png": ("PNG", "image/png"), "jpg": ("JPEG", "image/jpeg")}


@dataclass(frozen=True)
class TileQuery:
    """What a tile URL asks for, validated; `image_id` or `product_id` (with search filters) says which images."""

    z: int
    x: int
    y: int
    fmt: str
    image_id: str | None
    product_id: str | None
    bands: tuple[str, ...] | None
    scaling: Any
    colormap: str | None
    resampler: str
    tilesize: int
    filters: dict[str, str]


def parse_band_list(value: str | None) -> tuple[str, ...] | None:
    if not value:
        return None
    names = tuple(name for name in value.replace(",", " ").split() if name)
    if not names:
        return None
    if len(names) > settings.RASTER_MAX_BANDS:
        raise BadRequest(f"At most {settings.RASTER_MAX_BANDS} bands can be requested.", parameter="bands")
    return names


def parse_scaling(value: str | None, default: Any) -> Any:
    """A mode name, or JSON (a list or an object per band) as `scaling_parameters()` takes it."""
    if value is None or value == "":
        return default
    if value in scaling.MODES:
        return value
    if value == "none":
        return None
    try:
        return json.loads(value)
    except ValueError as exc:
        raise BadRequest(
            "scaling is raw, display, auto, physical or a JSON list/object of per-band scales.", parameter="scaling"
        ) from exc


def parse_tile_query(*, z: int, x: int, y: int, fmt: str, params) -> TileQuery:
    if fmt not in FORMATS:
        raise BadRequest("Tiles are .png or .jpg.", parameter="format")
    if not 0 <= z <= settings.RASTER_TILE_MAX_ZOOM or not (0 <= x < 2**z and 0 <= y < 2**z):
        raise BadRequest(
            f"No tile {z}/{x}/{y}: zoom goes from 0 to {settings.RASTER_TILE_MAX_ZOOM} and x, y from 0 to 2^zoom - 1.",
            parameter="z",
        )
    image_id, product_id = params.get("image"), params.get("product")
    if bool(image_id) == bool(product_id):
        raise BadRequest("Give exactly one of image=<image id> or product=<product id>.", parameter="image")
    resampler = params.get("resampling") or "near"
    if resampler not in RESAMPLERS:
        raise BadRequest(f"resampling must be one of {list(RESAMPLERS)}.", parameter="resampling")
    tilesize = params.get("tilesize") or "256"
    if tilesize not in ("256", "512"):
        raise BadRequest("tilesize is 256 or 512.", parameter="tilesize")
    colormap = params.get("colormap") or None
    if colormap is not None and colormap.lower() not in colormaps.list():
        raise BadRequest(f"Unknown colormap {colormap!r}.", parameter="colormap")
    filters = {key: params[key] for key in ImageFilterSet.base_filters if key in params and key != "product_id"}
    return TileQuery(
        z=z,
        x=x,
        y=y,
        fmt=fmt,
        image_id=image_id,
        product_id=product_id,
        bands=parse_band_list(params.get("bands")),
        scaling=parse_scaling(params.get("scaling"), "display"),
        colormap=colormap.lower() if colormap else None,
        resampler=resampler,
        tilesize=int(tilesize),
        filters=filters,
    )


def default_bands(product: Product, by_name: dict[str, Any]) -> tuple[str, ...]:
    """The product's default_display_bands, else red/green/blue when present, else its first band."""
    wanted = [name for name in (product.default_display_bands or []) if name in by_name and name != "alpha"]
    if wanted:
        return tuple(wanted)
    if all(name in by_name for name in ("red", "green", "blue")):
        return ("red", "green", "blue")
    stored = sorted(
        (b for b in by_name.values() if not b.derived_params and not b.is_alpha),
        key=lambda b: (b.sort_order if b.sort_order is not None else 1 << 30, b.name),
    )
    if not stored:
        raise Unprocessable(f"Product {product.pk} has no bands to show.")
    return (stored[0].name,)


_available_image = PreparedLookup(
    Image,
    Action.VIEW,
    lambda qs, image_id: qs.filter(pk=image_id, storage_state=StorageState.AVAILABLE).only(*PIXEL_FIELDS).order_by(),
)


@dataclass
class TilePlan:
    images: list[Image]  # top first
    specs: list[BandSpec]
    scales: list[scaling.Scale] | None
    colormap: dict | None
    etag: str


def plan_tile(*, user, query: TileQuery) -> TilePlan:
    """Images, bands, scales, colormap and the ETag of a tile — everything but the pixels."""
    if query.image_id:
        # The image and its bands in one round trip; no product join (the product row is only needed for its
        # default bands).
        images, bands = fetch_together(
            [
                (_available_image, user, {"image_id": query.image_id}),
                (bands_of_images, user, {"image_ids": [query.image_id]}),
            ]
        )
        if not images:
            raise exceptions.NotFound(f"Image {query.image_id} not found.")
        product = None
        product_id = images[0].product_id
        by_name = by_product(bands, {product_id})[product_id]
    else:
        product = Product.objects.restrict(user, Action.VIEW).filter(pk=query.product_id).first()
        if product is None:
            raise exceptions.NotFound(f"Product {query.product_id} not found.")
        visible = Image.objects.restrict(user, Action.VIEW).filter(storage_state=StorageState.AVAILABLE)
        filterset = ImageFilterSet(query.filters, queryset=visible.filter(product=product))
        if not filterset.is_valid():
            field, errors = next(iter(filterset.errors.items()))
            raise BadRequest(f"{field}: {' '.join(errors)}", parameter=field)
        west, south, east, north = TMS.bounds(morecantile.Tile(query.x, query.y, query.z))
        area = Polygon.from_bbox((west, south, east, north))
        area.srid = 4326
        images = list(
            filterset.qs.filter(geometry__intersects=area).order_by("-acquired", "-pk")[
                : settings.RASTER_TILE_MAX_IMAGES
            ]
        )
        product_id = product.pk
        by_name = product_bands(user=user, product_ids={product_id})[product_id]
    names = query.bands or default_bands(product or images[0].product, by_name)
    specs = [resolve_band(product_id, by_name, name) for name in names]
    if query.fmt == "jpg" and len(specs) not in (1, 3) or len(specs) not in (1, 2, 3, 4):
        raise BadRequest(
            f"A {query.fmt.upper()} tile shows 1 or 3 bands (PNG also 2 or 4); {len(specs)} requested.",
            parameter="bands",
        )
    properties = [s.scaling_properties() for s in specs]
    try:
        scales, _ = scaling.scaling_parameters(bands=properties, scaling=query.scaling, data_type="Byte")
    except scaling.ScalingError as exc:
        raise BadRequest(str(exc), parameter="scaling") from exc
    colormap = None
    if len(specs) == 1:
        colormap = _colormap(query.colormap, by_name.get(specs[0].name))
    elif query.colormap:
        raise BadRequest("A colormap applies to a single band.", parameter="colormap")
    return TilePlan(
        images=images, specs=specs, scales=scales, colormap=colormap, etag=_etag(query, images, by_name, names)
    )


def _colormap(name: str | None, band) -> dict | None:
    if name:
        return colormaps.get(name)
    if band is not None and band.colormap:
        return {index: tuple(int(v) for v in entry) for index, entry in enumerate(band.colormap)}
    if band is not None and band.colormap_name and band.colormap_name in colormaps.list():
        return colormaps.get(band.colormap_name)
    return None


def _etag(query: TileQuery, images: list[Image], by_name: dict[str, Any], names) -> str:
    """Changes whenever the tile could: the request, the images (data and attributes) and the bands used."""
    used = sorted(
        {name for name in names}
        | {
            src
            for name in names
            if name in by_name and by_name[name].derived_params
            for src in by_name[name].derived_params.get("bands", [])
        }
    )
    state = {
        "query": [
            query.z,
            query.x,
            query.y,
            query.fmt,
            query.bands,
            query.scaling,
            query.colormap,
            query.resampler,
            query.tilesize,
            sorted(query.filters.items()),
        ],
        "images": [
            [image.pk, image.modified.isoformat(), [f.get("hash") for f in image.files or []]] for image in images
        ],
        "bands": [[name, by_name[name].modified.isoformat()] for name in used if name in by_name],
    }
    digest = hashlib.sha256(json.dumps(state, sort_keys=True, default=str).encode()).hexdigest()[:32]
    return f'"{digest}"'


def _image_tile(
    image: Image, x: int, y: int, z: int, *, specs: list[BandSpec], resampler: str, tilesize: int
) -> ImageData:
    """One image's requested bands on the tile (float64, masked), for rio-tiler's mosaic."""
    needed: dict[int, set[int]] = {}
    for spec in specs:
        for source in spec.stored():
            needed.setdefault(source.file_index, set()).add(source.band_index)
    reads: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}
    for file_index, indexes in sorted(needed.items()):
        ordered = sorted(indexes)
        try:
            location = locate(image, file_index)
            with location.open() as dataset, Reader(location.path, dataset=dataset, tms=TMS) as reader:
                tile = reader.tile(
                    x,
                    y,
                    z,
                    tilesize=tilesize,
                    indexes=[i + 1 for i in ordered],
                    resampling_method=READ_RESAMPLING.get(resampler, "nearest"),
                    reproject_method=RESAMPLERS[resampler].name,
                )
        except SourceUnavailable as exc:
            raise Unprocessable(f"Image {image.pk} cannot be read: file {file_index}: {exc}") from exc
        values, masks = np.ma.getdata(tile.array), np.ma.getmaskarray(tile.array)
        for n, index in enumerate(ordered):
            reads[(file_index, index)] = (values[n], masks[n])
    bands, masks = [], []
    for spec in specs:
        if not spec.is_derived:
            values, mask = reads[(spec.file_index, spec.band_index)]
            if spec.nodata is not None:
                mask = mask | nodata_mask(values, spec.nodata)
            bands.append(values)
            masks.append(mask)
            continue
        inputs, input_masks = [], []
        for source in spec.sources:
            values, mask = reads[(source.file_index, source.band_index)]
            if source.nodata is not None:
                mask = mask | nodata_mask(values, source.nodata)
            if spec.function.normalised_inputs:
                inputs.append(derived.normalised(values, display_range=source.display_range or source.data_range))
            else:
                inputs.append(
                    derived.to_physical(values, data_range=source.data_range, physical_range=source.physical_range)
                )
            input_masks.append(mask)
        values, mask = derived.evaluate(
            spec.function,
            inputs,
            input_masks,
            data_type=spec.data_type,
            data_range=spec.data_range,
            physical_range=spec.physical_range,
        )
        bands.append(values)
        masks.append(mask)
    # One array type for the mosaic: the stored type when all bands share it (no float copy), else float64.
    dtype = bands[0].dtype if all(b.dtype == bands[0].dtype for b in bands) else np.float64
    array = np.ma.MaskedArray(np.stack([b.astype(dtype, copy=False) for b in bands]), mask=np.stack(masks))
    return ImageData(array, bounds=tile.bounds, crs=tile.crs)


def render_tile(*, plan: TilePlan, query: TileQuery) -> bytes:
    """The tile as PNG/JPEG bytes; an empty (transparent) tile where no image has pixels."""
    driver, _ = FORMATS[query.fmt]
    size = query.tilesize
    data = np.zeros((len(plan.specs), size, size), dtype=np.uint8)
    valid = np.zeros((size, size), dtype=bool)
    if plan.images:
        options = {"specs": plan.specs, "resampler": query.resampler, "tilesize": size}
        try:
            if len(plan.images) == 1:  # one image: its tile is the mosaic (rio-tiler's mosaic would copy it)
                mosaic = _image_tile(plan.images[0], query.x, query.y, query.z, **options)
            else:
                mosaic, _ = mosaic_reader(plan.images, _image_tile, query.x, query.y, query.z, threads=0, **options)
        except (EmptyMosaicError, TileOutsideBounds):
            mosaic = None
        if mosaic is not None:
            values = np.ma.getdata(mosaic.array)
            masks = np.ma.getmaskarray(mosaic.array)
            for index in range(len(plan.specs)):
                scale = plan.scales[index] if plan.scales else None
                data[index] = scaling.apply_scale(values[index], masks[index], scale, "Byte")
            valid = ~masks.all(axis=0)
            data[:, ~valid] = 0
    alpha = np.where(valid, 255, 0).astype(np.uint8)
    if driver == "JPEG":
        return render(data, img_format="JPEG", colormap=plan.colormap, QUALITY=settings.RASTER_TILE_JPEG_QUALITY)
    return render(data, mask=alpha, img_format="PNG", colormap=plan.colormap, ZLEVEL=settings.RASTER_TILE_PNG_ZLEVEL)


def tile_url_template(**params: str) -> str:
    """The `/raster/v2/tiles/{z}/{x}/{y}.png?…` template the UI's Leaflet maps use as a pixel layer."""
    path = reverse("raster:tile", kwargs={"z": 0, "x": 0, "y": 0, "fmt": "png"})
    return f"{path.removesuffix('/0/0/0.png')}/{{z}}/{{x}}/{{y}}.png?{urlencode(params)}"
