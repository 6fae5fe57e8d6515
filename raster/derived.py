"""Pixel functions of the derived bands (protocol §8, §8.1), evaluated on the fly by the raster service.

A derived band is either a `derived:<name>` id of the standard set (1.x/2.x clients) or an ordinary product
band whose `derived_params` name a function and its source bands (3.x). Both end here: a function gets the
source bands in *physical* units (a band's data_range mapped onto its physical_range; identity when the band
declares no physical_range), returns physical values, and `encode()` maps them onto the derived band's
data_range in its data type — e.g. `ndi_uint16`: NDI in [-1, 1] ↔ 0..65535.

The client documents none of the formulas; they follow the protocol notes' inference:

* `ndi_uint16(a, b)` = (a − b) / (a + b), masked where a + b = 0;
* `evi_uint16(blue, red, nir)` = 2.5 (nir − red) / (nir + 6 red − 7.5 blue + 1), clipped to [-1, 1];
* `bai_uint16(red, nir)` = 1 / ((0.1 − red)² + (0.06 − nir)²): unbounded, so its UInt16 encoding is the index
  itself, rounded and saturated at 65535 (the declared [-1, 1] physical range cannot describe it);
* `sqrt(red)` = √red (negative inputs masked);
* `visual_cloud_mask(red, green, blue)` = 1 where a pixel looks like cloud — bright and grey — else 0: with
  each band as a 0..1 fraction of its display range, mean ≥ 0.3, green ≥ 0.25 and spread (max − min) ≤ 15 %
  of the mean.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from .scaling import convert, output_dtype

Array = np.ndarray


@dataclass(frozen=True)
class PixelFunction:
    name: str
    arity: int
    compute: Callable[..., tuple[Array, Array]]  # (physical inputs...) -> (physical values, extra mask)
    data_type: str  # default encoding when the band does not declare one
    data_range: tuple[float, float]
    physical_range: tuple[float, float] | None
    normalised_inputs: bool = False  # inputs as 0..1 of their display range instead of physical units
    encode_identity: bool = False  # the physical value *is* the encoded value (saturating)


def _ndi(a: Array, b: Array) -> tuple[Array, Array]:
    total = a + b
    invalid = total == 0
    with np.errstate(divide="ignore", invalid="ignore"):
        values = np.where(invalid, 0.0, (a - b) / np.where(invalid, 1.0, total))
    return values, invalid


def _evi(blue: Array, red: Array, nir: Array) -> tuple[Array, Array]:
    denominator = nir + 6.0 * red - 7.5 * blue + 1.0
    invalid = denominator == 0
    with np.errstate(divide="ignore", invalid="ignore"):
        values = np.where(invalid, 0.0, 2.5 * (nir - red) / np.where(invalid, 1.0, denominator))
    return np.clip(values, -1.0, 1.0), invalid


def _bai(red: Array, nir: Array) -> tuple[Array, Array]:
    denominator = (0.1 - red) ** 2 + (0.06 - nir) ** 2
    invalid = denominator == 0
    with np.errstate(divide="ignore", invalid="ignore"):
        values = np.where(invalid, 0.0, 1.0 / np.where(invalid, 1.0, denominator))
    return values, invalid


def _sqrt(red: Array) -> tuple[Array, Array]:
    invalid = red < 0
    return np.sqrt(np.where(invalid, 0.0, red)), invalid


def _visual_cloud_mask(red: Array, green: Array, blue: Array) -> tuple[Array, Array]:
    stacked = np.stack([red, green, blue])
    mean = stacked.mean(axis=0)
    spread = stacked.max(axis=0) - stacked.min(axis=0)
    cloudy = (mean >= 0.3) & (spread <= 0.15 * np.maximum(mean, 1e-12)) & (green >= 0.25)
    return cloudy.astype(np.float64), np.zeros(red.shape, dtype=bool)


FUNCTIONS: dict[str, PixelFunction] = {
    function.name: function
    for function in (
        PixelFunction("ndi_uint16", 2, _ndi, "UInt16", (0.0, 65535.0), (-1.0, 1.0)),
        PixelFunction("evi_uint16", 3, _evi, "UInt16", (0.0, 65535.0), (-1.0, 1.0)),
        PixelFunction("bai_uint16", 2, _bai, "UInt16", (0.0, 65535.0), None, encode_identity=True),
        PixelFunction("sqrt", 1, _sqrt, "Float64", (0.0, 1000.0), (0.0, 1.0)),
        PixelFunction(
            "visual_cloud_mask",
            3,
            _visual_cloud_mask,
            "UInt16",
            (0.0, 1.0),
            None,
            normalised_inputs=True,
            encode_identity=True,
        ),
    )
}


def to_physical(values: Array, *, data_range: Sequence[float] | None, physical_range: Sequence[float] | None) -> Array:
    """A source band's stored values in physical units (float64); identity without a physical_range."""
    values = values.astype(np.float64)
    if not physical_range or not data_range or tuple(physical_range) == tuple(data_range):
        return values
    d0, d1 = data_range
    p0, p1 = physical_range
    if d1 == d0:
        return np.full(values.shape, float(p0))
    return (values - d0) * ((p1 - p0) / (d1 - d0)) + p0


def normalised(values: Array, *, display_range: Sequence[float] | None) -> Array:
    """Values as a 0..1 fraction of their display range (for the functions that judge looks, not physics)."""
    values = values.astype(np.float64)
    if not display_range or display_range[1] == display_range[0]:
        return values
    low, high = display_range
    return (values - low) / (high - low)


def evaluate(
    function: PixelFunction,
    inputs: Sequence[Array],
    input_masks: Sequence[Array],
    *,
    data_type: str | None,
    data_range: Sequence[float] | None,
    physical_range: Sequence[float] | None,
) -> tuple[Array, Array]:
    """Run `function` on prepared inputs and encode the result; returns (values, mask)."""
    mask = np.zeros(inputs[0].shape, dtype=bool)
    for input_mask in input_masks:
        mask |= input_mask
    values, invalid = function.compute(*inputs)
    mask |= invalid
    out_type = data_type or function.data_type
    dtype = output_dtype(out_type)
    if function.encode_identity:
        encoded = values
    else:
        d0, d1 = data_range or function.data_range
        p0, p1 = physical_range or function.physical_range or (d0, d1)
        clipped = np.clip(values, min(p0, p1), max(p0, p1))
        encoded = (clipped - p0) * ((d1 - d0) / (p1 - p0)) + d0 if p1 != p0 else np.full(values.shape, float(d0))
    encoded = np.where(mask, 0, encoded)
    return convert(encoded, dtype), mask
