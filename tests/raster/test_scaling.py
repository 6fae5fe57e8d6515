"""raster.scaling against the client's own scaling_parameters() (seed 002), and GDAL-style application."""

from __future__ import annotations

import numpy as np
import pytest
from descarteslabs.core.catalog import scaling as client_scaling

from raster import scaling


class ClientBand:
    """What the client's properties_for_band() reads from a Band."""

    def __init__(self, props: scaling.BandProperties, raw: dict):
        self.type = props.band_type
        self.data_type = raw.get("data_type")
        self.data_range = raw.get("data_range")
        self.display_range = raw.get("display_range")
        self.physical_range = raw.get("physical_range")
        self.processing_levels = None


BANDS = {
    "red": {
        "band_type": "spectral",
        "data_type": "UInt16",
        "data_range": [0, 10000],
        "display_range": [0, 4000],
        "physical_range": [0.0, 1.0],
    },
    "green": {
        "band_type": "spectral",
        "data_type": "UInt16",
        "data_range": [0, 10000],
        "display_range": [0, 4000],
        "physical_range": [0.0, 1.0],
    },
    "byte": {"band_type": "spectral", "data_type": "Byte", "data_range": [0, 255]},
    "legacy": {"band_type": "spectral"},
    "temp": {
        "band_type": "generic",
        "data_type": "Int16",
        "data_range": [-1000, 1000],
        "physical_range": [-100.0, 100.0],
    },
    "alpha": {"band_type": "mask", "data_type": "Byte", "data_range": [0, 1]},
    "cls": {"band_type": "class", "data_type": "Byte", "data_range": [0, 255]},
    "f32": {"band_type": "generic", "data_type": "Float32", "data_range": [0.0, 1.0]},
}

CASES = [
    (["red", "green"], None, None),
    (["red", "byte"], None, None),
    (["red", "temp"], None, None),
    (["red", "green", "alpha"], "display", None),
    (["red", "green", "alpha"], "auto", None),
    (["red", "green"], "physical", None),
    (["red", "green"], "raw", None),
    (["red", "cls"], "display", None),
    (["temp"], "physical", None),
    (["legacy"], "display", None),
    (["red", "green"], [(0, 1000), (0, 2000)], None),
    (["red", "green"], [(0, 1000, 0, 10), ("10%", "90%")], None),
    (["red", "green"], [("0%", "100%", "0%", "50%"), ("0%", "100%", "0%", "100%")], "UInt16"),
    (["red", "green"], [(), ()], None),
    (["red", "green"], [(0.0, 10000.0, 0.0, 1.0), None], None),
    (["red", "green", "alpha"], {"red": (0, 3000), "default_": "display"}, None),
    (["red", "green"], None, "Float32"),
    (["red", "green"], "display", "Float64"),
    (["red", "green"], [(0, 4000), (0, 4000)], "UInt16"),
    (["byte", "f32"], None, None),
    (["red", "f32"], "raw", None),
]


def props(name: str) -> scaling.BandProperties:
    raw = BANDS[name]
    return scaling.BandProperties.of(
        name=name,
        band_type=raw["band_type"],
        data_type=raw.get("data_type"),
        data_range=raw.get("data_range"),
        display_range=raw.get("display_range"),
        physical_range=raw.get("physical_range"),
    )


@pytest.mark.parametrize(("bands", "spec", "data_type"), CASES)
def test_same_result_as_the_client(bands, spec, data_type):
    ours = scaling.scaling_parameters(bands=[props(b) for b in bands], scaling=spec, data_type=data_type)
    client_bands = {b: ClientBand(props(b), BANDS[b]) for b in bands}
    theirs = client_scaling.scaling_parameters(client_bands, bands, None, spec, data_type)
    assert ours[1] == theirs[1]
    assert (ours[0] is None) == (theirs[0] is None)
    if ours[0] is not None:
        assert [tuple(s) if s is not None else None for s in ours[0]] == [
            tuple(s) if s is not None else None for s in theirs[0]
        ]


@pytest.mark.parametrize(
    ("bands", "spec", "data_type"),
    [
        (["red", "green"], "fancy", None),
        (["red", "green"], [(0, 1, 2)], None),
        (["red", "green"], [None], None),
        (["red", "green"], ["display", "physical"], None),
        (["red"], [("ten%", "90%")], None),
        (["red"], None, "Int8"),
        # all-percentage outputs leave neither a mode nor a data type to infer
        (["red", "green"], [("0%", "100%", "0%", "50%"), ("0%", "100%", "0%", "100%")], None),
    ],
)
def test_errors_like_the_client(bands, spec, data_type):
    client_bands = {b: ClientBand(props(b), BANDS[b]) for b in bands}
    with pytest.raises(ValueError):
        client_scaling.scaling_parameters(client_bands, bands, None, spec, data_type)
    with pytest.raises(scaling.ScalingError):
        scaling.scaling_parameters(bands=[props(b) for b in bands], scaling=spec, data_type=data_type)


@pytest.mark.parametrize(
    "types",
    [
        ["Byte", "UInt16"],
        ["UInt16", "Int16"],
        ["Byte", "Int16", "Float32"],
        ["UInt32", "Int16"],
        ["Float32", "Float64"],
        ["Int16"],
        ["Byte", "Float64"],
    ],
)
def test_common_data_type_is_the_cast_table(types):
    assert scaling.common_data_type(types) == client_scaling.common_data_type(types)


def test_common_data_type_follows_the_documented_table_where_the_client_slips():
    # The client writes ("Float64") — a string, not a tuple — for UInt32's casts, so it finds no common type
    # for Int32 + UInt32; the documented table (UInt32 → Float64, Int32 → Float64) says Float64.
    assert client_scaling.common_data_type(["Int32", "UInt32"]) is None
    assert scaling.common_data_type(["Int32", "UInt32"]) == "Float64"


def test_apply_scale_is_multiply_add_round_and_clip():
    values = np.array([[0, 50, 100, 200, 255]], dtype=np.uint8)
    mask = np.zeros(values.shape, dtype=bool)
    out = scaling.apply_scale(values, mask, (0.0, 100.0, 0.0, 255.0), "Byte")
    assert out.dtype == np.uint8 and out.tolist() == [[0, 127, 255, 255, 255]]  # 50 × 2.55 = 127.4999…
    halves = scaling.apply_scale(np.array([1, 3, 5]), np.zeros(3, dtype=bool), (0.0, 2.0, 0.0, 1.0), "Byte")
    assert halves.tolist() == [1, 2, 3]  # 0.5, 1.5, 2.5 round half up, like GDAL
    assert scaling.apply_scale(values, mask, (0.0, 255.0), "Byte").tolist() == values.tolist()
    signed = scaling.apply_scale(values, mask, (0.0, 255.0, -1000.0, 1000.0), "Int16")
    assert signed.dtype == np.int16 and signed[0, 0] == -1000 and signed[0, -1] == 1000
    mask[0, 4] = True
    auto = scaling.apply_scale(values, mask, (), "Byte")
    assert auto[0, 3] == 255 and auto[0, 0] == 0  # the valid range 0..200 → 0..255
    float_out = scaling.apply_scale(values, mask, None, "Float64")
    assert float_out.dtype == np.float64 and float_out[0, 1] == 50.0
    clipped = scaling.convert(np.array([-3.6, 70000.2, np.nan]), np.dtype("uint16"))
    assert clipped.tolist() == [0, 65535, 0]
    narrowed = scaling.convert(np.array([40000], dtype=np.uint16), np.dtype("int16"))
    assert narrowed.tolist() == [32767]
