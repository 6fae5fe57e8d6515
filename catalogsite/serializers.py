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
from .permissions import visible_acls

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
    """Integers only, bounded by the 32-bit column range unless told otherwise (PostgreSQL would fail)."""

    def __init__(self, **kwargs):
        kwargs.setdefault("max_value", 2**31 - 1)
        kwargs.setdefault("min_value", -(2**31))
        super().__init__(**kwargs)

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
        if "\x00" in data:
            raise serializers.ValidationError("NUL characters are not allowed.")
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


def normalize_principals(values: list[str], *, pattern: re.Pattern, allowed: str) -> list[str]:
    """Validate principals and normalize them: emails, groups and orgs compare case-insensitively (§7.1)."""
    if len(values) > MAX_PRINCIPALS:
        raise serializers.ValidationError(f"At most {MAX_PRINCIPALS} principals are allowed.")
    normalized = []
    for principal in values:
        if not isinstance(principal, str) or not pattern.match(principal):
            raise serializers.ValidationError(
                f"{principal!r} is not a valid principal; use one of {allowed} followed by an identifier."
            )
        prefix, _, rest = principal.partition(":")
        normalized.append(f"{prefix}:{rest.lower()}" if prefix in ("email", "group", "org") else principal)
    return list(dict.fromkeys(normalized))


def principal_validator(pattern: re.Pattern, allowed: str):
    """A validator (for forms) that raises on invalid principals; the normalized list is `normalize_principals`."""

    def validate(values: list[str]) -> list[str]:
        return normalize_principals(values, pattern=pattern, allowed=allowed)

    return validate


class PrincipalListField(serializers.ListField):
    """A list of ACL principals, validated and normalized (emails, groups and orgs are case-insensitive).

    Normalization happens here rather than in a validator because DRF discards what validators return.
    """

    def __init__(self, *, pattern: re.Pattern, allowed: str, **kwargs):
        self.pattern = pattern
        self.allowed = allowed
        kwargs.setdefault("child", StrictCharField())
        kwargs.setdefault("required", False)
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        return normalize_principals(super().to_internal_value(data), pattern=self.pattern, allowed=self.allowed)


def validate_name(value: str) -> str:
    if len(value) > MAX_NAME_LENGTH:
        raise serializers.ValidationError(f"Names are at most {MAX_NAME_LENGTH} characters.")
    if not NAME_RE.match(value):
        raise serializers.ValidationError("Names may contain only letters, digits, '-', '_' and '.'.")
    return value


def contains_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(contains_nul(key) or contains_nul(item) for key, item in value.items())
    if isinstance(value, list):
        return any(contains_nul(item) for item in value)
    return False


def _identity(value: Any) -> Any:
    return value


def _fast_converter(field: serializers.Field):
    """A function equal to `field.to_representation` for non-null values, or None when not known to be."""
    kind = type(field)
    if kind in (FiniteFloatField, serializers.FloatField):
        return float
    if kind in (StrictIntegerField, serializers.IntegerField):
        return int
    if kind in (StrictCharField, serializers.CharField):
        return str
    if kind in (StrictBooleanField, serializers.BooleanField):
        return bool
    if kind is TimestampField:
        return format_timestamp
    if kind is GeoJSONField:
        return geometry_to_geojson
    if kind is serializers.JSONField and not field.binary:
        return _identity
    if kind is serializers.ChoiceField:
        choices = field.choice_strings_to_values
        return lambda value: value if value == "" else choices.get(str(value), value)
    if kind in (serializers.ListField, PrincipalListField):  # PrincipalListField reads like ListField
        child = _fast_converter(field.child)
        if child is None:
            return None
        if child is _identity:
            return list
        return lambda values: [None if item is None else child(item) for item in values]
    return None


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
    tags = serializers.ListField(
        child=StrictCharField(allow_blank=False, max_length=MAX_TAG_BYTES), required=False, validators=[validate_tags]
    )
    extra_properties = serializers.JSONField(required=False, validators=[validate_extra_properties])
    owners = PrincipalListField(pattern=OWNER_PRINCIPAL_RE, allowed="user:, org:, access-id:")
    readers = PrincipalListField(pattern=PRINCIPAL_RE, allowed="user:, email:, group:, org:, access-id:")
    writers = PrincipalListField(pattern=PRINCIPAL_RE, allowed="user:, email:, group:, org:, access-id:")

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
            if key in writable and contains_nul(value):
                # PostgreSQL text and jsonb cannot store NUL; say which attribute carries one.
                errors[key] = ["NUL characters (\\u0000) are not allowed."]
            elif key in writable:
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

    # ---- reading -------------------------------------------------------------------------------------------
    # DRF's generic `to_representation` costs ~0.5 ms per image (46 fields, each through get_attribute,
    # is_simple_callable and a to_representation call); a search page of 100 images spent more time there
    # than in PostgreSQL. The read plan below is computed once per serializer instance: plain attribute
    # fields whose DRF class is known get a direct converter with exactly DRF's result (None stays None,
    # floats float(), ints int(), strings str(), JSON as is, lists item by item, timestamps and geometries
    # through our own fields); every other field (custom sources, method fields, choice fields…) keeps
    # DRF's own path. tests/imagery/test_search_performance.py asserts both give equal documents.
    def _read_plan(self) -> list[tuple[str, Any, Any]]:
        plan = getattr(self, "_cached_read_plan", None)
        if plan is None:
            plan = []
            for field in self._readable_fields:
                simple = field.source == field.field_name and "." not in field.source
                plan.append((field.field_name, _fast_converter(field) if simple else None, field))
            self._cached_read_plan = plan
        return plan

    def _fast_representation(self, instance, skip: tuple[str, ...] = ()) -> dict[str, Any]:
        data: dict[str, Any] = {}
        for name, convert, field in self._read_plan():
            if name in skip:  # replaced by the caller (the ACL lists, redacted per user)
                data[name] = None
                continue
            if convert is not None:
                value = getattr(instance, name)
                data[name] = None if value is None else convert(value)
                continue
            attribute = field.get_attribute(instance)
            check = attribute.pk if isinstance(attribute, serializers.PKOnlyObject) else attribute
            data[name] = None if check is None else field.to_representation(attribute)
        return data

    def _current_value(self, key: str) -> Any:
        return self.fields[key].to_representation(self.fields[key].get_attribute(self.instance))

    def to_representation(self, instance):
        request = self.context.get("request")
        data = self._fast_representation(instance, skip=self.ACL_FIELDS if request is not None else ())
        if request is not None:
            fields = tuple(field for field in self.ACL_FIELDS if field in data)
            data.update(visible_acls(request.user, instance, fields))
        data.pop("id", None)
        return data
