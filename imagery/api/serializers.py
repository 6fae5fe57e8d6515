"""Image attributes on the wire (protocol §4.4)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlparse

from rest_framework import serializers

from catalogsite.serializers import (
    CatalogSerializer,
    FiniteFloatField,
    GeoJSONField,
    StrictCharField,
    StrictIntegerField,
    validate_name,
)

from ..choices import StorageState
from ..models import Image

FILE_KEYS = {"href", "size_bytes", "hash", "provider_id", "provider_href"}
REMOTE_SCHEMES = {"gs", "http", "https", "ftp", "ftps", "s3"}
MAX_FILES = 100


def validate_files(value: Any) -> list[dict[str, Any]]:
    if not isinstance(value, list) or len(value) > MAX_FILES:
        raise serializers.ValidationError(f"files is a list of at most {MAX_FILES} file objects.")
    cleaned = []
    for index, item in enumerate(value):
        if not isinstance(item, dict):
            raise serializers.ValidationError(f"files[{index}] must be an object.")
        unknown = set(item) - FILE_KEYS
        if unknown:
            raise serializers.ValidationError(f"files[{index}] has unknown key(s) {sorted(unknown)}.")
        for key in ("href", "hash", "provider_id", "provider_href"):
            if item.get(key) is not None and (not isinstance(item[key], str) or len(item[key]) > 4000):
                raise serializers.ValidationError(f"files[{index}].{key} must be a string of at most 4000 chars.")
        size = item.get("size_bytes")
        if size is not None and (isinstance(size, bool) or not isinstance(size, int) or not 0 <= size < 2**62):
            raise serializers.ValidationError(f"files[{index}].size_bytes must be a non-negative integer below 2^62.")
        cleaned.append({key: item[key] for key in item if item[key] is not None})
    return cleaned


class ImageSerializer(CatalogSerializer):
    product_id = StrictCharField(max_length=2000)
    name = StrictCharField(max_length=2000, validators=[validate_name])
    geometry = GeoJSONField(required=False, allow_null=True)
    geotrans = serializers.ListField(
        child=FiniteFloatField(), min_length=6, max_length=6, required=False, allow_null=True
    )
    x_pixels = StrictIntegerField(required=False, allow_null=True, min_value=1)
    y_pixels = StrictIntegerField(required=False, allow_null=True, min_value=1)
    files = serializers.JSONField(required=False, validators=[validate_files])
    storage_state = serializers.ChoiceField(choices=StorageState.choices, required=False)
    bits_per_pixel = serializers.ListField(child=FiniteFloatField(), required=False, allow_null=True, max_length=1000)
    reflectance_scale = serializers.ListField(
        child=FiniteFloatField(), required=False, allow_null=True, max_length=1000
    )
    brightness_temperature_k1_k2 = serializers.ListField(
        child=serializers.ListField(child=FiniteFloatField()), required=False, allow_null=True, max_length=1000
    )
    c6s_dlsr = serializers.ListField(
        child=serializers.ListField(child=FiniteFloatField()), required=False, allow_null=True, max_length=1000
    )
    radiance_gain_bias = serializers.ListField(
        child=serializers.ListField(child=FiniteFloatField()), required=False, allow_null=True, max_length=1000
    )
    reflectance_gain_bias = serializers.ListField(
        child=serializers.ListField(child=FiniteFloatField()), required=False, allow_null=True, max_length=1000
    )
    temperature_gain_bias = serializers.ListField(
        child=serializers.ListField(child=FiniteFloatField()), required=False, allow_null=True, max_length=1000
    )
    cloud_fraction = FiniteFloatField(required=False, allow_null=True, min_value=0, max_value=1)
    alt_cloud_fraction = FiniteFloatField(required=False, allow_null=True, min_value=0, max_value=1)
    bright_fraction = FiniteFloatField(required=False, allow_null=True, min_value=0, max_value=1)
    fill_fraction = FiniteFloatField(required=False, allow_null=True, min_value=0, max_value=1)

    immutable_fields = ("name", "product_id")

    class Meta:
        model = Image
        fields = [
            "name",
            "product_id",
            "geometry",
            "cs_code",
            "projection",
            "geotrans",
            "x_pixels",
            "y_pixels",
            "acquired",
            "acquired_end",
            "published",
            "storage_state",
            "files",
            "area",
            "azimuth_angle",
            "bright_fraction",
            "cloud_fraction",
            "alt_cloud_fraction",
            "confidence_dlsr",
            "fill_fraction",
            "incidence_angle",
            "roll_angle",
            "solar_azimuth_angle",
            "solar_elevation_angle",
            "view_angle",
            "bits_per_pixel",
            "reflectance_scale",
            "brightness_temperature_k1_k2",
            "c6s_dlsr",
            "radiance_gain_bias",
            "reflectance_gain_bias",
            "temperature_gain_bias",
            "processing_pipeline_id",
            "satellite_id",
            "provider_id",
            "provider_url",
            "preview_url",
            "preview_file",
            "created",
            "modified",
            "tags",
            "extra_properties",
            "owners",
            "readers",
            "writers",
        ]

    def validate(self, attrs):
        def current(key):
            return attrs[key] if key in attrs else getattr(self.instance, key, None)

        storage_state = current("storage_state") or StorageState.AVAILABLE
        errors: dict[str, list[str]] = {}
        if current("acquired") is None:
            errors["acquired"] = ["acquired is required."]
        if current("geometry") is None:
            errors["geometry"] = ["geometry is required."]
        files = current("files") or []
        if storage_state == StorageState.REMOTE:
            for index, item in enumerate(files):
                href = item.get("href") or item.get("provider_href")
                if not href:
                    errors.setdefault("files", []).append(
                        f"files[{index}] of a remote image needs href or provider_href."
                    )
                elif urlparse(href).scheme not in REMOTE_SCHEMES:
                    errors.setdefault("files", []).append(
                        f"files[{index}] href scheme must be one of {sorted(REMOTE_SCHEMES)}."
                    )
        else:
            if not (current("cs_code") or current("projection")):
                errors["cs_code"] = ["An available image needs cs_code or projection."]
            for key in ("geotrans", "x_pixels", "y_pixels"):
                if current(key) is None:
                    errors[key] = [f"{key} is required for an available image (or set storage_state to remote)."]
            if not files:
                errors["files"] = [
                    "An available image needs files (href, size_bytes, hash); upload data through "
                    "/uploads_v2 or set storage_state to remote."
                ]
            for index, item in enumerate(files):
                missing = [key for key in ("href", "size_bytes", "hash") if item.get(key) in (None, "")]
                if missing:
                    errors.setdefault("files", []).append(f"files[{index}] needs {', '.join(missing)}.")
        if errors:
            raise serializers.ValidationError(errors)
        return attrs
