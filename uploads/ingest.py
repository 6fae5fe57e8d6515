"""Pure raster ingest: untrusted files in, Cloud-Optimized GeoTIFFs and image metadata out.

This module runs inside the sandboxed child process (`uploads.ingest_child`), never in the web or worker
process, and knows nothing about Django. It follows the security notes §2.5:

* the format is decided by magic bytes, and the file is opened with exactly that one GDAL driver
  (GTiff or JP2OpenJPEG), or parsed by numpy with `allow_pickle=False` for `.npy`;
* declared sizes are checked against the limits before a pixel is decoded;
* client strings reach PROJ only as validated EPSG/ESRI codes, PROJ strings or WKT;
* every error a user can cause becomes `InvalidRaster` with a message that names the file by its index,
  never by a server path, and never quotes file content.
"""

from __future__ import annotations

import math
import re
import struct
import time
import zlib
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
import rasterio.shutil

# GDAL errors raised by rasterio calls (CPLE_*) share this base class.
from rasterio._err import CPLE_BaseError, CPLE_OutOfMemoryError
from rasterio.crs import CRS
from rasterio.enums import MaskFlags, Resampling
from rasterio.errors import CRSError, RasterioError
from rasterio.io import MemoryFile
from rasterio.transform import Affine
from rasterio.warp import transform as warp_transform
from rasterio.windows import Window

from .validation import InvalidCoordinateSystem, normalize_cs_code, projection_kind


class InvalidRaster(Exception):
    """The upload cannot be ingested because of its content (permanent: retrying cannot help)."""


class RasterTooLarge(InvalidRaster):
    """The declared size exceeds the configured limits (reported as a resource limit)."""


class OutOfMemory(RasterTooLarge):
    """Decoding needed more memory than the child may use."""


# ---- formats ------------------------------------------------------------------------------------------
GTIFF = "GTiff"
JP2 = "JP2OpenJPEG"
NPY = "npy"
TIFF_MAGICS = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")
JP2_MAGICS = (b"\x00\x00\x00\x0cjP  \r\n\x87\n", b"\xff\x4f\xff\x51")
NPY_MAGIC = b"\x93NUMPY"
# Formats we recognise only to explain why they are refused.
REFUSED_MAGICS = (
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"GIF8", "a GIF image"),
    (b"PK\x03\x04", "a ZIP archive"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"%PDF", "a PDF document"),
    (b"\x89HDF", "an HDF5 file"),
    (b"CDF\x01", "a netCDF file"),
)

DATA_TYPES = {  # protocol DataType → numpy dtype name
    "Byte": "uint8",
    "UInt16": "uint16",
    "Int16": "int16",
    "UInt32": "uint32",
    "Int32": "int32",
    "Float32": "float32",
    "Float64": "float64",
}
NUMPY_TO_DATA_TYPE = {value: key for key, value in DATA_TYPES.items()}
RESAMPLERS = {  # protocol OverviewResampler → GDAL overview resampling
    "nearest": Resampling.nearest,
    "average": Resampling.average,
    "gauss": Resampling.gauss,
    "cubic": Resampling.cubic,
    "cubicspline": Resampling.cubic_spline,
    "lanczos": Resampling.lanczos,
    "mode": Resampling.mode,
    # GDAL dropped AVERAGE_MP; AVERAGE_MAGPHASE only differs from AVERAGE for complex data, which we refuse.
    "average_mp": Resampling.average,
    "average_magphase": Resampling.average,
}
STATS_GRID = 512  # footprint, fill fraction and preview come from at most this many pixels per side
FOOTPRINT_ROWS = 256  # rows of the mask used to trace the valid-data outline
MAX_FOOTPRINT_VERTICES = 2000


@dataclass(frozen=True)
class Limits:
    max_pixels: int
    max_dimension: int
    max_bands: int
    max_file_bytes: int


@dataclass(frozen=True)
class BandSpec:
    """A band the product declares: where it lives in the upload and its data type."""

    name: str
    file_index: int
    band_index: int
    data_type: str | None
    nodata: float | None = None
    is_alpha: bool = False


@dataclass(frozen=True)
class IngestRequest:
    """Everything the child needs; paths are server-generated, strings from the client are validated."""

    upload_type: str  # "file" or "ndarray"
    inputs: list[str]
    output_dir: str
    bands: list[BandSpec]
    limits: Limits
    overviews: list[int] = field(default_factory=list)
    resampler: str = "nearest"
    geotrans: list[float] | None = None
    cs_code: str | None = None
    projection: str | None = None
    x_pixels: int | None = None
    y_pixels: int | None = None
    compression: str = "DEFLATE"
    blocksize: int = 512
    preview_size: int = 256

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> IngestRequest:
        values = dict(data)
        values["bands"] = [BandSpec(**band) for band in data["bands"]]
        values["limits"] = Limits(**data["limits"])
        return cls(**values)


@dataclass
class OutputFile:
    file_index: int
    path: str
    width: int
    height: int
    count: int
    dtype: str


@dataclass
class IngestResult:
    """What ingest derived; the parent stores the files and writes these attributes to the Image."""

    files: list[OutputFile]
    preview_path: str | None
    attributes: dict[str, Any]
    usage: dict[str, Any]
    warnings: list[str]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# ---- small helpers -----------------------------------------------------------------------------------
class _Names:
    """Replaces server paths in GDAL messages with 'file N' so messages never reveal the server layout."""

    def __init__(self, request: IngestRequest):
        self.replacements = [(path, f"file {index}") for index, path in enumerate(request.inputs)]
        self.replacements += [(Path(path).name, f"file {index}") for index, path in enumerate(request.inputs)]
        self.replacements.append((request.output_dir, "output"))
        self.replacements.sort(key=lambda item: -len(item[0]))

    def clean(self, message: str) -> str:
        for path, label in self.replacements:
            message = message.replace(path, label)
        # Anything else that still looks like an absolute path is cut as well.
        message = re.sub(r"(/[\w.\-]+){2,}", "<path>", message)
        return message[:1000]


def sniff(path: str, index: int) -> str:
    """Decide the format from the leading bytes; refuse everything but TIFF, JPEG 2000 and npy."""
    with open(path, "rb") as handle:
        head = handle.read(16)
    if not head:
        raise InvalidRaster(f"file {index} is empty (0 bytes).")
    if head.startswith(TIFF_MAGICS):
        return GTIFF
    if head.startswith(JP2_MAGICS):
        return JP2
    if head.startswith(NPY_MAGIC):
        return NPY
    for magic, what in REFUSED_MAGICS:
        if head.startswith(magic):
            raise InvalidRaster(
                f"file {index} is {what}; only GeoTIFF and JPEG 2000 files (or .npy arrays from "
                "upload_ndarray) can be ingested."
            )
    stripped = head.lstrip()
    if stripped.startswith(b"<"):
        raise InvalidRaster(
            f"file {index} is an XML/text document (such as a GDAL VRT); only GeoTIFF and JPEG "
            "2000 files can be ingested."
        )
    raise InvalidRaster(f"file {index} is not a GeoTIFF or JPEG 2000 file (its leading bytes match neither format).")


def parse_crs(*, cs_code: str | None, projection: str | None) -> CRS | None:
    """The client's coordinate system as a CRS, through explicit constructors only (no file/URL lookups)."""
    try:
        if cs_code:
            authority, code = normalize_cs_code(cs_code).split(":")
            return CRS.from_epsg(int(code)) if authority == "EPSG" else CRS.from_authority(authority, code)
        if projection:
            kind = projection_kind(projection)
            return CRS.from_proj4(projection.strip()) if kind == "proj4" else CRS.from_wkt(projection.strip())
    except InvalidCoordinateSystem as exc:
        raise InvalidRaster(str(exc)) from exc
    except CRSError as exc:
        raise InvalidRaster(f"the coordinate system {cs_code or 'projection'} is not valid: {str(exc)[:200]}") from exc
    return None


def crs_attributes(crs: CRS) -> dict[str, str | None]:
    """cs_code when the CRS has an EPSG/ESRI identity, and always the WKT as `projection`."""
    cs_code = None
    try:
        authority = crs.to_authority(confidence_threshold=70)
    except CRSError:
        authority = None
    if authority and authority[0] in ("EPSG", "ESRI"):
        cs_code = f"{authority[0]}:{authority[1]}"
    return {"cs_code": cs_code, "projection": crs.to_wkt()}


def _check_declared_size(*, index: int, width: int, height: int, count: int, itemsize: int, limits: Limits) -> None:
    if width < 1 or height < 1 or count < 1:
        raise InvalidRaster(f"file {index} declares an empty raster ({width}x{height}, {count} bands).")
    if width > limits.max_dimension or height > limits.max_dimension:
        raise RasterTooLarge(
            f"file {index} declared size is too large: {width}x{height} pixels (limit {limits.max_dimension} per side)."
        )
    if count > limits.max_bands:
        raise RasterTooLarge(f"file {index} declares {count} bands (limit {limits.max_bands}).")
    pixels = width * height * count
    if pixels > limits.max_pixels:
        decoded = pixels * itemsize
        raise RasterTooLarge(
            f"file {index} declared size is too large: {width}x{height}x{count} "
            f"({decoded / 1e9:.1f} GB decoded; limit {limits.max_pixels} pixel values)."
        )


# ---- inspection ----------------------------------------------------------------------------------------
@dataclass
class SourceInfo:
    index: int
    fmt: str
    width: int
    height: int
    count: int
    dtypes: list[str]
    crs: CRS | None
    transform: Affine
    nodata: float | None
    # npy only
    npy_offset: int = 0
    npy_shape: tuple[int, ...] = ()
    npy_fortran: bool = False


def inspect_raster(path: str, index: int, fmt: str, limits: Limits) -> SourceInfo:
    """Open a TIFF/JP2 with its one driver and check what it declares (no pixel is read here)."""
    with rasterio.open(path, driver=fmt) as src:
        dtype = np.dtype(src.dtypes[0]) if src.dtypes else np.dtype("uint8")
        _check_declared_size(
            index=index, width=src.width, height=src.height, count=src.count, itemsize=dtype.itemsize, limits=limits
        )
        return SourceInfo(
            index=index,
            fmt=fmt,
            width=src.width,
            height=src.height,
            count=src.count,
            dtypes=list(src.dtypes),
            crs=src.crs,
            transform=src.transform,
            nodata=src.nodata,
        )


def inspect_npy(path: str, index: int, limits: Limits) -> SourceInfo:
    """Read and check an .npy header; the data is later memory-mapped, never unpickled."""
    size = Path(path).stat().st_size
    with open(path, "rb") as handle:
        try:
            version = np.lib.format.read_magic(handle)
            if version == (1, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(handle, max_header_size=10_000)
            elif version in ((2, 0), (3, 0)):
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(handle, max_header_size=10_000)
            else:
                raise InvalidRaster(f"file {index}: unsupported .npy format version {version}.")
        except InvalidRaster:
            raise
        except (ValueError, OSError, SyntaxError, TypeError) as exc:
            raise InvalidRaster(f"file {index} is not a valid .npy array: {str(exc)[:200]}") from exc
        offset = handle.tell()
    if dtype.hasobject or dtype.fields is not None or dtype.subdtype is not None:
        raise InvalidRaster(f"file {index}: arrays of object or structured dtype are not accepted.")
    if dtype.name not in NUMPY_TO_DATA_TYPE:
        raise InvalidRaster(
            f"file {index}: dtype {dtype.name} is not supported; use one of {', '.join(sorted(NUMPY_TO_DATA_TYPE))}."
        )
    if len(shape) == 2:
        rows, cols, count = shape[0], shape[1], 1
    elif len(shape) == 3:
        rows, cols, count = shape
    else:
        raise InvalidRaster(
            f"file {index}: an array must have shape (rows, cols) or (rows, cols, bands), got {len(shape)} dimensions."
        )
    _check_declared_size(
        index=index, width=int(cols), height=int(rows), count=int(count), itemsize=dtype.itemsize, limits=limits
    )
    expected = offset + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if expected != size:
        raise InvalidRaster(
            f"file {index}: the .npy header declares {shape} {dtype.name} ({expected} bytes) but "
            f"the file has {size} bytes."
        )
    return SourceInfo(
        index=index,
        fmt=NPY,
        width=int(cols),
        height=int(rows),
        count=int(count),
        dtypes=[dtype.name] * int(count),
        crs=None,
        transform=Affine.identity(),
        nodata=None,
        npy_offset=offset,
        npy_shape=tuple(int(v) for v in shape),
        npy_fortran=bool(fortran),
    )


def check_bands(sources: list[SourceInfo], bands: list[BandSpec]) -> None:
    """The files must carry exactly the bands the product declares, with the declared data types."""
    if not bands:
        raise InvalidRaster("the product has no bands; declare its bands before uploading images.")
    by_file: dict[int, list[BandSpec]] = {}
    for band in bands:
        by_file.setdefault(band.file_index, []).append(band)
    for band in bands:
        if band.file_index >= len(sources) or band.file_index < 0:
            raise InvalidRaster(
                f"band {band.name!r} is in file_index {band.file_index}, but the upload has {len(sources)} file(s)."
            )
        source = sources[band.file_index]
        if band.band_index < 0 or band.band_index >= source.count:
            raise InvalidRaster(
                f"band {band.name!r} is band_index {band.band_index} of file {band.file_index}, "
                f"which has {source.count} band(s)."
            )
        actual = source.dtypes[band.band_index]
        expected = DATA_TYPES.get(band.data_type or "")
        if band.data_type and expected != actual:
            raise InvalidRaster(
                f"band {band.name!r} is declared {band.data_type} but file {band.file_index} band "
                f"{band.band_index} is {NUMPY_TO_DATA_TYPE.get(actual, actual)}."
            )
    for source in sources:
        declared = by_file.get(source.index, [])
        if not declared:
            raise InvalidRaster(
                f"file {source.index} matches no band of the product (no band has file_index {source.index})."
            )
        if len(declared) != source.count:
            names = ", ".join(repr(band.name) for band in sorted(declared, key=lambda b: b.band_index))
            raise InvalidRaster(
                f"file {source.index} has {source.count} band(s) but the product declares "
                f"{len(declared)} for it (file_index {source.index}): {names}."
            )


def _nodata_for(source_index: int, bands: list[BandSpec]) -> float | None:
    for band in sorted(bands, key=lambda b: b.band_index):
        if band.file_index == source_index and band.nodata is not None:
            return band.nodata
    return None


# ---- georeferencing ------------------------------------------------------------------------------------
def resolve_georeferencing(request: IngestRequest, sources: list[SourceInfo]) -> tuple[CRS, Affine]:
    """File uploads: the file's CRS and transform (client values must agree). ndarrays: the client's."""
    declared_crs = parse_crs(cs_code=request.cs_code, projection=request.projection)
    first = sources[0]
    if request.upload_type == "ndarray":
        if declared_crs is None:
            raise InvalidRaster("an ndarray upload needs cs_code or projection (or raster_meta).")
        if not request.geotrans or len(request.geotrans) != 6:
            raise InvalidRaster("an ndarray upload needs geotrans (six numbers) or raster_meta.")
        if not all(math.isfinite(value) for value in request.geotrans):
            raise InvalidRaster("geotrans must contain finite numbers.")
        transform = Affine.from_gdal(*request.geotrans)
        if transform.determinant == 0:
            raise InvalidRaster("geotrans is degenerate (zero pixel size).")
        crs = declared_crs
    else:
        for source in sources:
            if source.crs is None:
                raise InvalidRaster(f"file {source.index} is not georeferenced: it has no coordinate reference system.")
            if source.transform.is_identity or source.transform.determinant == 0:
                raise InvalidRaster(f"file {source.index} is not georeferenced: it has no geotransform.")
        crs, transform = first.crs, first.transform
        if declared_crs is not None and declared_crs != crs:
            given = request.cs_code or "projection"
            raise InvalidRaster(
                f"{given} does not agree with the coordinate system of file 0 "
                f"({crs_attributes(crs)['cs_code'] or 'a custom CRS'}); remove it from the image "
                "or fix the file."
            )
        if request.geotrans is not None:
            given = Affine.from_gdal(*request.geotrans)
            if not given.almost_equals(transform, precision=1e-6):
                raise InvalidRaster("geotrans does not agree with the geotransform of file 0.")
    for key, actual in (("x_pixels", first.width), ("y_pixels", first.height)):
        given = getattr(request, key)
        if given is not None and given != actual:
            raise InvalidRaster(f"{key} is {given} but the data is {actual} pixels.")
    for source in sources[1:]:
        if request.upload_type == "ndarray":
            if (source.width, source.height) != (first.width, first.height):
                raise InvalidRaster(
                    f"array {source.index} is {source.height}x{source.width} but array 0 is "
                    f"{first.height}x{first.width}; all arrays of an image share one grid."
                )
            continue
        if source.crs != crs:
            raise InvalidRaster(f"file {source.index} has a different coordinate system than file 0.")
        bounds0 = _bounds(first.transform, first.width, first.height)
        bounds = _bounds(source.transform, source.width, source.height)
        tolerance = max(abs(source.transform.a), abs(source.transform.e), abs(transform.a), abs(transform.e))
        if any(abs(a - b) > tolerance for a, b in zip(bounds0, bounds, strict=True)):
            raise InvalidRaster(f"file {source.index} does not cover the same area as file 0.")
    return crs, transform


def _bounds(transform: Affine, width: int, height: int) -> tuple[float, float, float, float]:
    xs, ys = zip(*(transform @ corner for corner in ((0, 0), (width, 0), (width, height), (0, height))), strict=True)
    return min(xs), min(ys), max(xs), max(ys)


# ---- conversion ----------------------------------------------------------------------------------------
# Uncompressed intermediates up to this size stay in memory (/vsimem); larger ones go to the job directory.
MEMORY_INTERMEDIATE_BYTES = 512 * 1024 * 1024


@dataclass(frozen=True)
class Grid:
    width: int
    height: int
    count: int
    dtype: str
    crs: CRS
    transform: Affine
    nodata: float | None


def write_cog(
    *, out_path: str, grid: Grid, request: IngestRequest, read_block, read_mask=None, colorinterp=None
) -> None:
    """Lay out a COG with exactly the requested overviews, decoding the source once.

    The rio-cogeo recipe (measured faster than GDAL's COG driver here, see bench/README.md): copy the
    source block by block into an uncompressed tiled intermediate, build the overviews on it, then copy
    it with COPY_SRC_OVERVIEWS=YES, which writes the cloud-optimized layout and compresses once.
    `read_block(window)` returns (bands, rows, cols); `read_mask(window)` an internal mask, if any.
    """
    itemsize = np.dtype(grid.dtype).itemsize
    profile = {
        "driver": "GTiff",
        "width": grid.width,
        "height": grid.height,
        "count": grid.count,
        "dtype": grid.dtype,
        "crs": grid.crs,
        "transform": grid.transform,
        "nodata": grid.nodata,
        "tiled": True,
        "blockxsize": request.blocksize,
        "blockysize": request.blocksize,
        "interleave": "pixel",
        "bigtiff": "IF_SAFER",
    }
    decoded = grid.width * grid.height * grid.count * itemsize
    resampling = RESAMPLERS.get(request.resampler, Resampling.nearest)
    overviews = [factor for factor in sorted(set(request.overviews)) if factor <= max(grid.width, grid.height)]
    with ExitStack() as stack:
        if decoded <= MEMORY_INTERMEDIATE_BYTES:
            tmp = stack.enter_context(stack.enter_context(MemoryFile()).open(**profile))
        else:
            intermediate = str(Path(out_path).with_suffix(".intermediate.tif"))
            stack.callback(lambda: Path(intermediate).unlink(missing_ok=True))
            tmp = stack.enter_context(rasterio.open(intermediate, "w", **profile))
        for _, window in tmp.block_windows(1):
            tmp.write(read_block(window), window=window)
            if read_mask is not None:
                tmp.write_mask(read_mask(window), window=window)
        if colorinterp is not None:
            tmp.colorinterp = colorinterp
        if overviews:
            tmp.build_overviews(overviews, resampling)
            tmp.update_tags(OVERVIEW_RESAMPLING=resampling.name.upper())
        rasterio.shutil.copy(
            tmp,
            out_path,
            driver="GTiff",
            copy_src_overviews=True,
            tiled=True,
            blockxsize=request.blocksize,
            blockysize=request.blocksize,
            compress=request.compression,
            interleave="pixel",
            bigtiff="IF_SAFER",
        )


def cog_from_raster(path: str, fmt: str, out_path: str, request: IngestRequest) -> None:
    with rasterio.open(path, driver=fmt) as src:
        grid = Grid(
            width=src.width,
            height=src.height,
            count=src.count,
            dtype=src.dtypes[0],
            crs=src.crs,
            transform=src.transform,
            nodata=src.nodata,
        )
        flags = src.mask_flag_enums[0] if src.count else []
        internal_mask = MaskFlags.per_dataset in flags and not ({MaskFlags.alpha, MaskFlags.nodata} & set(flags))
        write_cog(
            out_path=out_path,
            grid=grid,
            request=request,
            read_block=lambda window: src.read(window=window),
            read_mask=(lambda window: src.dataset_mask(window=window)) if internal_mask else None,
            colorinterp=src.colorinterp,
        )


def cog_from_npy(
    path: str,
    source: SourceInfo,
    out_path: str,
    request: IngestRequest,
    *,
    crs: CRS,
    transform: Affine,
    nodata: float | None,
) -> None:
    """A memory-mapped (rows, cols[, bands]) array to a COG, a block at a time (never loaded whole)."""
    array = np.load(path, mmap_mode="r", allow_pickle=False)
    if array.ndim == 2:
        array = array[:, :, np.newaxis]
    grid = Grid(
        width=source.width,
        height=source.height,
        count=source.count,
        dtype=array.dtype.name,
        crs=crs,
        transform=transform,
        nodata=nodata,
    )

    def read_block(window: Window) -> np.ndarray:
        rows = slice(window.row_off, window.row_off + window.height)
        cols = slice(window.col_off, window.col_off + window.width)
        return np.ascontiguousarray(np.moveaxis(array[rows, cols], -1, 0))

    write_cog(out_path=out_path, grid=grid, request=request, read_block=read_block)


# ---- derived attributes --------------------------------------------------------------------------------
@dataclass
class Sample:
    valid: np.ndarray  # bool (rows, cols) on the stats grid
    data: np.ndarray  # (bands, rows, cols) on the stats grid
    transform: Affine  # of the stats grid


def sample(cog_path: str, *, nodata: float | None) -> Sample:
    """Read the COG on a grid of at most STATS_GRID pixels per side (through its overviews when present)."""
    with rasterio.open(cog_path, driver="GTiff") as src:
        scale = max(src.width / STATS_GRID, src.height / STATS_GRID, 1.0)
        rows, cols = max(1, round(src.height / scale)), max(1, round(src.width / scale))
        data = src.read(out_shape=(src.count, rows, cols), resampling=Resampling.nearest)
        effective = nodata if nodata is not None else src.nodata
        if effective is not None:
            if isinstance(effective, float) and math.isnan(effective):
                valid = np.any(~np.isnan(data), axis=0)
            else:
                valid = np.any(data != np.asarray(effective, dtype=data.dtype), axis=0)
                if np.issubdtype(data.dtype, np.floating):
                    valid &= np.any(~np.isnan(data), axis=0)
        else:
            valid = src.dataset_mask(out_shape=(rows, cols)) > 0
        grid = src.transform @ Affine.scale(src.width / cols, src.height / rows)
    return Sample(valid=valid, data=data, transform=grid)


def _rdp(points: np.ndarray, tolerance: float) -> np.ndarray:
    """Ramer–Douglas–Peucker on an open polyline (iterative, numpy)."""
    if len(points) < 3:
        return points
    keep = np.zeros(len(points), dtype=bool)
    keep[0] = keep[-1] = True
    stack = [(0, len(points) - 1)]
    while stack:
        start, end = stack.pop()
        if end - start < 2:
            continue
        a, b = points[start], points[end]
        segment = b - a
        length = float(np.hypot(*segment))
        inner = points[start + 1 : end]
        if length == 0:
            distances = np.hypot(*(inner - a).T)
        else:
            distances = np.abs(segment[0] * (inner[:, 1] - a[1]) - segment[1] * (inner[:, 0] - a[0])) / length
        farthest = int(np.argmax(distances))
        if distances[farthest] > tolerance:
            index = start + 1 + farthest
            keep[index] = True
            stack.extend([(start, index), (index, end)])
    return points[keep]


def outline_rings(valid: np.ndarray) -> list[np.ndarray]:
    """Rings (pixel coordinates of `valid`) around the valid rows: one y-monotone polygon per run of rows.

    Each row contributes its leftmost and rightmost valid pixel, which follows rotated and irregular
    scene edges closely and can never produce a self-intersecting ring.
    """
    rows_with_data = np.flatnonzero(valid.any(axis=1))
    if rows_with_data.size == 0:
        return []
    left = np.argmax(valid, axis=1)
    right = valid.shape[1] - np.argmax(valid[:, ::-1], axis=1)
    runs = np.split(rows_with_data, np.flatnonzero(np.diff(rows_with_data) > 1) + 1)
    rings = []
    for run in runs:
        top, bottom = int(run[0]), int(run[-1]) + 1
        left_chain = []
        right_chain = []
        for row in run:
            left_chain += [(left[row], row), (left[row], row + 1)]
            right_chain += [(right[row], row), (right[row], row + 1)]
        left_points = _rdp(np.asarray(left_chain, dtype=float), 1.5)
        right_points = _rdp(np.asarray(right_chain, dtype=float), 1.5)[::-1]
        ring = np.vstack([left_points, right_points, left_points[:1]])
        if bottom - top >= 1 and len(ring) >= 4:
            rings.append(ring)
    return rings


def _densify(ring: np.ndarray, step: float) -> np.ndarray:
    out = []
    for start, end in zip(ring[:-1], ring[1:], strict=True):
        length = float(np.hypot(*(end - start)))
        pieces = max(1, math.ceil(length / step))
        for t in np.arange(pieces) / pieces:
            out.append(start + (end - start) * t)
    out.append(ring[-1])
    return np.asarray(out)


def _unwrap_longitudes(lons: np.ndarray) -> np.ndarray:
    out = lons.copy()
    offset = 0.0
    for index in range(1, len(out)):
        delta = lons[index] + offset - out[index - 1]
        if delta > 180:
            offset -= 360
        elif delta < -180:
            offset += 360
        out[index] = lons[index] + offset
    return out


WGS84 = CRS.from_epsg(4326)


def _to_lonlat(crs: CRS, xs: np.ndarray, ys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Reproject points; points outside the projection's domain come back as NaN instead of failing."""
    try:
        lons, lats = warp_transform(crs, WGS84, list(xs), list(ys))
        return np.asarray(lons, dtype=float), np.asarray(lats, dtype=float)
    except (RasterioError, CPLE_BaseError):
        lons, lats = np.full(len(xs), np.nan), np.full(len(xs), np.nan)
        for index, (x, y) in enumerate(zip(xs, ys, strict=True)):
            try:
                (lon,), (lat,) = warp_transform(crs, WGS84, [x], [y])
            except (RasterioError, CPLE_BaseError):
                continue
            lons[index], lats[index] = lon, lat
        return lons, lats


def _ring_to_lonlat(ring_px: np.ndarray, grid: Affine, crs: CRS) -> list[list[float]] | None:
    xs, ys = grid @ (ring_px[:, 0], ring_px[:, 1])
    is_wgs84 = crs == WGS84
    if is_wgs84:
        lons, lats = np.asarray(xs, dtype=float), np.asarray(ys, dtype=float)
    else:
        lons, lats = _to_lonlat(crs, np.asarray(xs, dtype=float), np.asarray(ys, dtype=float))
    finite = np.isfinite(lons) & np.isfinite(lats) & (np.abs(lats) <= 90.0 + 1e-9)
    if finite.sum() < 4:
        return None
    lons, lats = lons[finite], np.clip(lats[finite], -90, 90)
    if not is_wgs84:
        lons = _unwrap_longitudes(lons)
    closing = lons[-1] - lons[0]
    if abs(closing) > 180:  # the ring goes round a pole: close it over the pole
        pole = 90.0 if lats.mean() > 0 else -90.0
        lons = np.concatenate([lons, [lons[-1], lons[0]]])
        lats = np.concatenate([lats, [pole, pole]])
    if abs(lons[-1] - lons[0]) > 1e-12 or abs(lats[-1] - lats[0]) > 1e-12:
        lons, lats = np.append(lons, lons[0]), np.append(lats, lats[0])
    if lons.min() < -180 - 1e-9 or lons.max() > 180 + 1e-9:
        # Crossing the antimeridian: keep the ring continuous east of -180; the catalog splits it.
        if lons.min() < -180:
            lons = lons + 360
    return [[round(float(x), 9), round(float(y), 9)] for x, y in zip(lons, lats, strict=True)]


def footprint(valid: np.ndarray, grid: Affine, crs: CRS, *, use_valid: bool = True) -> dict[str, Any]:
    """GeoJSON (EPSG:4326) footprint of the valid data, or of the bounds when nothing/everything is valid."""
    mask = valid
    if use_valid and mask.any() and not mask.all():
        step_rows = max(1, math.ceil(mask.shape[0] / FOOTPRINT_ROWS))
        step_cols = max(1, math.ceil(mask.shape[1] / FOOTPRINT_ROWS))
        reduced = mask[::step_rows, ::step_cols] if (step_rows > 1 or step_cols > 1) else mask
        reduced_grid = grid @ Affine.scale(mask.shape[1] / reduced.shape[1], mask.shape[0] / reduced.shape[0])
        rings = outline_rings(reduced)
        polygons = []
        for ring in rings:
            step = max(reduced.shape) / 32
            lonlat = _ring_to_lonlat(_densify(ring, step), reduced_grid, crs)
            if lonlat is not None:
                polygons.append([lonlat])
        if polygons:
            total = sum(len(p[0]) for p in polygons)
            if total <= MAX_FOOTPRINT_VERTICES:
                if len(polygons) == 1:
                    return {"type": "Polygon", "coordinates": polygons[0]}
                return {"type": "MultiPolygon", "coordinates": polygons}
    rows, cols = valid.shape
    box = np.asarray([(0, 0), (cols, 0), (cols, rows), (0, rows), (0, 0)], dtype=float)
    lonlat = _ring_to_lonlat(_densify(box, max(rows, cols) / 32), grid, crs)
    if lonlat is None and valid.any():
        # Bounds that leave the projection's valid area (geostationary disks): fall back to valid rows.
        rings = outline_rings(valid)
        lonlat = _ring_to_lonlat(_densify(rings[0], max(rows, cols) / 32), grid, crs) if rings else None
    if lonlat is None:
        raise InvalidRaster(
            "the image footprint cannot be expressed in longitude/latitude (its corners lie "
            "outside the coordinate system's valid area)."
        )
    return {"type": "Polygon", "coordinates": [lonlat]}


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def encode_png(pixels: np.ndarray) -> bytes:
    """A minimal PNG encoder for (rows, cols, 2|4) uint8 arrays (grey+alpha or RGBA)."""
    rows, cols, channels = pixels.shape
    color_type = {2: 4, 4: 6}[channels]
    raw = b"".join(b"\x00" + pixels[row].tobytes() for row in range(rows))
    header = struct.pack(">IIBBBBB", cols, rows, 8, color_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", zlib.compress(raw, 6))
        + _png_chunk(b"IEND", b"")
    )


def preview_png(result: Sample, *, size: int, alpha_band: int | None) -> bytes:
    """A small picture of the image: the first three (non-alpha) bands as RGB, or the first as grey."""
    data, valid = result.data, result.valid
    step = max(1, math.ceil(max(valid.shape) / size))
    data, valid = data[:, ::step, ::step], valid[::step, ::step]
    band_indexes = [index for index in range(data.shape[0]) if index != alpha_band]
    chosen = band_indexes[:3] if len(band_indexes) >= 3 else band_indexes[:1]
    channels = []
    for index in chosen:
        band = data[index].astype("float64")
        values = band[valid & np.isfinite(band)]
        if values.size:
            low, high = np.percentile(values, [2, 98])
        else:
            low, high = 0.0, 1.0
        if high <= low:
            high = low + 1
        scaled = np.clip((band - low) / (high - low) * 255, 0, 255)
        channels.append(np.nan_to_num(scaled).astype("uint8"))
    alpha = np.where(valid, 255, 0).astype("uint8")
    pixels = np.dstack([*channels, alpha])
    return encode_png(pixels)


# ---- the whole job ---------------------------------------------------------------------------------------
def _alpha_band(bands: list[BandSpec], file_index: int) -> int | None:
    for band in bands:
        if band.file_index == file_index and band.is_alpha:
            return band.band_index
    return None


def run(request: IngestRequest) -> IngestResult:
    """Validate, convert and describe an upload. Raises InvalidRaster for anything the user can fix."""
    started = time.perf_counter()
    names = _Names(request)
    try:
        return _run(request, started)
    except InvalidRaster as exc:
        raise type(exc)(names.clean(str(exc))) from None
    except CPLE_OutOfMemoryError as exc:
        raise OutOfMemory(
            f"decoding the file needs more memory than the ingest limit: {names.clean(str(exc))}"
        ) from None
    except (RasterioError, CPLE_BaseError) as exc:
        raise InvalidRaster(f"the file could not be read: {names.clean(_gdal_message(exc))}") from None


def _gdal_message(exc: BaseException) -> str:
    """rasterio wraps GDAL's own error ("Read failed. See previous exception"): report GDAL's words."""
    seen = exc
    for _ in range(5):
        cause = seen.__cause__ or seen.__context__
        if cause is None:
            break
        seen = cause
        if isinstance(seen, CPLE_BaseError):
            return str(seen)
    return str(exc)


def _run(request: IngestRequest, started: float) -> IngestResult:
    if not request.inputs:
        raise InvalidRaster("the upload has no files.")
    expected = "npy" if request.upload_type == "ndarray" else "raster"
    sources: list[SourceInfo] = []
    for index, path in enumerate(request.inputs):
        size = Path(path).stat().st_size
        if size > request.limits.max_file_bytes:
            raise RasterTooLarge(f"file {index} is {size} bytes (limit {request.limits.max_file_bytes}).")
        fmt = sniff(path, index)
        if expected == "npy" and fmt != NPY:
            raise InvalidRaster(f"file {index} of an ndarray upload is not an .npy array.")
        if expected == "raster" and fmt == NPY:
            raise InvalidRaster(f"file {index} is an .npy array; upload arrays with upload_ndarray.")
        sources.append(
            inspect_npy(path, index, request.limits) if fmt == NPY else inspect_raster(path, index, fmt, request.limits)
        )
    check_bands(sources, request.bands)
    crs, transform = resolve_georeferencing(request, sources)

    outputs: list[OutputFile] = []
    out_dir = Path(request.output_dir)
    decoded_bytes = 0
    for source, path in zip(sources, request.inputs, strict=True):
        out_path = str(out_dir / f"file-{source.index}.tif")
        nodata = _nodata_for(source.index, request.bands)
        if source.fmt == NPY:
            cog_from_npy(path, source, out_path, request, crs=crs, transform=transform, nodata=nodata)
        else:
            cog_from_raster(path, source.fmt, out_path, request)
        decoded_bytes += source.width * source.height * source.count * np.dtype(source.dtypes[0]).itemsize
        outputs.append(
            OutputFile(
                file_index=source.index,
                path=out_path,
                width=source.width,
                height=source.height,
                count=source.count,
                dtype=source.dtypes[0],
            )
        )

    first = outputs[0]
    grid_sample = sample(first.path, nodata=_nodata_for(0, request.bands))
    geometry = footprint(grid_sample.valid, grid_sample.transform, crs)
    fill_fraction = float(grid_sample.valid.mean()) if grid_sample.valid.size else 0.0
    preview_path = str(out_dir / "preview.png")
    Path(preview_path).write_bytes(
        preview_png(grid_sample, size=request.preview_size, alpha_band=_alpha_band(request.bands, 0))
    )

    bits_per_pixel: list[float] = []
    for output in outputs:
        stored_bits = Path(output.path).stat().st_size * 8
        per_band = stored_bits / (output.width * output.height * output.count)
        bits_per_pixel.extend([round(per_band, 6)] * output.count)
    attributes: dict[str, Any] = {
        **crs_attributes(crs),
        "geotrans": list(transform.to_gdal()),
        "x_pixels": first.width,
        "y_pixels": first.height,
        "geometry": geometry,
        "fill_fraction": round(fill_fraction, 6),
        "bits_per_pixel": bits_per_pixel,
    }
    usage = {
        "seconds": round(time.perf_counter() - started, 3),
        "decoded_bytes": decoded_bytes,
        "pixels": sum(o.width * o.height * o.count for o in outputs),
        "files": len(outputs),
    }
    return IngestResult(files=outputs, preview_path=preview_path, attributes=attributes, usage=usage, warnings=[])
