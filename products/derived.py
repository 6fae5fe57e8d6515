"""The standard derived bands (protocol §8): read-only, computed by the raster service from source bands."""

from __future__ import annotations

from dataclasses import dataclass

from .choices import DataType


@dataclass(frozen=True)
class DerivedBand:
    id: str
    description: str
    bands: tuple[str, ...]
    function_name: str
    data_type: str
    data_range: tuple[float, float]
    physical_range: tuple[float, float] | None

    @property
    def name(self) -> str:
        return self.id

    def applies_to(self, band_names: set[str]) -> bool:
        """A derived band is usable with a product that has all of its source bands."""
        return set(self.bands) <= band_names

    def attributes(self) -> dict:
        return {
            "name": self.id,
            "description": self.description,
            "data_type": self.data_type,
            "data_range": list(self.data_range),
            "physical_range": list(self.physical_range) if self.physical_range else None,
            "bands": list(self.bands),
            "function_name": self.function_name,
            "extra_properties": {},
            "tags": [],
        }


_NDI_RANGE = ((0.0, 65535.0), (-1.0, 1.0))

DERIVED_BANDS: tuple[DerivedBand, ...] = (
    DerivedBand("derived:bai", "Burned Area Index", ("red", "nir"), "bai_uint16", DataType.UINT16, *_NDI_RANGE),
    DerivedBand(
        "derived:evi", "Enhanced Vegetation Index", ("blue", "red", "nir"), "evi_uint16", DataType.UINT16, *_NDI_RANGE
    ),
    DerivedBand(
        "derived:ndvi",
        "Normalized Difference Vegetation Index",
        ("nir", "red"),
        "ndi_uint16",
        DataType.UINT16,
        *_NDI_RANGE,
    ),
    DerivedBand(
        "derived:ndwi",
        "Normalized Difference Water Index (with SWIR1)",
        ("nir", "swir1"),
        "ndi_uint16",
        DataType.UINT16,
        *_NDI_RANGE,
    ),
    DerivedBand(
        "derived:ndwi1",
        "Normalized Difference Water Index (with SWIR1)",
        ("nir", "swir1"),
        "ndi_uint16",
        DataType.UINT16,
        *_NDI_RANGE,
    ),
    DerivedBand(
        "derived:ndwi2",
        "Normalized Difference Water Index (with SWIR2)",
        ("nir", "swir2"),
        "ndi_uint16",
        DataType.UINT16,
        *_NDI_RANGE,
    ),
    DerivedBand("derived:rsqrt", "SQRT of R", ("red",), "sqrt", DataType.FLOAT64, (0.0, 1000.0), (0.0, 1.0)),
    DerivedBand(
        "derived:visual_cloud_mask",
        "Visual cloud mask based on grayness and green brightness",
        ("red", "green", "blue"),
        "visual_cloud_mask",
        DataType.UINT16,
        (0.0, 1.0),
        None,
    ),
)
DERIVED_BANDS_BY_ID = {band.id: band for band in DERIVED_BANDS}
DERIVED_FUNCTIONS = {band.function_name for band in DERIVED_BANDS}
