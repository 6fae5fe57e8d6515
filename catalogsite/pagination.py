"""Keyset pagination for catalog searches (no OFFSET: later pages cost what the first one does).

The order is always `(sort field, id)`, with PostgreSQL's default null placement (ASC NULLS LAST, DESC
NULLS FIRST) and the id tie-breaker in the same direction, so a single B-tree on `(…, field, id)` serves
both directions. The continuation token carries the last row's key and how many rows were returned so
far, which makes `limit` a total cap across pages as the client expects (protocol §2.2).
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

from django.db.models import F, Q, QuerySet
from django.db.models.fields.tuple_lookups import Tuple, TupleGreaterThan, TupleLessThan

from .filtering import parse_timestamp
from .jsonapi import BadRequest


@dataclass(frozen=True)
class Sort:
    name: str
    path: str
    descending: bool


@dataclass(frozen=True)
class Position:
    sort: str
    value: Any
    last_id: str
    returned: int


def _encode_value(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return {"t": value.astimezone(dt.UTC).isoformat()}
    return value


def _decode_value(value: Any) -> Any:
    if isinstance(value, dict) and set(value) == {"t"}:
        return parse_timestamp(value["t"])
    return value


def encode_token(position: Position) -> str:
    payload = {"s": position.sort, "v": _encode_value(position.value), "i": position.last_id, "n": position.returned}
    return base64.urlsafe_b64encode(json.dumps(payload, separators=(",", ":")).encode()).decode().rstrip("=")


def decode_token(token: str, *, sort: Sort | None) -> Position:
    try:
        padded = token + "=" * (-len(token) % 4)
        payload = json.loads(base64.urlsafe_b64decode(padded.encode()).decode())
        position = Position(
            sort=payload["s"], value=_decode_value(payload["v"]), last_id=str(payload["i"]), returned=int(payload["n"])
        )
    except (ValueError, KeyError, TypeError, RecursionError) as exc:
        raise BadRequest("Invalid continuation token.", parameter="continuation") from exc
    if position.returned < 0:
        raise BadRequest("Invalid continuation token.", parameter="continuation")
    expected = (("-" if sort.descending else "") + sort.name) if sort else ""
    if position.sort != expected:
        raise BadRequest(
            "The continuation token belongs to a search with another sort order.", parameter="continuation"
        )
    return position


def order_queryset(queryset: QuerySet, sort: Sort | None) -> QuerySet:
    if sort is None:
        return queryset.order_by("pk")
    if sort.descending:
        return queryset.order_by(F(sort.path).desc(nulls_first=True), "-pk")
    return queryset.order_by(F(sort.path).asc(nulls_last=True), "pk")


def fetch_page(queryset: QuerySet, sort: Sort | None, position: Position | None, size: int) -> list:
    """Up to `size` rows after `position` (from the start when None) in the order of `order_queryset`.

    Each SQL statement here is an index range scan on a B-tree `(…, sort field, id)`: the position is a
    row comparison `(field, id) > (value, last_id)`, which PostgreSQL turns into an index bound (an
    `a > x OR (a = x AND id > y)` filter it cannot, so every later page re-read all earlier ones).
    A row comparison is never true when the field is null, so the null rows, which sort last ascending
    and first descending, are read by a second statement on `field IS NULL` (also an index range),
    only when the first one does not fill the page. Order and null placement are exactly those of
    `order_queryset`; a row inserted behind the position is never returned, one inserted ahead of it
    appears once, and no row moves between pages, so the walk is stable under concurrent inserts.
    """
    if size <= 0:
        return []
    ordered = order_queryset(queryset, sort)
    if position is None:
        return list(ordered[:size])
    last_id = position.last_id
    if sort is None:
        return list(ordered.filter(pk__gt=last_id)[:size])
    if sort.path == "pk":
        return list(ordered.filter(pk__lt=last_id)[:size])  # only "-id" reaches here ("id" is sort None)
    path, value = sort.path, position.value
    null = Q(**{f"{path}__isnull": True})
    if sort.descending:  # NULLS FIRST: the null rows (by id descending), then the values descending
        if value is not None:
            return list(ordered.filter(TupleLessThan(Tuple(F(path), F("pk")), (value, last_id)))[:size])
        rows = list(queryset.filter(null, pk__lt=last_id).order_by("-pk")[:size])
        if len(rows) < size:
            rest = queryset.filter(~null).order_by(F(path).desc(), "-pk")
            rows += list(rest[: size - len(rows)])
        return rows
    if value is None:  # ASC NULLS LAST: inside the trailing null rows, by id
        return list(queryset.filter(null, pk__gt=last_id).order_by("pk")[:size])
    rows = list(ordered.filter(TupleGreaterThan(Tuple(F(path), F("pk")), (value, last_id)))[:size])
    if len(rows) < size:
        rows += list(queryset.filter(null).order_by("pk")[: size - len(rows)])
    return rows


def sort_value(obj: Any, sort: Sort | None) -> Any:
    if sort is None:
        return None
    value: Any = obj
    for part in sort.path.split("__"):
        value = getattr(value, part, None)
    return value
