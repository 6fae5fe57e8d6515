"""The Catalog v2 filter language (protocol §3) compiled to a Django `Q`.

A filter is a JSON list of expressions, AND-ed. Leaves are `{"name", "op", "val"}`; inner nodes are
`{"and": [...]}` / `{"or": [...]}`. Each resource declares which attribute names are filterable and
which model column they read; the value kind (text, number, datetime, boolean, choice, array,
geometry) comes from the model field, so coercion and error messages are uniform.

Semantics (documented because the protocol leaves them to the server):
- `eq` with a scalar: equality; on array attributes (tags, owners…) "the array contains the value".
  `eq` with a list: IN for scalars, "contains any" for arrays. `eq` null: is null.
- `ne`: the negation of `eq`; rows where the attribute is null count as "not equal".
- `lt/lte/gt/gte`: ordered comparison on text, numbers and datetimes; null never matches.
- `prefix`: case-sensitive starts-with on text. `ilike`: SQL LIKE (`%`, `_`), case-insensitive.
- `isnull`: null, or an empty array; `isnotnull`: the opposite.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

from django.contrib.gis.db.models import GeometryField
from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.db.models import Lookup, Q
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from .geo import GeometryError, parse_geometry
from .jsonapi import BadRequest

OPS = ("eq", "ne", "lt", "lte", "gt", "gte", "prefix", "ilike", "isnull", "isnotnull")
MAX_DEPTH = 16
MAX_LEAVES = 500
MAX_LIST_VALUES = 10_000
MAX_SAFE_INTEGER = 2**53


@models.CharField.register_lookup
@models.TextField.register_lookup
class ILike(Lookup):
    """SQL `ILIKE` with the caller's own `%`/`_` wildcards (the client's `like()` operator)."""

    lookup_name = "ilike"

    def as_sql(self, compiler, connection):
        lhs, lhs_params = self.process_lhs(compiler, connection)
        rhs, rhs_params = self.process_rhs(compiler, connection)
        return f"{lhs}::text ILIKE {rhs}", [*lhs_params, *rhs_params]


class Kind:
    TEXT = "text"
    NUMBER = "number"
    INTEGER = "integer"
    DATETIME = "datetime"
    BOOLEAN = "boolean"
    GEOMETRY = "geometry"


@dataclass(frozen=True)
class FilterField:
    """One filterable attribute: its wire name, the ORM path, its value kind and allowed choices."""

    name: str
    path: str
    kind: str
    is_array: bool = False
    choices: tuple[str, ...] | None = None


def field_for(model: type[models.Model], name: str, path: str | None = None) -> FilterField:
    """Describe attribute `name` of `model` (column `path`, default the same name) for the filter compiler."""
    path = path or name
    model_field = model._meta.get_field(path.split("__")[0])
    if isinstance(model_field, models.ForeignKey):
        # `product_id` compares the related primary key: `product__pk` allows text lookups (prefix, ilike)
        # and Django trims the join, so it is still the local column.
        path = f"{model_field.name}__pk"
        model_field = model_field.target_field
    is_array = isinstance(model_field, ArrayField)
    base = model_field.base_field if is_array else model_field
    if isinstance(base, GeometryField):
        kind = Kind.GEOMETRY
    elif isinstance(base, models.DateTimeField):
        kind = Kind.DATETIME
    elif isinstance(base, models.BooleanField):
        kind = Kind.BOOLEAN
    elif isinstance(base, models.IntegerField):
        kind = Kind.INTEGER
    elif isinstance(base, (models.FloatField, models.DecimalField)):
        kind = Kind.NUMBER
    else:
        kind = Kind.TEXT
    choices = tuple(value for value, _ in base.choices) if base.choices else None
    return FilterField(name=name, path=path, kind=kind, is_array=is_array, choices=choices)


def parse_timestamp(value: Any) -> dt.datetime:
    """Accept ISO datetimes (naive = UTC, `Z`, offsets) and plain dates, as the client sends them."""
    if isinstance(value, dt.datetime):
        parsed = value
    elif isinstance(value, str):
        text = value.strip()
        try:
            parsed = parse_datetime(text.replace("z", "Z").replace("Z", "+00:00")) if text else None
        except (ValueError, OverflowError) as exc:
            raise ValueError(f"{value!r} is not a valid ISO 8601 date or datetime") from exc
        if parsed is None:
            day = parse_date(text) if text else None
            if day is None:
                raise ValueError(f"{value!r} is not an ISO 8601 date or datetime")
            parsed = dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)
    else:
        raise ValueError(f"{value!r} is not an ISO 8601 date or datetime string")
    if timezone.is_naive(parsed):
        parsed = parsed.replace(tzinfo=dt.UTC)
    try:
        return parsed.astimezone(dt.UTC)
    except OverflowError as exc:
        raise ValueError(f"{value!r} is outside the representable range of dates") from exc


class FilterCompiler:
    """Compiles one resource's filters. `fields` maps wire names to FilterField."""

    def __init__(self, fields: dict[str, FilterField], *, parameter: str = "filter"):
        self.fields = fields
        self.parameter = parameter
        self.leaves = 0

    def error(self, message: str) -> BadRequest:
        return BadRequest(message, parameter=self.parameter)

    def compile(self, raw: Any) -> Q:
        """Compile the `filter` body value (a JSON string, or an already-decoded list) to a Q."""
        if raw in (None, "", []):
            return Q()
        if isinstance(raw, str):
            try:
                raw = json.loads(raw)
            except RecursionError as exc:
                raise self.error(f"filter is nested deeper than {MAX_DEPTH} levels") from exc
            except ValueError as exc:
                raise self.error(f"filter is not valid JSON: {exc}") from exc
        if isinstance(raw, dict):
            raw = [raw]
        if not isinstance(raw, list):
            raise self.error("filter must be a JSON list of filter expressions")
        q = Q()
        for expression in raw:
            q &= self._node(expression, depth=1)
        return q

    def _node(self, node: Any, *, depth: int) -> Q:
        if depth > MAX_DEPTH:
            raise self.error(f"filter is nested deeper than {MAX_DEPTH} levels")
        if not isinstance(node, dict):
            raise self.error(f"filter expression must be an object, got {json.dumps(node)[:100]}")
        for boolean in ("and", "or"):
            if boolean in node:
                if set(node) != {boolean}:
                    raise self.error(f"an '{boolean}' expression takes no other keys than '{boolean}'")
                children = node[boolean]
                if not isinstance(children, list) or not children:
                    raise self.error(f"'{boolean}' needs a non-empty list of expressions")
                compiled = [self._node(child, depth=depth + 1) for child in children]
                q = compiled[0]
                for child in compiled[1:]:
                    q = (q & child) if boolean == "and" else (q | child)
                return q
        return self._leaf(node)

    def _leaf(self, node: dict[str, Any]) -> Q:
        self.leaves += 1
        if self.leaves > MAX_LEAVES:
            raise self.error(f"filter has more than {MAX_LEAVES} expressions")
        unknown = set(node) - {"name", "op", "val"}
        if unknown:
            raise self.error(f"unknown key(s) {sorted(unknown)} in filter expression; use name, op and val")
        name, op = node.get("name"), node.get("op")
        if not isinstance(name, str) or name not in self.fields:
            raise self.error(f"cannot filter on {name!r}; filterable attributes are {sorted(self.fields)}")
        if op not in OPS:
            raise self.error(f"unknown filter operator {op!r} for {name}; use one of {list(OPS)}")
        field = self.fields[name]
        if op in ("isnull", "isnotnull"):
            q = Q(**{f"{field.path}__isnull": True})
            if field.is_array:
                q |= Q(**{f"{field.path}__len": 0})
            return q if op == "isnull" else ~q
        if "val" not in node:
            raise self.error(f"filter on {name} with op {op} needs a 'val'")
        value = node["val"]
        if op in ("eq", "ne"):
            q = self._equals(field, value)
            return q if op == "eq" else ~q
        if value is None:
            raise self.error(f"op {op} on {name} needs a non-null value")
        if field.is_array or field.kind in (Kind.GEOMETRY, Kind.BOOLEAN):
            raise self.error(f"op {op} is not supported on {name}; use eq, ne, isnull or isnotnull")
        if op in ("prefix", "ilike"):
            if field.kind != Kind.TEXT:
                raise self.error(f"op {op} applies to text attributes only, not {name}")
            if not isinstance(value, str):
                raise self.error(f"op {op} on {name} needs a string value")
            lookup = "startswith" if op == "prefix" else "ilike"
            return Q(**{f"{field.path}__{lookup}": value})
        return Q(**{f"{field.path}__{op}": self._coerce(field, value)})

    def _equals(self, field: FilterField, value: Any) -> Q:
        if value is None:
            return Q(**{f"{field.path}__isnull": True})
        if isinstance(value, list) and field.kind != Kind.GEOMETRY:
            if not value:
                raise self.error(f"an empty list matches nothing for {field.name}")
            if len(value) > MAX_LIST_VALUES:
                raise self.error(f"at most {MAX_LIST_VALUES} values in a list for {field.name}")
            coerced = [self._coerce(field, item) for item in value]
            lookup = "overlap" if field.is_array else "in"
            return Q(**{f"{field.path}__{lookup}": coerced})
        coerced = self._coerce(field, value)
        if field.kind == Kind.GEOMETRY:
            return Q(**{f"{field.path}__equals": coerced})
        if field.is_array:
            return Q(**{f"{field.path}__contains": [coerced]})
        return Q(**{field.path: coerced})

    def _coerce(self, field: FilterField, value: Any) -> Any:
        name = field.name
        try:
            if field.kind == Kind.GEOMETRY:
                return parse_geometry(value)
            if field.kind == Kind.DATETIME:
                return parse_timestamp(value)
            if field.kind == Kind.BOOLEAN:
                if isinstance(value, bool):
                    return value
                if isinstance(value, str) and value.lower() in ("true", "false"):
                    return value.lower() == "true"
                raise ValueError(f"{value!r} is not a boolean")
            if field.kind in (Kind.NUMBER, Kind.INTEGER):
                if isinstance(value, bool) or not isinstance(value, (int, float, str)):
                    raise ValueError(f"{value!r} is not a number")
                try:
                    number = float(value)
                except OverflowError as exc:
                    raise ValueError("the number is too large") from exc
                if number != number or number in (float("inf"), float("-inf")):
                    raise ValueError(f"{value!r} is not a finite number")
                if field.kind == Kind.INTEGER and abs(number) > MAX_SAFE_INTEGER:
                    raise ValueError(f"{value!r} is outside the range of the attribute")
                return number
            if not isinstance(value, (str, int, float)) or isinstance(value, bool):
                raise ValueError(f"{json.dumps(value)[:100]} is not a string")
            text = str(value)
            if "\x00" in text:
                raise ValueError("NUL characters are not allowed")
            if field.choices is not None and text not in field.choices:
                raise ValueError(f"{text!r} is not one of {list(field.choices)}")
            return text
        except (ValueError, GeometryError) as exc:
            raise self.error(f"invalid value for {name}: {exc}") from exc
