"""Band scaling and output data types, exactly as the client's `scaling_parameters()` defines them (seed 002).

Two halves:

* `scaling_parameters()` resolves a scaling *specification* (None, a mode string, a list or a mapping of
  per-band values) into per-band scales (None, (), (min, max) or (min, max, out_min, out_max)) and an output
  data type. The descarteslabs client does this itself before calling POST /npz, so the server only needs it
  for the plain-HTTP exports and the tiles, which take `scaling=display` like the client methods do. It
  follows the client's rules step by step (explicit modes, modes implied by tuples, data type implied by
  output ranges, percentages of the band's ranges); tests compare it with the client's own function.
* `apply_scale()` performs a resolved scale the way GDAL's translate does for the Raster service: a linear
  map computed in float64, rounded half away from zero for integer outputs, and clipped only to what the
  output data type can hold (the "multiply and add" of the seed: equal input and output ranges are a no-op).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from products.choices import BandType

# Ordered smallest to largest, unsigned before signed, integer before float (the client's order).
DATA_TYPES = ("Byte", "UInt16", "Int16", "UInt32", "Int32", "Float32", "Float64")
NUMPY_TYPES = {
    "Byte": "uint8",
    "UInt16": "uint16",
    "Int16": "int16",
    "UInt32": "uint32",
    "Int32": "int32",
    "Float32": "float32",
    "Float64": "float64",
}
DATA_TYPE_OF_NUMPY = {value: key for key, value in NUMPY_TYPES.items()}
# The cast table of Image.ndarray(): which more general types each type converts to without loss.
CASTS = {
    "Byte": ("UInt16", "Int16", "UInt32", "Int32", "Float32", "Float64"),
    "UInt16": ("UInt32", "Int32", "Float32", "Float64"),
    "Int16": ("Int32", "Float32", "Float64"),
    "UInt32": ("Float64",),
    "Int32": ("Float32", "Float64"),
    "Float32": ("Float64",),
    "Float64": (),
}
# Value ranges of the types; for floats the *default output range* of scaling, not what they can hold.
TYPE_RANGES = {
    "Byte": (0, 255),
    "UInt16": (0, 65535),
    "Int16": (-32768, 32767),
    "UInt32": (0, 4294967295),
    "Int32": (-2147483648, 2147483647),
    "Float32": (0.0, 1.0),
    "Float64": (0.0, 1.0),
}
MODES = ("raw", "display", "auto", "physical")
DISPLAY_FLOAT_MAX = 255.99  # GDAL's upper display bound for float outputs, as the client sends it

Scale = tuple[float, ...] | None


class ScalingError(ValueError):
    """An invalid or contradictory scaling specification; the message says which band and why."""


@dataclass(frozen=True)
class BandProperties:
    """What scaling needs to know about one band, with the client's defaults already applied."""

    name: str
    band_type: str
    data_type: str
    data_range: tuple[float, float]
    display_range: tuple[float, float]
    physical_range: tuple[float, float]

    @classmethod
    def of(
        cls,
        *,
        name: str,
        band_type: str,
        data_type: str | None,
        data_range: Sequence[float] | None,
        display_range: Sequence[float] | None = None,
        physical_range: Sequence[float] | None = None,
    ) -> BandProperties:
        """Band attributes → properties, defaulting like the client: UInt16, [0, 10000], ranges from data_range."""
        data = tuple(data_range) if data_range else (0, 10000)
        return cls(
            name=name,
            band_type=band_type,
            data_type=data_type or "UInt16",
            data_range=data,
            display_range=tuple(display_range) if display_range else data,
            physical_range=tuple(physical_range) if physical_range else data,
        )

    @property
    def is_mask_or_class(self) -> bool:
        return self.band_type in (BandType.MASK, BandType.CLASS)


# ---- resolving a specification ---------------------------------------------------------------------------
@dataclass
class _BandScale:
    """One band's parsed specification: None/mode string (automatic) or a tuple, plus the mode it implies."""

    props: BandProperties
    kind: str  # "none" | "auto" (a mode string) | "tuple"
    mode: str | None
    implied: bool
    value: tuple = ()
    is_pct: tuple[bool, ...] = ()

    def output_range(self) -> tuple[Any, Any]:
        if self.kind == "none":
            return self.props.data_range
        if self.kind == "auto":
            if self.mode == "raw":
                return self.props.data_range
            if self.mode == "physical":
                return self.props.physical_range
            return (0, 255)
        if len(self.value) == 4:
            return (None if self.is_pct[2] else self.value[2], None if self.is_pct[3] else self.value[3])
        return (0, 255)

    def resolve(self, mode: str, data_type: str) -> Scale:
        out_float = data_type.startswith("Float")
        if self.kind == "none":
            return None
        if self.kind == "auto":
            if self.mode == "auto":
                return ()
            if self.mode == "display":
                return (*self.props.display_range, 0, DISPLAY_FLOAT_MAX if out_float else 255)
            if self.mode == "physical":
                if self.props.data_range == self.props.physical_range:
                    return None  # the common no-op
                return (*self.props.data_range, *self.props.physical_range)
            return None
        if not self.value:
            return ()
        in_float = self.props.data_type.startswith("Float")
        if mode == "raw":
            in_range, out_range = TYPE_RANGES[self.props.data_type], TYPE_RANGES[data_type]
        elif mode == "physical":
            in_range, out_range = self.props.data_range, self.props.physical_range
        else:
            in_range, out_range = self.props.display_range, (0.0, DISPLAY_FLOAT_MAX)
        full = self.value if len(self.value) == 4 else (*self.value, out_range[0], out_range[1])
        ranges = (in_range, in_range, out_range, out_range)
        floats = (in_float, in_float, out_float, out_float)
        return tuple(_percent(v, r, f) for v, r, f in zip(full, ranges, floats, strict=True))


def _percent(value: Any, bounds: Sequence[float], is_float: bool) -> float | int:
    """ "25%" of a range → a number; integers are truncated for integer types, as the client does."""
    if isinstance(value, str):
        value = float(value[:-1]) * (bounds[1] - bounds[0]) / 100.0 + bounds[0]
    return value if is_float else int(value)


def _parse_band(props: BandProperties, value: Any) -> _BandScale:
    if value is None:
        return _BandScale(props, "none", None, True)
    if isinstance(value, str):
        if value not in MODES:
            raise ScalingError(f"Invalid scaling mode '{value}' for band '{props.name}'")
        if props.is_mask_or_class:
            # Mask and class bands are never scaled automatically; their mode is only a weak default.
            return _BandScale(props, "none", value, True)
        return _BandScale(props, "auto", value, False)
    if isinstance(value, (list, tuple)):
        if len(value) not in (0, 2, 4):
            raise ScalingError(f"Invalid scaling tuple {tuple(value)} for band '{props.name}'")
        is_pct = []
        for item in value:
            if isinstance(item, str):
                if not item.endswith("%") or not _is_number(item[:-1]):
                    raise ScalingError(
                        f"Invalid scaling tuple value '{item}' for band '{props.name}' is not a percentage string"
                    )
                is_pct.append(True)
            elif isinstance(item, (int, float)) and not isinstance(item, bool):
                is_pct.append(False)
            else:
                raise ScalingError(f"Invalid scaling value {item} for band '{props.name}' is not a number")
        value = tuple(value)
        if len(value) == 0:
            mode = "auto"
        elif len(value) == 2:
            mode = "display"
        elif not is_pct[2] or not is_pct[3]:
            # The client marks every number (int or float) as "float" here, so a numeric output bound
            # implies physical mode; only all-percentage outputs fall through. Kept as the client has it.
            mode = "physical"
        else:
            mode = None
        return _BandScale(props, "tuple", mode, True, value, tuple(is_pct))
    raise ScalingError(f"Invalid scaling value {value!r} for band '{props.name}'")


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _parse(props: Sequence[BandProperties], scaling: Any) -> list[_BandScale]:
    if isinstance(scaling, str):
        return [_parse_band(p, scaling) for p in props]
    if isinstance(scaling, Mapping):
        out = []
        for p in props:
            if p.name in scaling:
                value = scaling[p.name]
            else:
                value = None if p.is_mask_or_class else scaling.get("default_")
            out.append(_parse_band(p, value))
        return out
    if isinstance(scaling, Iterable):
        values = list(scaling)
        if len(values) > len(props):
            raise ScalingError("Invalid scaling value has more elements than bands")
        if len(values) < len(props):
            raise ScalingError("Invalid scaling value has fewer elements than bands")
        return [_parse_band(p, v) for p, v in zip(props, values, strict=True)]
    raise ScalingError(f"Invalid scaling value {scaling!r} has unsupported type")


def _combined_mode(scales: list[_BandScale], *, implied: bool) -> str | None:
    mode = None
    for scale in scales:
        if scale.mode is None or scale.implied != implied:
            continue
        if mode is None:
            mode = scale.mode
        elif scale.mode != mode:
            if {scale.mode, mode} <= {"auto", "display"}:
                mode = "display"
            elif implied:
                return None  # a guess that cannot be made
            else:
                raise ScalingError(f"Conflicting modes in scaling: '{mode}' and '{scale.mode}'")
    return mode


def common_data_type(data_types: Sequence[str]) -> str | None:
    """The most general of `data_types` per the cast table, or None when they cannot all be cast to one."""
    if not data_types:
        return None
    for data_type in data_types:
        if data_type not in DATA_TYPES:
            raise ScalingError(f"Invalid data type '{data_type}'")
    result = data_types[0]
    for other in data_types[1:]:
        if result == other or result in CASTS[other]:
            continue
        if other in CASTS[result]:
            result = other
            continue
        shared = next((t for t in CASTS[other] if t in CASTS[result]), None)
        if shared is None:
            return None
        result = shared
    return result


def data_type_for_range(low: float | None, high: float | None, is_float: bool) -> str:
    """The smallest type that holds [low, high]; floats (and anything beyond Int32) become Float64."""
    int32 = TYPE_RANGES["Int32"]
    if is_float or (low is not None and low < int32[0]) or (high is not None and high > int32[1]):
        return "Float64"
    for data_type in DATA_TYPES:
        type_low, type_high = TYPE_RANGES[data_type]
        if (low is None or low >= type_low) and (high is not None and high <= type_high):
            return data_type
    return "Float64"


def _implied_data_type(scales: list[_BandScale]) -> str | None:
    ranges = [scale.output_range() for scale in scales]
    lows = [r[0] for r in ranges if r[0] is not None]
    highs = [r[1] for r in ranges if r[1] is not None]
    if not lows and not highs:
        return None
    is_float = any(isinstance(v, float) for v in lows + highs)
    return data_type_for_range(min(lows) if lows else None, max(highs) if highs else None, is_float)


def scaling_parameters(
    *, bands: Sequence[BandProperties], scaling: Any, data_type: str | None
) -> tuple[list[Scale] | None, str]:
    """Per-band scales and the output data type for a scaling specification (seed 002's rules)."""
    if data_type is not None and data_type not in DATA_TYPES:
        raise ScalingError(f"Invalid data_type value {data_type}")
    if scaling is None:
        if data_type is None:
            data_type = common_data_type([b.data_type for b in bands])
            if data_type is None:
                raise ScalingError("The bands have no common data type; give data_type or a scaling.")
        return None, data_type
    parsed = _parse(bands, scaling)
    mode = _combined_mode(parsed, implied=False)
    if mode is None and data_type is None:
        mode = _combined_mode(parsed, implied=True)
        if mode is None:
            data_type = _implied_data_type(parsed)
            if data_type is None:
                raise ScalingError("Invalid scaling parameters, cannot determine output data type or mode")
    if mode is None:
        mode = {"Byte": "display", "Float32": "physical", "Float64": "physical"}.get(data_type, "raw")
    elif data_type is None:
        if mode == "raw":
            data_type = common_data_type([b.data_type for b in bands])
            if data_type is None:
                raise ScalingError("The bands have no common data type; give data_type.")
        elif mode == "physical":
            data_type = "Float64"
        else:
            data_type = "Byte"
    scales = [scale.resolve(mode, data_type) for scale in parsed]
    if all(scale is None for scale in scales):
        return None, data_type
    return scales, data_type


# ---- applying a resolved scale ----------------------------------------------------------------------------
def validate_scale(value: Any, *, index: int) -> Scale:
    """A wire scale (None, [], [a, b], [a, b, c, d]) as a tuple of finite floats."""
    if value is None:
        return None
    if not isinstance(value, (list, tuple)) or len(value) not in (0, 2, 4):
        raise ScalingError(f"scales[{index}] must be null or a list of 0, 2 or 4 numbers.")
    numbers = []
    for item in value:
        if isinstance(item, bool) or not isinstance(item, (int, float)) or not math.isfinite(item):
            raise ScalingError(f"scales[{index}] must contain finite numbers only.")
        numbers.append(float(item))
    return tuple(numbers)


def output_dtype(data_type: str) -> np.dtype:
    return np.dtype(NUMPY_TYPES[data_type])


def apply_scale(values: np.ndarray, mask: np.ndarray, scale: Scale, data_type: str) -> np.ndarray:
    """`values` scaled by `scale` and converted to `data_type` (rounded and clipped for integer types).

    `()` scales the valid (unmasked) values' own minimum..maximum to 0..255 (GDAL's automatic scaling).
    Masked pixels come out as 0.
    """
    dtype = output_dtype(data_type)
    if scale is None:
        return convert(values, dtype)
    if len(scale) == 0:
        valid = values[~mask]
        valid = valid[np.isfinite(valid)] if valid.dtype.kind == "f" else valid
        if valid.size == 0:
            return np.zeros(values.shape, dtype=dtype)
        scale = (float(valid.min()), float(valid.max()), 0.0, 255.0)
    elif len(scale) == 2:
        scale = (scale[0], scale[1], 0.0, 255.0)
    src_min, src_max, dst_min, dst_max = scale
    if (src_min, src_max) == (dst_min, dst_max):
        return convert(values, dtype)  # the same range in and out: the seed's no-op
    if src_max == src_min:
        factor = 0.0
    else:
        factor = (dst_max - dst_min) / (src_max - src_min)
    scaled = values.astype(np.float64)
    scaled -= src_min
    scaled *= factor
    scaled += dst_min
    return convert(scaled, dtype)


def convert(values: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """Convert to `dtype` like GDAL's copy-words: round to nearest for integers and clip to the type's range."""
    if values.dtype == dtype:
        return values
    if dtype.kind == "f" or np.can_cast(values.dtype, dtype, casting="safe"):
        return values.astype(dtype)
    info = np.iinfo(dtype)
    if values.dtype.kind == "f":
        # Half away from zero, as GDAL's float → integer conversion rounds (numpy's rint rounds half to even).
        values = np.trunc(values + np.copysign(0.5, values))
        values = np.nan_to_num(values, nan=0.0)
    else:
        values = values.astype(np.int64)  # so the bounds of a narrower or differently signed type compare
    return np.clip(values, info.min, info.max).astype(dtype)
