"""Attributes of products and bands on the wire (protocol §4.2–4.3)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from catalogsite.serializers import (
    CatalogSerializer,
    FiniteFloatField,
    RangeField,
    StrictCharField,
    StrictIntegerField,
    validate_name,
)

from ..choices import BandType, Colormap, DataType, ResolutionUnit
from ..models import Band, Product

RESOLUTION_UNIT_ALIASES = {
    "m": ResolutionUnit.METERS,
    "meter": ResolutionUnit.METERS,
    "meters": ResolutionUnit.METERS,
    "metre": ResolutionUnit.METERS,
    "metres": ResolutionUnit.METERS,
    "°": ResolutionUnit.DEGREES,
    "deg": ResolutionUnit.DEGREES,
    "degree": ResolutionUnit.DEGREES,
    "degrees": ResolutionUnit.DEGREES,
}


def parse_resolution(data: Any) -> tuple[float, str]:
    """`{"value": 10, "unit": "meters"}`, a number (metres) or a string like "10m" → (value, unit)."""
    if isinstance(data, bool):
        raise serializers.ValidationError("A resolution is an object {value, unit}, a number or a string like '10m'.")
    if isinstance(data, (int, float)):
        value, unit = float(data), ResolutionUnit.METERS
    elif isinstance(data, str):
        text = data.strip()
        number = text.rstrip("abcdefghijklmnopqrstuvwxyz°").strip()
        unit_text = text[len(number) :].strip().lower() or "m"
        try:
            value = float(number)
        except ValueError as exc:
            raise serializers.ValidationError(f"{data!r} is not a resolution like '10m' or '0.1deg'.") from exc
        if unit_text not in RESOLUTION_UNIT_ALIASES:
            raise serializers.ValidationError(f"Unknown resolution unit {unit_text!r}; use meters or degrees.")
        unit = RESOLUTION_UNIT_ALIASES[unit_text]
    elif isinstance(data, dict):
        unknown = set(data) - {"value", "unit"}
        if unknown or "value" not in data:
            raise serializers.ValidationError("A resolution object has exactly 'value' and 'unit'.")
        raw_unit = str(data.get("unit") or "meters").lower()
        if raw_unit not in RESOLUTION_UNIT_ALIASES:
            raise serializers.ValidationError(f"Unknown resolution unit {raw_unit!r}; use meters or degrees.")
        value = FiniteFloatField().run_validation(data["value"])
        unit = RESOLUTION_UNIT_ALIASES[raw_unit]
    else:
        raise serializers.ValidationError("A resolution is an object {value, unit}, a number or a string like '10m'.")
    if value <= 0:
        raise serializers.ValidationError("A resolution must be positive.")
    return value, str(unit)


@extend_schema_field(
    {
        "type": "object",
        "properties": {"value": {"type": "number"}, "unit": {"type": "string", "enum": ["meters", "degrees"]}},
    }
)
class ResolutionField(serializers.Field):
    """Maps `{value, unit}` onto the `<prefix>_value` / `<prefix>_unit` columns."""

    def __init__(self, prefix: str, **kwargs):
        self.prefix = prefix
        kwargs.setdefault("source", "*")
        kwargs.setdefault("required", False)
        kwargs.setdefault("allow_null", True)
        super().__init__(**kwargs)

    def to_representation(self, instance):
        value = getattr(instance, f"{self.prefix}_value")
        if value is None:
            return None
        return {"value": value, "unit": getattr(instance, f"{self.prefix}_unit") or ResolutionUnit.METERS}

    def validate_empty_values(self, data):
        if data is None:
            return True, {f"{self.prefix}_value": None, f"{self.prefix}_unit": None}
        return super().validate_empty_values(data)

    def to_internal_value(self, data):
        value, unit = parse_resolution(data)
        return {f"{self.prefix}_value": value, f"{self.prefix}_unit": unit}


class ProductSerializer(CatalogSerializer):
    resolution_min = ResolutionField("resolution_min", read_only=True)
    resolution_max = ResolutionField("resolution_max", read_only=True)
    default_display_bands = serializers.ListField(
        child=StrictCharField(max_length=2000), required=False, allow_null=True, max_length=64
    )

    class Meta:
        model = Product
        fields = [
            "name",
            "description",
            "is_core",
            "revisit_period_minutes_min",
            "revisit_period_minutes_max",
            "start_datetime",
            "end_datetime",
            "resolution_min",
            "resolution_max",
            "default_display_bands",
            "image_index_name",
            "product_tier",
            "created",
            "modified",
            "tags",
            "extra_properties",
            "owners",
            "readers",
            "writers",
        ]
        extra_kwargs = {"name": {"required": False, "allow_blank": True}}

    def validate_is_core(self, value):
        request = self.context.get("request")
        if value and request is not None and not request.user.is_superuser:
            raise serializers.ValidationError("Only platform administrators may mark a product as core.")
        return value

    def validate(self, attrs):
        start = attrs.get("start_datetime", getattr(self.instance, "start_datetime", None))
        end = attrs.get("end_datetime", getattr(self.instance, "end_datetime", None))
        if start and end and start > end:
            raise serializers.ValidationError({"end_datetime": ["end_datetime is before start_datetime."]})
        return attrs


COMMON_BAND_FIELDS = [
    "name",
    "product_id",
    "description",
    "type",
    "sort_order",
    "vendor_order",
    "data_type",
    "nodata",
    "data_range",
    "display_range",
    "resolution",
    "band_index",
    "file_index",
    "jpx_layer_index",
    "vendor_band_name",
    "processing_levels",
    "derived_params",
    "created",
    "modified",
    "tags",
    "extra_properties",
    "owners",
    "readers",
    "writers",
]
TYPE_FIELDS: dict[str, list[str]] = {
    BandType.SPECTRAL: [
        "physical_range",
        "physical_range_unit",
        "wavelength_nm_center",
        "wavelength_nm_min",
        "wavelength_nm_max",
        "wavelength_nm_fwhm",
    ],
    BandType.MICROWAVE: ["frequency", "bandwidth", "physical_range", "physical_range_unit"],
    BandType.MASK: ["is_alpha"],
    BandType.CLASS: ["colormap_name", "colormap", "class_labels"],
    BandType.GENERIC: ["physical_range", "physical_range_unit", "colormap_name", "colormap"],
}
ALL_TYPE_FIELDS = sorted({name for names in TYPE_FIELDS.values() for name in names})
PROCESSING_STEP_KEYS = {
    "function",
    "parameter",
    "index",
    "data_type",
    "data_range",
    "display_range",
    "physical_range",
    "physical_range_unit",
}


def validate_processing_levels(value: Any) -> Any:
    if value is None:
        return value
    if not isinstance(value, dict) or len(value) > 100:
        raise serializers.ValidationError("Must be an object of level name → alias string or list of steps.")
    for level, steps in value.items():
        if isinstance(steps, str):
            continue
        if not isinstance(steps, list):
            raise serializers.ValidationError(f"Level {level!r} must be a string or a list of processing steps.")
        for step in steps:
            if not isinstance(step, dict):
                raise serializers.ValidationError(f"Each step of level {level!r} must be an object.")
            unknown = set(step) - PROCESSING_STEP_KEYS
            if unknown:
                raise serializers.ValidationError(f"Unknown key(s) {sorted(unknown)} in a step of level {level!r}.")
            for required in ("function", "parameter"):
                if not isinstance(step.get(required), str):
                    raise serializers.ValidationError(f"Each step of level {level!r} needs a string {required!r}.")
            if step.get("data_type") is not None and step["data_type"] not in DataType.values:
                raise serializers.ValidationError(f"Unknown data_type {step['data_type']!r} in level {level!r}.")
            for key in ("data_range", "display_range", "physical_range"):
                if step.get(key) is not None:
                    try:
                        RangeField().run_validation(step[key])
                    except serializers.ValidationError as exc:
                        raise serializers.ValidationError(f"{key} of a step of level {level!r}: {exc.detail}") from exc
    return value


def validate_derived_params(value: Any) -> Any:
    if value is None:
        return value
    if not isinstance(value, dict):
        raise serializers.ValidationError("Must be an object {function, bands, source_type}.")
    unknown = set(value) - {"function", "bands", "source_type"}
    if unknown:
        raise serializers.ValidationError(f"Unknown key(s) {sorted(unknown)}; use function, bands, source_type.")
    if not isinstance(value.get("function"), str) or not value["function"]:
        raise serializers.ValidationError("'function' (a string) is required.")
    bands = value.get("bands")
    if not isinstance(bands, list) or not bands or not all(isinstance(b, str) for b in bands):
        raise serializers.ValidationError("'bands' (a non-empty list of band names) is required.")
    if value.get("source_type") is not None and value["source_type"] not in DataType.values:
        raise serializers.ValidationError(f"source_type must be one of {DataType.values}.")
    return value


def validate_colormap(value: Any) -> Any:
    if value is None:
        return value
    if not isinstance(value, list) or len(value) > 65536:
        raise serializers.ValidationError("A colormap is a list of [r, g, b, a] entries.")
    for entry in value:
        if not isinstance(entry, (list, tuple)) or len(entry) != 4:
            raise serializers.ValidationError("Each colormap entry is a list of 4 values [r, g, b, a].")
    return value


def validate_class_labels(value: Any) -> Any:
    if value is None:
        return value
    if not isinstance(value, list) or not all(item is None or isinstance(item, str) for item in value):
        raise serializers.ValidationError("class_labels is a list of strings or nulls.")
    return value


class BandSerializer(CatalogSerializer):
    product_id = StrictCharField(max_length=2000)
    name = StrictCharField(max_length=2000, validators=[validate_name])
    type = serializers.ChoiceField(choices=BandType.choices)
    resolution = ResolutionField("resolution")
    data_range = RangeField(required=False, allow_null=True)
    display_range = RangeField(required=False, allow_null=True)
    physical_range = RangeField(required=False, allow_null=True)
    processing_levels = serializers.JSONField(required=False, allow_null=True, validators=[validate_processing_levels])
    derived_params = serializers.JSONField(required=False, allow_null=True, validators=[validate_derived_params])
    colormap_name = serializers.ChoiceField(choices=Colormap.choices, required=False, allow_null=True)
    colormap = serializers.JSONField(required=False, allow_null=True, validators=[validate_colormap])
    class_labels = serializers.JSONField(required=False, allow_null=True, validators=[validate_class_labels])
    file_index = StrictIntegerField(required=False, min_value=0)
    jpx_layer_index = StrictIntegerField(required=False, min_value=0)
    band_index = StrictIntegerField(required=False, allow_null=True, min_value=0)

    immutable_fields = ("name", "product_id", "type")

    class Meta:
        model = Band
        fields = [*COMMON_BAND_FIELDS, *ALL_TYPE_FIELDS]

    def band_type(self, attrs: dict[str, Any]) -> str:
        if "type" in attrs:
            return attrs["type"]
        if self.instance is not None:
            return self.instance.type
        return ""

    def validate(self, attrs):
        band_type = self.band_type(attrs)
        if not band_type:
            raise serializers.ValidationError({"type": [f"A band type is required: one of {BandType.values}."]})
        allowed = set(TYPE_FIELDS[band_type])
        misplaced = {
            name: [f"Not an attribute of {band_type} bands."]
            for name in ALL_TYPE_FIELDS
            if name in self.initial_data and name not in allowed and self.initial_data[name] is not None
        }
        if misplaced:
            raise serializers.ValidationError(misplaced)
        if band_type == BandType.MASK:
            for key in ("data_range", "display_range"):
                if attrs.get(key) not in (None, [0.0, 1.0]):
                    raise serializers.ValidationError({key: ["Mask bands always have the range [0, 1]."]})
        for key in ("data_range", "display_range", "physical_range"):
            pair = attrs.get(key)
            if pair and pair[0] > pair[1]:
                raise serializers.ValidationError({key: ["The minimum is larger than the maximum."]})
        return attrs

    def to_representation(self, instance):
        data = super().to_representation(instance)
        allowed = set(TYPE_FIELDS.get(instance.type, ()))
        for name in ALL_TYPE_FIELDS:
            if name not in allowed:
                data.pop(name, None)
        return data
