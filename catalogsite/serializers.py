"""Serializer building blocks shared by every catalog resource (attributes of protocol §4.1)."""

from __future__ import annotations

import datetime as dt
import math
import re
from typing import Any

from django.contrib.gis.db.models import GeometryField as ModelGeometryField
from django.contrib.postgres.fields import ArrayField
from django.db import models
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from .filtering import parse_timestamp
from .geo import GeometryError, geometry_to_geojson, parse_geometry
from .permissions import visible_acl

MAX_TAGS = 32
MAX_TAG_BYTES = 1000
MAX_EXTRA_PROPERTIES = 50
MAX_EXTRA_KEY_LENGTH = 256
MAX_EXTRA_STRING_LENGTH = 10_000
PRINCIPAL_RE = re.compile(r"^(user|email|group|org|access-id):[^\s]{1,250}$")
OWNER_PRINCIPAL_RE = re.compile(r"^(user|org|access-id):[^\s]{1,250}$")
MAX_PRINCIPALS = 1000
NAME_RE = re.compile(r"^[A-Za-z0-9_.-]+$")
MAX_NAME_LENGTH = 2000


def format_timestamp(value: dt.datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@extend_schema_field(OpenApiTypes.DATETIME)
class TimestampField(serializers.Field):
    """UTC timestamps with a `Z` suffix on the wire; dates, naive (= UTC) and offset datetimes accepted."""

    def to_representation(self, value: dt.datetime) -> str | None:
        return format_timestamp(value)

    def to_internal_value(self, data: Any) -> dt.datetime:
        try:
            return parse_timestamp(data)
        except ValueError as exc:
            raise serializers.ValidationError(str(exc)) from exc


@extend_schema_field({"type": "object", "description": "GeoJSON geometry (EPSG:4326)"})
class GeoJSONField(serializers.Field):
    """GeoJSON geometry in and out; validated, EPSG:4326, split at the antimeridian."""

    def to_representation(self, value):
        return geometry_to_geojson(value)

    def to_internal_value(self, data):
        try:
            return parse_geometry(data)
        except GeometryError as exc:
            raise serializers.ValidationError(str(exc)) from exc


class FiniteFloatField(serializers.FloatField):
    def to_internal_value(self, data):
        if isinstance(data, bool):
            raise serializers.ValidationError("A number is required, not a boolean.")
        value = super().to_internal_value(data)
        if not math.isfinite(value):
            raise serializers.ValidationError("A finite number is required.")
        return value


class StrictIntegerField(serializers.IntegerField):
    def to_internal_value(self, data):
        if isinstance(data, bool):
            raise serializers.ValidationError("An integer is required, not a boolean.")
        if isinstance(data, float) and not data.is_integer():
            raise serializers.ValidationError("An integer is required.")
        return super().to_internal_value(data)


class StrictCharField(serializers.CharField):
    """Only real strings: DRF would otherwise turn numbers and booleans into text silently."""

    def to_internal_value(self, data):
        if not isinstance(data, str):
            raise serializers.ValidationError("A string is required.")
        return super().to_internal_value(data)


class StrictBooleanField(serializers.BooleanField):
    def to_internal_value(self, data):
        if not isinstance(data, bool):
            raise serializers.ValidationError("true or false is required.")
        return data


class RangeField(serializers.ListField):
    """Two finite numbers `[min, max]` (data_range, display_range, physical_range)."""

    def __init__(self, **kwargs):
        kwargs.setdefault("child", FiniteFloatField())
        kwargs.setdefault("min_length", 2)
        kwargs.setdefault("max_length", 2)
        super().__init__(**kwargs)


def validate_tags(value: list[str]) -> list[str]:
    if len(value) > MAX_TAGS:
        raise serializers.ValidationError(f"At most {MAX_TAGS} tags are allowed, got {len(value)}.")
    for tag in value:
        if len(tag.encode("utf-8")) > MAX_TAG_BYTES:
            raise serializers.ValidationError(f"Each tag must be at most {MAX_TAG_BYTES} bytes.")
    return value


def validate_extra_properties(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise serializers.ValidationError("Must be an object of string keys to string or number values.")
    if len(value) > MAX_EXTRA_PROPERTIES:
        raise serializers.ValidationError(f"At most {MAX_EXTRA_PROPERTIES} properties are allowed, got {len(value)}.")
    for key, item in value.items():
        if len(key) > MAX_EXTRA_KEY_LENGTH:
            raise serializers.ValidationError(f"Key {key[:40]!r}… is longer than {MAX_EXTRA_KEY_LENGTH} characters.")
        if isinstance(item, bool) or not isinstance(item, (str, int, float)):
            raise serializers.ValidationError(f"Value of {key!r} must be a string or a number.")
        if isinstance(item, float) and not math.isfinite(item):
            raise serializers.ValidationError(f"Value of {key!r} must be a finite number.")
        if isinstance(item, str) and len(item) > MAX_EXTRA_STRING_LENGTH:
            raise serializers.ValidationError(f"Value of {key!r} is longer than {MAX_EXTRA_STRING_LENGTH} characters.")
    return value


def principal_validator(pattern: re.Pattern, allowed: str):
    def validate(value: list[str]) -> list[str]:
        if len(value) > MAX_PRINCIPALS:
            raise serializers.ValidationError(f"At most {MAX_PRINCIPALS} principals are allowed.")
        normalized = []
        for principal in value:
            if not pattern.match(principal):
                raise serializers.ValidationError(
                    f"{principal!r} is not a valid principal; use one of {allowed} followed by an identifier."
                )
            prefix, _, rest = principal.partition(":")
            # Emails, groups and orgs compare case-insensitively (protocol §7.1 lowercases them).
            normalized.append(f"{prefix}:{rest.lower()}" if prefix in ("email", "group", "org") else principal)
        return list(dict.fromkeys(normalized))

    return validate


def validate_name(value: str) -> str:
    if len(value) > MAX_NAME_LENGTH:
        raise serializers.ValidationError(f"Names are at most {MAX_NAME_LENGTH} characters.")
    if not NAME_RE.match(value):
        raise serializers.ValidationError("Names may contain only letters, digits, '-', '_' and '.'.")
    return value


class CatalogSerializer(serializers.ModelSerializer):
    """Base attributes of every catalog object, with strict input (unknown attributes are errors)."""

    serializer_field_mapping = {
        **serializers.ModelSerializer.serializer_field_mapping,
        models.DateTimeField: TimestampField,
        models.FloatField: FiniteFloatField,
        models.IntegerField: StrictIntegerField,
        models.BigIntegerField: StrictIntegerField,
        models.CharField: StrictCharField,
        models.TextField: StrictCharField,
        models.BooleanField: StrictBooleanField,
        ModelGeometryField: GeoJSONField,
    }

    created = TimestampField(read_only=True)
    modified = TimestampField(read_only=True)
    tags = serializers.ListField(child=StrictCharField(allow_blank=False, max_length=MAX_TAG_BYTES), required=False,
                                 validators=[validate_tags])
    extra_properties = serializers.JSONField(required=False, validators=[validate_extra_properties])
    owners = serializers.ListField(child=StrictCharField(), required=False,
                                   validators=[principal_validator(OWNER_PRINCIPAL_RE, "user:, org:, access-id:")])
    readers = serializers.ListField(child=StrictCharField(), required=False,
                                    validators=[principal_validator(PRINCIPAL_RE, "user:, email:, group:, org:")])
    writers = serializers.ListField(child=StrictCharField(), required=False,
                                    validators=[principal_validator(PRINCIPAL_RE, "user:, email:, group:, org:")])

    ACL_FIELDS = ("owners", "readers", "writers")
    # Attributes that may be set once, at creation, and never changed.
    immutable_fields: tuple[str, ...] = ()
    # Read-only attributes a client may echo back; accepted and ignored.
    ignored_fields: tuple[str, ...] = ("id", "created", "modified", "v1_properties")

    def build_field(self, field_name, info, model_class, nested_depth):
        field_class, kwargs = super().build_field(field_name, info, model_class, nested_depth)
        model_field = info.fields.get(field_name) if hasattr(info, "fields") else None
        if isinstance(model_field, ArrayField):
            kwargs.pop("validators", None)
        return field_class, kwargs

    def to_internal_value(self, data):
        if not isinstance(data, dict):
            raise serializers.ValidationError({"attributes": ["Must be an object."]})
        writable = {name for name, field in self.fields.items() if not field.read_only}
        readable = set(self.fields)
        errors = {}
        cleaned = {}
        for key, value in data.items():
            if key in writable:
                cleaned[key] = value
            elif key in readable or key in self.ignored_fields:
                continue
            else:
                errors[key] = ["Unknown attribute."]
        if errors:
            raise serializers.ValidationError(errors)
        if self.instance is not None:
            for key in self.immutable_fields:
                if key in cleaned and cleaned[key] != self._current_value(key):
                    errors[key] = ["This attribute cannot be changed once set."]
            if errors:
                raise serializers.ValidationError(errors)
        return super().to_internal_value(cleaned)

    def _current_value(self, key: str) -> Any:
        return self.fields[key].to_representation(self.fields[key].get_attribute(self.instance))

    def to_representation(self, instance):
        data = super().to_representation(instance)
        request = self.context.get("request")
        if request is not None:
            for field in self.ACL_FIELDS:
                if field in data:
                    data[field] = visible_acl(request.user, instance, field)
        data.pop("id", None)
        return data
