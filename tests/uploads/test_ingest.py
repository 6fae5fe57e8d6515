"""uploads.ingest on its own (in-process, no Django): formats, limits, bands, georeferencing, COGs, footprints."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import rasterio
import shapely
from rasterio.transform import from_origin
from rio_cogeo.cogeo import cog_validate
from shapely.geometry import shape

from tests.uploads.helpers import DATA, npy_bytes
from uploads import ingest
from uploads.validation import InvalidCoordinateSystem, normalize_cs_code, projection_kind, safe_basename

LIMITS = {"max_pixels": 2_000_000_000, "max_dimension": 200_000, "max_bands": 512, "max_file_bytes": 10**10}


def band(name, file_index=0, band_index=0, data_type="Byte", nodata=None, is_alpha=False):
    return {
        "name": name,
        "file_index": file_index,
        "band_index": band_index,
        "data_type": data_type,
        "nodata": nodata,
        "is_alpha": is_alpha,
    }


def rgb(data_type="Byte", nodata=None):
    return [band(name, 0, index, data_type, nodata) for index, name in enumerate(("red", "green", "blue"))]


def run(tmp_path, payloads, bands, **options) -> ingest.IngestResult:
    inputs = []
    for index, payload in enumerate(payloads):
        path = tmp_path / f"upload-{index}"
        if isinstance(payload, Path):
            shutil.copyfile(payload, path)
        else:
            path.write_bytes(payload)
        inputs.append(str(path))
    out = tmp_path / "out"
    out.mkdir(exist_ok=True)
    request = ingest.IngestRequest.from_dict(
        {
            "upload_type": options.pop("upload_type", "file"),
            "inputs": inputs,
            "output_dir": str(out),
            "bands": bands,
            "limits": {**LIMITS, **options.pop("limits", {})},
            **options,
        }
    )
    return ingest.run(request)


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (b"II*\x00rest", ingest.GTIFF),
        (b"MM\x00*rest", ingest.GTIFF),
        (b"II+\x00rest", ingest.GTIFF),
        (b"\x00\x00\x00\x0cjP  \r\n\x87\nrest", ingest.JP2),
        (b"\xff\x4f\xff\x51rest", ingest.JP2),
        (b"\x93NUMPY\x01\x00", ingest.NPY),
    ],
)
def test_sniff_accepts_only_tiff_jp2_and_npy(tmp_path, head, expected):
    path = tmp_path / "f"
    path.write_bytes(head)
    assert ingest.sniff(str(path), 0) == expected


@pytest.mark.parametrize(
    ("head", "message"),
    [
        (b"", "is empty"),
        (b"\xff\xd8\xff\xe0JFIF", "a JPEG image"),
        (b"\x89PNG\r\n\x1a\nxx", "a PNG image"),
        (b"  <VRTDataset>", "XML/text document"),
        (b"PK\x03\x04", "a ZIP archive"),
        (b"GIF89a", "a GIF image"),
        (b"\x00\x01\x02\x03", "leading bytes match neither format"),
    ],
)
def test_sniff_refuses_everything_else_without_quoting_content(tmp_path, head, message):
    path = tmp_path / "f"
    path.write_bytes(head)
    with pytest.raises(ingest.InvalidRaster, match=message) as caught:
        ingest.sniff(str(path), 3)
    assert str(caught.value).startswith("file 3 ")
    assert "VRTDataset" not in str(caught.value)


def test_geotiff_attributes(tmp_path):
    result = run(tmp_path, [DATA / "RGB.byte.tif"], rgb(nodata=0), overviews=[2, 4], resampler="average")
    attributes = result.attributes
    assert attributes["cs_code"] == "EPSG:32618" and "UTM zone 18N" in attributes["projection"]
    assert (attributes["x_pixels"], attributes["y_pixels"]) == (791, 718)
    assert attributes["geotrans"] == pytest.approx(
        [101985.0, 300.0379266750948, 0.0, 2826915.0, 0.0, -300.041782729805]
    )
    assert attributes["fill_fraction"] == pytest.approx(0.6746, abs=0.002)
    assert len(attributes["bits_per_pixel"]) == 3
    footprint = shape(attributes["geometry"])
    assert footprint.is_valid and footprint.geom_type == "Polygon"
    minx, miny, maxx, maxy = footprint.bounds
    assert (minx, miny, maxx, maxy) == pytest.approx((-78.86, 23.62, -76.65, 25.51), abs=0.03)
    # the valid-data footprint of this rotated scene is much smaller than its bounding box
    assert footprint.area / footprint.envelope.area < 0.85
    assert len(footprint.exterior.coords) < 400
    (output,) = result.files
    valid, errors, _ = cog_validate(output.path, quiet=True)
    assert valid, errors
    assert Path(result.preview_path).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert result.usage["pixels"] == 791 * 718 * 3


@pytest.mark.parametrize(
    ("overviews", "resampler"),
    [
        ([], "nearest"),
        ([2], "cubic"),
        ([2, 4, 8], "average"),
        ([3, 9], "mode"),
        ([2, 6], "lanczos"),
        ([4], "gauss"),
        ([2], "cubicspline"),
        ([2, 4], "average_mp"),
        ([2, 4], "average_magphase"),
    ],
)
def test_cog_has_exactly_the_requested_overviews(tmp_path, overviews, resampler):
    result = run(tmp_path, [DATA / "RGB.byte.tif"], rgb(), overviews=overviews, resampler=resampler)
    path = result.files[0].path
    with rasterio.open(path) as cog:
        assert cog.overviews(1) == overviews
    valid, errors, _ = cog_validate(path, quiet=True)
    assert valid, errors


def test_existing_overviews_of_a_cog_input_are_replaced(tmp_path):
    with rasterio.open(DATA / "cogeo.tif") as src:
        assert src.overviews(1)  # the input has its own
    result = run(tmp_path, [DATA / "cogeo.tif"], rgb(), overviews=[2])
    with rasterio.open(result.files[0].path) as cog:
        assert cog.overviews(1) == [2]


@pytest.mark.parametrize("dtype", ["uint8", "int16", "uint16", "int32", "uint32", "float32", "float64"])
@pytest.mark.parametrize("layout", ["2d", "3d"])
def test_ndarray_dtypes_and_layouts(tmp_path, dtype, layout):
    data_type = ingest.NUMPY_TO_DATA_TYPE[dtype]
    bands_data = (np.arange(2 * 40 * 30).reshape(2, 40, 30) % 250).astype(dtype)
    if layout == "2d":
        array, bands = bands_data[0], [band("v", data_type=data_type)]
    else:
        array = np.moveaxis(bands_data, 0, -1)  # what the client sends for (bands, rows, cols)
        bands = [band("a", 0, 0, data_type), band("b", 0, 1, data_type)]
    result = run(
        tmp_path,
        [npy_bytes(array)],
        bands,
        upload_type="ndarray",
        geotrans=[10.0, 0.01, 0.0, 50.0, 0.0, -0.01],
        cs_code="EPSG:4326",
    )
    with rasterio.open(result.files[0].path) as cog:
        assert cog.dtypes[0] == dtype and cog.crs.to_epsg() == 4326
        expected = bands_data[:1] if layout == "2d" else bands_data
        assert np.array_equal(cog.read(), expected)
    assert shape(result.attributes["geometry"]).bounds == pytest.approx((10.0, 49.6, 10.3, 50.0))


def test_fortran_ordered_arrays_are_read_correctly(tmp_path):
    array = np.asfortranarray((np.arange(20 * 10).reshape(20, 10) % 200).astype("uint8"))
    result = run(
        tmp_path,
        [npy_bytes(array)],
        [band("v")],
        upload_type="ndarray",
        geotrans=[0, 1, 0, 0, 0, -1],
        projection="+proj=longlat +datum=WGS84 +no_defs",
    )
    with rasterio.open(result.files[0].path) as cog:
        assert np.array_equal(cog.read(1), array)


def test_ndarray_nodata_comes_from_the_band(tmp_path):
    array = np.zeros((50, 50), dtype="uint16")
    array[10:40, 10:40] = 7
    result = run(
        tmp_path,
        [npy_bytes(array)],
        [band("v", data_type="UInt16", nodata=0)],
        upload_type="ndarray",
        geotrans=[0, 0.1, 0, 0, 0, -0.1],
        cs_code="EPSG:4326",
    )
    assert result.attributes["fill_fraction"] == pytest.approx(900 / 2500, abs=0.01)
    assert shape(result.attributes["geometry"]).bounds == pytest.approx((1.0, -4.0, 4.0, -1.0))
    with rasterio.open(result.files[0].path) as cog:
        assert cog.nodata == 0


@pytest.mark.parametrize(
    ("name", "bands", "check"),
    [
        ("alpha.tif", [*[band(n, 0, i) for i, n in enumerate("rgb")], band("alpha", 0, 3, is_alpha=True)], "pacific"),
        ("world.byte.tif", [band("grey")], "world"),
        ("goes.tif", rgb(), "geostationary"),
        ("all-nodata.tif", [band(n, 0, i, "UInt16") for i, n in enumerate("bgrn")], "empty"),
        ("test_esri_wkt.tif", [band("v", data_type="UInt16")], "esri"),
    ],
)
def test_footprints_of_awkward_rasters(tmp_path, name, bands, check):
    result = run(tmp_path, [DATA / name], bands)
    attributes = result.attributes
    geometry = shape(attributes["geometry"])
    from catalogsite.geo import parse_geometry

    stored = shapely.from_geojson(parse_geometry(attributes["geometry"]).geojson)  # what the catalog keeps
    assert stored.is_valid and -180 <= stored.bounds[0] and stored.bounds[2] <= 180
    if check == "pacific":
        assert 174 < geometry.centroid.x < 176 and -40 < geometry.centroid.y < -39
        assert 0 < attributes["fill_fraction"] < 0.1  # the alpha band masks most of it
    elif check == "world":
        assert geometry.bounds == pytest.approx((-180, -75, 180, 75), abs=1)
        assert attributes["fill_fraction"] == 1.0
    elif check == "geostationary":
        assert attributes["cs_code"] is None and "geos" in attributes["projection"].lower()
        assert geometry.area > 100
    elif check == "empty":
        assert attributes["fill_fraction"] == 0.0
        assert geometry.area > 0  # nothing valid: the footprint of the bounds
    else:
        assert attributes["cs_code"] == "ESRI:102039"


def test_a_scene_crossing_the_antimeridian_is_split(tmp_path):
    path = tmp_path / "crossing.tif"
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=100,
        height=50,
        count=1,
        dtype="uint8",
        crs="EPSG:32660",
        transform=from_origin(700000, 5000000, 3000, 3000),
    ) as dst:  # UTM 60N, east edge past 180
        dst.write(np.ones((1, 50, 100), dtype="uint8"))
    result = run(tmp_path, [path], [band("v")])
    from catalogsite.geo import parse_geometry

    stored = shapely.from_geojson(parse_geometry(result.attributes["geometry"]).geojson)
    assert stored.geom_type == "MultiPolygon"
    assert stored.bounds[0] == pytest.approx(-180, abs=1e-6) and stored.bounds[2] == pytest.approx(180, abs=1e-6)


@pytest.mark.parametrize(
    ("cs_code", "projection", "error"),
    [
        ("EPSG:4326", None, "does not agree"),
        (None, "+proj=longlat +datum=WGS84 +no_defs", "does not agree"),
        ("EPSG:99999999", None, "not valid"),
    ],
)
def test_client_crs_must_agree_with_the_file(tmp_path, cs_code, projection, error):
    with pytest.raises(ingest.InvalidRaster, match=error):
        run(tmp_path, [DATA / "RGB.byte.tif"], rgb(), cs_code=cs_code, projection=projection)


def test_matching_client_crs_is_accepted(tmp_path):
    result = run(tmp_path, [DATA / "RGB.byte.tif"], rgb(), cs_code="EPSG:32618")
    assert result.attributes["cs_code"] == "EPSG:32618"


def test_pixel_counts_the_client_gave_must_match(tmp_path):
    with pytest.raises(ingest.InvalidRaster, match="x_pixels is 10 but the data is 791"):
        run(tmp_path, [DATA / "RGB.byte.tif"], rgb(), x_pixels=10)


def test_limits_are_checked_before_reading(tmp_path):
    with pytest.raises(ingest.RasterTooLarge, match="declared size is too large"):
        run(tmp_path, [DATA / "RGB.byte.tif"], rgb(), limits={"max_pixels": 1000})
    with pytest.raises(ingest.RasterTooLarge, match="per side"):
        run(tmp_path, [DATA / "RGB.byte.tif"], rgb(), limits={"max_dimension": 500})
    with pytest.raises(ingest.RasterTooLarge, match="limit 2"):
        run(tmp_path, [DATA / "RGB.byte.tif"], rgb(), limits={"max_bands": 2})
    with pytest.raises(ingest.RasterTooLarge, match="bytes"):
        run(tmp_path, [DATA / "RGB.byte.tif"], rgb(), limits={"max_file_bytes": 1000})


def test_multi_file_rasters_must_share_the_grid(tmp_path):
    other = tmp_path / "shifted.tif"
    with rasterio.open(DATA / "byte.tif") as src:
        profile = dict(src.profile)
        profile["transform"] = src.transform @ src.transform.translation(50, 0)
        with rasterio.open(other, "w", **profile) as dst:
            dst.write(src.read())
    bands = [band("a", 0, 0), band("b", 1, 0)]
    with pytest.raises(ingest.InvalidRaster, match="file 1 does not cover the same area as file 0"):
        run(tmp_path, [DATA / "byte.tif", other], bands)
    with pytest.raises(ingest.InvalidRaster, match="different coordinate system"):
        run(
            tmp_path,
            [DATA / "byte.tif", DATA / "rgb-byte-tenth.tif"],
            [band("a", 0, 0), *[band(n, 1, i) for i, n in enumerate("xyz")]],
        )


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("EPSG:4326", True),
        ("epsg:32618", True),
        ("ESRI:102039", True),
        ("EPSG:", False),
        ("IGNF:LAMB93", False),
        ("/etc/passwd", False),
        ("EPSG:4326 extra", False),
    ],
)
def test_cs_code_validation(value, ok):
    if ok:
        assert normalize_cs_code(value).split(":")[0] in ("EPSG", "ESRI")
    else:
        with pytest.raises(InvalidCoordinateSystem):
            normalize_cs_code(value)


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        ("+proj=utm +zone=15 +datum=WGS84 +units=m +no_defs", "proj4"),
        (
            'GEOGCS["WGS 84",DATUM["WGS_1984",SPHEROID["WGS 84",6378137,298.257223563]],PRIMEM["Greenwich",0],'
            'UNIT["degree",0.0174532925199433]]',
            "wkt",
        ),
        ("+init=epsg:4326", None),
        ("+proj=longlat +nadgrids=@conus", None),
        ("/etc/passwd", None),
        ("https://example.com/crs.wkt", None),
        ("+proj=longlat +towgs84=$(reboot)", None),
        ("", None),
    ],
)
def test_projection_validation(value, kind):
    if kind:
        assert projection_kind(value) == kind
    else:
        with pytest.raises(InvalidCoordinateSystem):
            projection_kind(value)


def test_client_file_names_are_only_ever_basenames():
    assert safe_basename("/tmp/tmpab12.tif") == "tmpab12.tif"
    assert safe_basename("..\\..\\windows\\evil.tif") == "evil.tif"
    assert safe_basename("/vsicurl/http://x") == "x"
    assert safe_basename("..") == "file"


def test_png_encoder_produces_a_readable_image(tmp_path):
    pixels = np.zeros((3, 4, 4), dtype="uint8")
    pixels[..., 0] = 255
    pixels[..., 3] = 255
    path = tmp_path / "p.png"
    path.write_bytes(ingest.encode_png(pixels))
    with rasterio.open(path, driver="PNG") as png:
        assert (png.width, png.height, png.count) == (4, 3, 4)
        assert png.read(1).tolist() == [[255] * 4] * 3


def test_error_messages_never_name_server_paths(tmp_path):
    truncated = (DATA / "RGB.byte.tif").read_bytes()[:30_000]
    with pytest.raises(ingest.InvalidRaster) as caught:
        run(tmp_path, [truncated], rgb())
    assert str(tmp_path) not in str(caught.value) and "upload-0" not in str(caught.value)


def test_the_result_is_json_for_the_parent(tmp_path):
    result = run(tmp_path, [DATA / "byte.tif"], [band("v")])
    document = json.loads(json.dumps(result.to_dict()))
    assert document["attributes"]["cs_code"] == "EPSG:26711"
    assert document["files"][0]["path"].endswith("file-0.tif")


def test_npy_header_is_read_without_loading_the_data(tmp_path):
    buffer = io.BytesIO()
    np.lib.format.write_array_header_2_0(buffer, {"descr": "<f4", "fortran_order": False, "shape": (10, 10)})
    payload = buffer.getvalue() + np.zeros(100, dtype="<f4").tobytes()
    path = tmp_path / "v2.npy"
    path.write_bytes(payload)
    info = ingest.inspect_npy(str(path), 0, ingest.Limits(**LIMITS))
    assert (info.width, info.height, info.count, info.dtypes) == (10, 10, 1, ["float32"])
