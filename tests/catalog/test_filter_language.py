"""The filter language (protocol §3) against a reference evaluator written from `catalogsite/filtering.py`'s
documented semantics, plus sorting and keyset pagination against a reference order.

Semantics implemented by `reference_match` (quoted from the module docstring):
- `eq` scalar: equality; on array attributes "the array contains the value". `eq` list: IN for scalars,
  "contains any" for arrays. `eq` null: is null.
- `ne`: the negation of `eq`; rows where the attribute is null count as "not equal".
- `lt/lte/gt/gte`: ordered comparison on text, numbers and datetimes; null never matches.
- `prefix`: case-sensitive starts-with on text. `ilike`: SQL LIKE (`%`, `_`), case-insensitive.
- `isnull`: null, or an empty array; `isnotnull`: the opposite.
- the top-level list is AND-ed; `{"and": [...]}` / `{"or": [...]}` nest.
Datetime values: date-only = midnight UTC, naive = UTC, offsets converted. Sorting (catalogsite/pagination.py):
ASC NULLS LAST then id ASC; descending is the exact reverse (DESC NULLS FIRST, id DESC).
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest
from rest_framework.test import APIClient

from accounts.models import Organization, User
from accounts.tokens import issue_access_token
from imagery.models import Image
from products.models import Band, Product
from tests.catalog.helpers import (
    Api,
    ids_of,
    leaf,
    make_band,
    make_image,
    make_product,
    next_path,
    search_body,
)
from tests.factories import make_user

pytestmark = pytest.mark.django_db

UTC = dt.UTC
PLUS2 = dt.timezone(dt.timedelta(hours=2))
PLUS5 = dt.timezone(dt.timedelta(hours=5))


def at(*parts: int, tz: dt.tzinfo = UTC) -> dt.datetime:
    return dt.datetime(*parts, tzinfo=tz)


# ---- the data ----------------------------------------------------------------------------------------------------
# Wire attribute → (kind, is_array). Kinds: text, number, datetime, boolean.
PRODUCT_KINDS = {
    "id": ("text", False),
    "name": ("text", False),
    "description": ("text", False),
    "revisit_period_minutes_min": ("number", False),
    "start_datetime": ("datetime", False),
    "is_core": ("boolean", False),
    "product_tier": ("text", False),
    "tags": ("text", True),
    "default_display_bands": ("text", True),
}
PRODUCT_COLUMNS = (
    "id",
    "name",
    "description",
    "revisit_period_minutes_min",
    "start_datetime",
    "is_core",
    "product_tier",
    "tags",
    "default_display_bands",
)
PRODUCT_ROWS = [
    dict(zip(PRODUCT_COLUMNS, values, strict=True))
    for values in [
        ("acme:p00", "alpha", "Landsat mosaic", 10.0, at(2020, 1, 1), True, "gold", ["a", "b"], ["red", "green"]),
        ("acme:p01", "Alpine", None, 5.5, at(2020, 1, 1, 12), False, "silver", ["b"], None),
        ("acme:p02", "beta", "sentinel_2 L1C", None, at(2020, 6, 15, 10, 30, tz=PLUS2), None, None, [], []),
        ("acme:p03", "gamma", "100% cloud-free", 20.0, None, True, "gold", ["c"], ["red"]),
        ("acme:p04", "delta", "", 5.5, at(2019, 12, 31, 23), None, "bronze", ["a"], None),
        ("acme:p05", "alpha2", "landsat", 0.0, at(2021, 3, 1), False, None, ["a", "c"], []),
        ("acme:p06", "zeta", None, -1.5, at(2020, 1, 1), True, "GOLD", [], None),
        ("acme:p07", "Eta_x", "sentinelx2", None, None, None, "silver", ["x y"], ["nir"]),
        ("acme:p08", "theta", "Sentinel-2", None, at(2020, 1, 1, 0, 0, 0, 500000), False, None, ["b", "c"], None),
        ("acme:q09", "iota", "landsat 8", 100.0, at(2022, 1, 1, 5, tz=PLUS5), None, "silver", ["a"], None),
    ]
]

IMAGE_KINDS = {
    "id": ("text", False),
    "name": ("text", False),
    "product_id": ("text", False),
    "acquired": ("datetime", False),
    "published": ("datetime", False),
    "cloud_fraction": ("number", False),
    "storage_state": ("text", False),
    "x_pixels": ("number", False),
    "provider_id": ("text", False),
    "tags": ("text", True),
}
IMAGE_COLUMNS = (
    "product_id",
    "name",
    "acquired",
    "published",
    "cloud_fraction",
    "storage_state",
    "x_pixels",
    "provider_id",
    "tags",
)
IMAGE_ROWS = [
    dict(zip(IMAGE_COLUMNS, values, strict=True))
    for values in [
        ("acme:imgs", "i00", at(2020, 1, 1), None, 0.1, "available", 100, "prov-a", ["t1"]),
        ("acme:imgs", "i01", at(2020, 1, 15, 12), at(2020, 2, 1), None, "remote", None, None, []),
        ("acme:imgs", "i02", at(2020, 2, 1, tz=PLUS2), None, 0.5, "available", 50, "prov-b", ["t1", "t2"]),
        ("acme:imgs", "i03", None, at(2020, 3, 1), 0.9, "remote", 200, "prov-a", ["t2"]),
        ("acme:more", "i04", at(2020, 3, 1), None, 0.0, "available", 100, None, []),
        ("acme:more", "i05", at(2019, 12, 31, 23, 59, 59, 999000), None, 0.49, "remote", 1, "PROV-A", ["t1"]),
        ("acme:more", "j06", at(2020, 1, 1), at(2021, 1, 1), 0.1, "available", 100, "prov-c", ["t3"]),
    ]
]
for row in IMAGE_ROWS:
    row["id"] = f"{row['product_id']}:{row['name']}"

BAND_KINDS = {
    "id": ("text", False),
    "name": ("text", False),
    "product_id": ("text", False),
    "type": ("text", False),
    "wavelength_nm_center": ("number", False),
    "sort_order": ("number", False),
    "data_type": ("text", False),
    "is_alpha": ("boolean", False),
    "frequency": ("number", False),
    "tags": ("text", True),
}
BAND_COLUMNS = ("name", "type", "wavelength_nm_center", "sort_order", "data_type", "is_alpha", "frequency", "tags")
BAND_ROWS = [
    dict(zip(BAND_COLUMNS, values, strict=True))
    for values in [
        ("red", "spectral", 665.0, 0, "UInt16", None, None, ["vis"]),
        ("green", "spectral", 560.0, 1, "Byte", None, None, ["vis"]),
        ("nir", "spectral", 842.0, 2, "UInt16", None, None, []),
        ("alpha", "mask", None, 3, "Byte", True, None, []),
        ("cloud", "mask", None, 4, None, False, None, ["qa"]),
        ("landcover", "class", None, 5, "UInt16", None, None, []),
        ("vv", "microwave", None, None, "Float32", None, 5.4, []),
        ("gen", "generic", None, 7, None, None, None, ["qa", "vis"]),
    ]
]
for row in BAND_ROWS:
    row["product_id"] = "acme:bnd"
    row["id"] = f"acme:bnd:{row['name']}"


NAMESPACES = ("acme", "elsewhere")
USERNAMES = ("filter-owner", "filter-stranger")


def _build_dataset(owner) -> None:
    """Everything above, owned by `owner`; plus decoys with matching values that `owner` cannot read."""
    owners = [f"user:{owner.namespace}", "org:acme"]
    for row in PRODUCT_ROWS:
        make_product(row["id"], owners=owners, **{k: v for k, v in row.items() if k != "id"})
    stranger = make_user("filter-stranger", org="elsewhere")
    hidden = make_product(
        "elsewhere:p00",
        owners=[f"user:{stranger.namespace}"],
        name="alpha",
        tags=["a"],
        revisit_period_minutes_min=5.5,
        is_core=True,
        product_tier="gold",
    )
    products = {pid: make_product(pid, owners=owners, name=pid) for pid in ("acme:imgs", "acme:more", "acme:bnd")}
    for row in IMAGE_ROWS:
        values = {k: v for k, v in row.items() if k not in ("id", "product_id", "name")}
        make_image(products[row["product_id"]], row["name"], **values)
    make_image(hidden, "i00", cloud_fraction=0.1, tags=["t1"], storage_state="remote", x_pixels=100)
    for row in BAND_ROWS:
        values = {k: v for k, v in row.items() if k not in ("id", "product_id", "name", "type")}
        make_band(products["acme:bnd"], row["name"], band_type=row["type"], **values)
    make_band(hidden, "red", band_type="mask", is_alpha=True, sort_order=0, data_type="UInt16")


def _destroy_dataset() -> None:
    Image.objects.filter(product__namespace__in=NAMESPACES).delete()
    Band.objects.filter(product__namespace__in=NAMESPACES).delete()
    Product.objects.filter(namespace__in=NAMESPACES).delete()
    User.objects.filter(username__in=USERNAMES).delete()
    Organization.objects.filter(slug__in=NAMESPACES).delete()


@pytest.fixture(scope="module")
def dataset(django_db_setup, django_db_blocker):
    """Built once for the module and committed; every test runs in its own rolled-back transaction on top
    (so the inserts and deletes of the pagination tests vanish after each test). Returns (owner, Api)."""
    with django_db_blocker.unblock():
        _destroy_dataset()
        try:
            owner = make_user("filter-owner", org="acme")
            _build_dataset(owner)
            client = APIClient()
            client.credentials(HTTP_AUTHORIZATION=f"Bearer {issue_access_token(user=owner)}")
            yield owner, Api(client)
        finally:
            _destroy_dataset()


@pytest.fixture
def owner(dataset):
    return dataset[0]


@pytest.fixture
def client(dataset) -> Api:
    return dataset[1]


# ---- the reference evaluator -------------------------------------------------------------------------------------
def parse_when(value: str) -> dt.datetime:
    parsed = dt.datetime.fromisoformat(value)  # date-only strings parse to midnight
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def coerce(kind: str, value: Any) -> Any:
    if kind == "datetime":
        return parse_when(value)
    if kind == "number":
        return float(value)
    if kind == "boolean":
        return value if isinstance(value, bool) else value.lower() == "true"
    return str(value)


def like(pattern: str, text: str) -> bool:
    regex = "".join(".*" if ch == "%" else "." if ch == "_" else re.escape(ch) for ch in pattern)
    return re.fullmatch(regex, text, flags=re.IGNORECASE | re.DOTALL) is not None


def equals(kind: str, is_array: bool, current: Any, value: Any) -> bool:
    if value is None:
        return current is None
    if isinstance(value, list):
        wanted = [coerce(kind, item) for item in value]
        if is_array:
            return any(item in (current or []) for item in wanted)
        return current is not None and current in wanted
    wanted = coerce(kind, value)
    if is_array:
        return wanted in (current or [])
    return current is not None and current == wanted


def reference_match(expression: dict[str, Any], row: dict[str, Any], kinds: dict[str, tuple[str, bool]]) -> bool:
    if "and" in expression:
        return all(reference_match(child, row, kinds) for child in expression["and"])
    if "or" in expression:
        return any(reference_match(child, row, kinds) for child in expression["or"])
    name, op = expression["name"], expression["op"]
    kind, is_array = kinds[name]
    current = row[name]
    if isinstance(current, dt.datetime):
        current = current.astimezone(UTC)
    if op in ("isnull", "isnotnull"):
        empty = current is None or (is_array and current == [])
        return empty if op == "isnull" else not empty
    value = expression["val"]
    if op == "eq":
        return equals(kind, is_array, current, value)
    if op == "ne":
        return not equals(kind, is_array, current, value)
    if current is None:
        return False
    if op == "prefix":
        return current.startswith(value)
    if op == "ilike":
        return like(value, current)
    wanted = coerce(kind, value)
    return {"lt": current < wanted, "lte": current <= wanted, "gt": current > wanted, "gte": current >= wanted}[op]


def reference_ids(rows, kinds, expressions) -> list[str]:
    return sorted(row["id"] for row in rows if all(reference_match(e, row, kinds) for e in expressions))


# ---- the cases -------------------------------------------------------------------------------------------------
def case(case_id: str, *expressions: dict[str, Any]):
    return pytest.param(list(expressions), id=case_id)


def both(a, b, *more):
    return {"and": [a, b, *more]}


def either(a, b, *more):
    return {"or": [a, b, *more]}


PRODUCT_CASES = [
    # eq / ne on text
    case("eq-text", leaf("name", "eq", "alpha")),
    case("eq-text-is-case-sensitive", leaf("name", "eq", "ALPHA")),
    case("eq-list-is-in", leaf("name", "eq", ["alpha", "beta", "nope"])),
    case("eq-empty-string", leaf("description", "eq", "")),
    case("eq-null-is-null", leaf("description", "eq", None)),
    case("ne-text-includes-nulls", leaf("description", "ne", "landsat")),
    case("ne-list-includes-nulls", leaf("product_tier", "ne", ["gold", "silver"])),
    case("ne-null-is-not-null", leaf("product_tier", "ne", None)),
    # ordered comparison on text (code point order)
    case("lt-text", leaf("product_tier", "lt", "h")),
    case("gte-text", leaf("name", "gte", "beta")),
    # numbers
    case("eq-number", leaf("revisit_period_minutes_min", "eq", 5.5)),
    case("eq-number-as-string", leaf("revisit_period_minutes_min", "eq", "5.5")),
    case("eq-number-list", leaf("revisit_period_minutes_min", "eq", [0, 100, 7])),
    case("ne-number-includes-nulls", leaf("revisit_period_minutes_min", "ne", 5.5)),
    case("lt-number", leaf("revisit_period_minutes_min", "lt", 5.5)),
    case("lte-number", leaf("revisit_period_minutes_min", "lte", 5.5)),
    case("gt-number", leaf("revisit_period_minutes_min", "gt", 5.5)),
    case("gte-number", leaf("revisit_period_minutes_min", "gte", 5.5)),
    case("gt-negative-integer", leaf("revisit_period_minutes_min", "gt", -1)),
    case("lt-zero", leaf("revisit_period_minutes_min", "lt", 0)),
    # booleans
    case("eq-true", leaf("is_core", "eq", True)),
    case("eq-false", leaf("is_core", "eq", False)),
    case("eq-true-as-string", leaf("is_core", "eq", "true")),
    case("ne-true-includes-nulls", leaf("is_core", "ne", True)),
    case("isnull-boolean", leaf("is_core", "isnull")),
    case("isnotnull-boolean", leaf("is_core", "isnotnull")),
    # datetimes: date-only, naive, offset
    case("eq-date-only-is-midnight-utc", leaf("start_datetime", "eq", "2020-01-01")),
    case("eq-naive-is-utc", leaf("start_datetime", "eq", "2020-01-01T00:00:00")),
    case("eq-offset", leaf("start_datetime", "eq", "2020-01-01T01:00:00+01:00")),
    case("eq-z-suffix", leaf("start_datetime", "eq", "2020-06-15T08:30:00Z")),
    case("eq-datetime-list", leaf("start_datetime", "eq", ["2020-01-01", "2021-03-01T00:00:00Z"])),
    case("ne-datetime-includes-nulls", leaf("start_datetime", "ne", "2020-01-01")),
    case("gte-naive", leaf("start_datetime", "gte", "2020-01-01T12:00:00")),
    case("lt-offset", leaf("start_datetime", "lt", "2020-01-01T00:00:00+01:00")),
    case("lte-offset", leaf("start_datetime", "lte", "2020-01-01T00:00:00+01:00")),
    case("gt-z", leaf("start_datetime", "gt", "2019-12-31T23:00:00Z")),
    case("gt-offset-boundary", leaf("start_datetime", "gt", "2020-06-15T10:30:00+02:00")),
    case("gte-offset-boundary", leaf("start_datetime", "gte", "2020-06-15T10:30:00+02:00")),
    case("lt-date-only", leaf("start_datetime", "lt", "2020-01-01")),
    case("gt-fractional-seconds", leaf("start_datetime", "gt", "2020-01-01T00:00:00.4")),
    case("isnull-datetime", leaf("start_datetime", "isnull")),
    # prefix and ilike
    case("prefix-is-case-sensitive", leaf("name", "prefix", "alp")),
    case("prefix-description", leaf("description", "prefix", "landsat")),
    case("prefix-tier", leaf("product_tier", "prefix", "g")),
    case("ilike-percent", leaf("name", "ilike", "alp%")),
    case("ilike-underscore", leaf("name", "ilike", "_eta")),
    case("ilike-contains", leaf("name", "ilike", "%ETA%")),
    case("ilike-underscore-matches-any-one-char", leaf("description", "ilike", "sentinel_2%")),
    case("ilike-no-wildcards-is-case-insensitive-equality", leaf("product_tier", "ilike", "gold")),
    case("ilike-literal-percent-sign-data", leaf("description", "ilike", "100%")),
    # isnull / isnotnull on text and arrays
    case("isnull-text", leaf("description", "isnull")),
    case("isnotnull-text", leaf("description", "isnotnull")),
    case("isnull-array-means-null-or-empty", leaf("default_display_bands", "isnull")),
    case("isnotnull-array", leaf("default_display_bands", "isnotnull")),
    case("isnull-tags", leaf("tags", "isnull")),
    case("isnotnull-tags", leaf("tags", "isnotnull")),
    # arrays
    case("eq-on-array-is-contains", leaf("tags", "eq", "a")),
    case("eq-on-array-with-space", leaf("tags", "eq", "x y")),
    case("eq-list-on-array-is-contains-any", leaf("tags", "eq", ["b", "c"])),
    case("ne-on-array", leaf("tags", "ne", "a")),
    case("ne-list-on-array", leaf("tags", "ne", ["b", "c"])),
    case("eq-on-nullable-array", leaf("default_display_bands", "eq", "red")),
    case("ne-on-nullable-array-includes-nulls", leaf("default_display_bands", "ne", "red")),
    case("eq-list-on-nullable-array", leaf("default_display_bands", "eq", ["nir", "green"])),
    # ids
    case("id-get-many", leaf("id", "eq", ["acme:p00", "acme:p03", "acme:nope", "elsewhere:p00"])),
    case("id-eq", leaf("id", "eq", "acme:p01")),
    case("id-ne", leaf("id", "ne", "acme:p01")),
    case("id-prefix", leaf("id", "prefix", "acme:p0")),
    # boolean structure
    case(
        "implicit-and",
        leaf("name", "ilike", "%a%"),
        leaf("revisit_period_minutes_min", "isnotnull"),
        leaf("start_datetime", "gte", "2020-01-01"),
    ),
    case("or", either(leaf("product_tier", "eq", "gold"), leaf("tags", "eq", "x y"))),
    case(
        "and-inside-or",
        either(
            leaf("product_tier", "eq", "gold"),
            both(leaf("revisit_period_minutes_min", "gte", 5), leaf("revisit_period_minutes_min", "lt", 10)),
        ),
    ),
    case(
        "or-inside-and",
        both(leaf("tags", "eq", "a"), either(leaf("is_core", "eq", True), leaf("description", "isnull"))),
    ),
    case(
        "deep",
        either(
            both(either(leaf("name", "prefix", "a"), leaf("name", "prefix", "t")), leaf("is_core", "eq", False)),
            leaf("id", "eq", "acme:q09"),
        ),
    ),
    case(
        "and-of-or-and-top-level",
        either(leaf("tags", "eq", "b"), leaf("tags", "eq", "c")),
        leaf("is_core", "ne", True),
        both(leaf("name", "ne", "theta"), leaf("tags", "isnotnull")),
    ),
]

IMAGE_CASES = [
    case("storage-state-eq", leaf("storage_state", "eq", "remote")),
    case("storage-state-ne", leaf("storage_state", "ne", "remote")),
    case("storage-state-list", leaf("storage_state", "eq", ["available", "remote"])),
    case("cloud-lt", leaf("cloud_fraction", "lt", 0.5)),
    case("cloud-lte", leaf("cloud_fraction", "lte", 0.5)),
    case("cloud-ne-includes-nulls", leaf("cloud_fraction", "ne", 0.1)),
    case("cloud-isnull", leaf("cloud_fraction", "isnull")),
    case("integer-gte", leaf("x_pixels", "gte", 100)),
    case("integer-eq", leaf("x_pixels", "eq", 100)),
    case("integer-lt-fraction", leaf("x_pixels", "lt", 50.5)),
    case("acquired-gte-date", leaf("acquired", "gte", "2020-01-01")),
    case("acquired-lt-offset", leaf("acquired", "lt", "2020-02-01T00:00:00+02:00")),
    case("acquired-lte-offset", leaf("acquired", "lte", "2020-02-01T00:00:00+02:00")),
    case("acquired-eq-date", leaf("acquired", "eq", "2020-03-01")),
    case("acquired-eq-list", leaf("acquired", "eq", ["2020-01-01", "2020-01-15T12:00:00"])),
    case("acquired-isnull", leaf("acquired", "isnull")),
    case("acquired-range", leaf("acquired", "gte", "2020-01-01"), leaf("acquired", "lt", "2020-02-01")),
    case("published-isnotnull", leaf("published", "isnotnull")),
    case("tags-eq", leaf("tags", "eq", "t1")),
    case("tags-eq-list", leaf("tags", "eq", ["t2", "t3"])),
    case("tags-isnull", leaf("tags", "isnull")),
    case("provider-ilike", leaf("provider_id", "ilike", "prov-a")),
    case("provider-prefix", leaf("provider_id", "prefix", "prov")),
    case("provider-isnull", leaf("provider_id", "isnull")),
    case("product-id-eq", leaf("product_id", "eq", "acme:more")),
    case("product-id-eq-list", leaf("product_id", "eq", ["acme:imgs", "acme:nope"])),
    case("product-id-ne", leaf("product_id", "ne", "acme:more")),
    case("product-id-prefix", leaf("product_id", "prefix", "acme:m")),
    case("product-id-ilike", leaf("product_id", "ilike", "%MORE")),
    case("name-ilike", leaf("name", "ilike", "i0_")),
    case("name-prefix", leaf("name", "prefix", "i0")),
    case("id-get-many", leaf("id", "eq", ["acme:imgs:i00", "acme:more:i04", "elsewhere:p00:i00"])),
    case(
        "or-of-products-and-cloud",
        either(leaf("product_id", "eq", "acme:imgs"), leaf("product_id", "eq", "x")),
        leaf("cloud_fraction", "lt", 0.6),
    ),
]

BAND_CASES = [
    case("type-eq", leaf("type", "eq", "mask")),
    case("type-eq-list", leaf("type", "eq", ["mask", "class"])),
    case("type-ne", leaf("type", "ne", "spectral")),
    case("wavelength-gt", leaf("wavelength_nm_center", "gt", 600)),
    case("wavelength-isnull", leaf("wavelength_nm_center", "isnull")),
    case("sort-order-lte", leaf("sort_order", "lte", 2)),
    case("sort-order-ne", leaf("sort_order", "ne", 3)),
    case("data-type-eq", leaf("data_type", "eq", "UInt16")),
    case("data-type-ne-includes-nulls", leaf("data_type", "ne", "UInt16")),
    case("name-prefix", leaf("name", "prefix", "g")),
    case("is-alpha-true", leaf("is_alpha", "eq", True)),
    case("is-alpha-ne-true", leaf("is_alpha", "ne", True)),
    case("frequency-gte", leaf("frequency", "gte", 5)),
    case("tags-eq", leaf("tags", "eq", "vis")),
    case("product-and-type", leaf("product_id", "eq", "acme:bnd"), leaf("type", "eq", "spectral")),
    case("id-get-many", leaf("id", "eq", ["acme:bnd:red", "acme:bnd:vv", "elsewhere:p00:red"])),
]


def _check(client: Api, collection: str, rows, kinds, expressions) -> None:
    expected = reference_ids(rows, kinds, expressions)
    body = search_body(*expressions)

    response = client.put(collection, body)
    count = client.put(collection, {**body, "limit": 0})

    assert response.status_code == 200, response.content
    assert sorted(ids_of(response)) == expected
    assert count.status_code == 200, count.content
    assert count.json()["meta"]["count"] == len(expected)


@pytest.mark.parametrize("expressions", PRODUCT_CASES)
def test_product_filters_match_the_reference(client, dataset, expressions):
    rows = [row for row in PRODUCT_ROWS] + [
        {"id": pid, "name": pid, **dict.fromkeys(PRODUCT_COLUMNS[2:]), "tags": [], "default_display_bands": None}
        for pid in ("acme:imgs", "acme:more", "acme:bnd")
    ]
    _check(client, "products", rows, PRODUCT_KINDS, expressions)


@pytest.mark.parametrize("expressions", IMAGE_CASES)
def test_image_filters_match_the_reference(client, dataset, expressions):
    _check(client, "images", IMAGE_ROWS, IMAGE_KINDS, expressions)


@pytest.mark.parametrize("expressions", BAND_CASES)
def test_band_filters_match_the_reference(client, dataset, expressions):
    _check(client, "bands", BAND_ROWS, BAND_KINDS, expressions)


def test_the_reference_evaluator_is_not_trivial():
    """Guard against a reference that agrees with anything: every case set must discriminate."""
    for rows, kinds, cases in (
        (PRODUCT_ROWS, PRODUCT_KINDS, PRODUCT_CASES),
        (IMAGE_ROWS, IMAGE_KINDS, IMAGE_CASES),
        (BAND_ROWS, BAND_KINDS, BAND_CASES),
    ):
        sizes = [len(reference_ids(rows, kinds, param.values[0])) for param in cases]
        assert len(set(sizes)) > 3
        assert any(0 < size < len(rows) for size in sizes)


# ---- sorting and pagination --------------------------------------------------------------------------------------
PRODUCT_SORTS = [
    "name",
    "-name",
    "revisit_period_minutes_min",
    "-revisit_period_minutes_min",
    "start_datetime",
    "-start_datetime",
    "is_core",
    "-is_core",
    "product_tier",
    "-product_tier",
    "id",
    "-id",
]


def reference_order(rows: list[dict[str, Any]], sort: str | None) -> list[str]:
    """ASC NULLS LAST, id ASC; a descending sort is the exact reverse of its ascending order."""
    if not sort:
        return sorted(row["id"] for row in rows)
    name = sort.lstrip("-")
    ascending = sorted(rows, key=lambda row: (row[name] is None, row[name] if row[name] is not None else 0, row["id"]))
    order = [row["id"] for row in ascending]
    return order[::-1] if sort.startswith("-") else order


@pytest.mark.parametrize("page_size", [3, 100])
@pytest.mark.parametrize("sort", PRODUCT_SORTS)
def test_sorted_pages_concatenate_to_the_reference_order(client, dataset, settings, sort, page_size):
    settings.CATALOG_PAGE_SIZE = page_size
    body = search_body(leaf("id", "prefix", "acme:p"), sort=sort)
    rows = [row for row in PRODUCT_ROWS if row["id"].startswith("acme:p")]

    found, pages = client.search_all("products", body)

    assert found == reference_order(rows, sort)
    assert pages == -(-len(rows) // page_size)


@pytest.mark.parametrize(
    "sort",
    [
        "acquired",
        "-acquired",
        "cloud_fraction",
        "-cloud_fraction",
        "x_pixels",
        "-published",
        "storage_state",
        "-name",
        None,
    ],
)
def test_sorted_image_pages_concatenate_to_the_reference_order(client, dataset, settings, sort):
    settings.CATALOG_PAGE_SIZE = 2
    body = search_body(leaf("product_id", "eq", ["acme:imgs", "acme:more"]), sort=sort)

    found, _ = client.search_all("images", body)

    assert found == reference_order(IMAGE_ROWS, sort)


@pytest.mark.parametrize(
    ("limit", "page_size", "pages"), [(7, 3, 3), (6, 3, 2), (2, 3, 1), (9, 3, 3), (50, 3, 5), (1, 1, 1)]
)
def test_limit_is_a_total_cap_across_pages(client, dataset, settings, limit, page_size, pages):
    settings.CATALOG_PAGE_SIZE = page_size
    body = search_body(leaf("id", "prefix", "acme:"), sort="-revisit_period_minutes_min", limit=limit)
    rows = [row for row in PRODUCT_ROWS] + [
        {"id": pid, "revisit_period_minutes_min": None} for pid in ("acme:imgs", "acme:more", "acme:bnd")
    ]
    expected = reference_order(rows, "-revisit_period_minutes_min")[:limit]

    found, seen_pages = client.search_all("products", body)

    assert found == expected
    assert seen_pages == pages


def test_no_next_link_once_the_limit_is_reached(client, dataset, settings):
    settings.CATALOG_PAGE_SIZE = 3
    body = search_body(sort="name", limit=6)

    first = client.put("products", body)
    second = client.put(next_path(first.json()["links"]["next"]), body)

    assert len(ids_of(first)) == len(ids_of(second)) == 3
    assert "next" not in second.json()["links"] or second.json()["links"]["next"] is None


# Per sort: rows (id, revisit_period_minutes_min, start_datetime) that sort before the end of the first page.
BEFORE_CURSOR = {
    None: [("acme:p", None, None), ("acme:p000", None, None)],
    "revisit_period_minutes_min": [("acme:pa", -1000.0, None), ("acme:pb", -5.0, at(2030, 1, 1))],
    "-revisit_period_minutes_min": [("acme:pz", None, None), ("acme:pzz", None, at(2030, 1, 1))],
    "-start_datetime": [("acme:p", None, None), ("acme:p000", 3.0, at(2099, 1, 1))],
}


@pytest.mark.parametrize("sort", list(BEFORE_CURSOR))
def test_continuation_is_stable_under_inserts_before_the_cursor(client, owner, dataset, settings, sort):
    settings.CATALOG_PAGE_SIZE = 3
    rows = [row for row in PRODUCT_ROWS if row["id"].startswith("acme:p")]
    body = search_body(leaf("id", "prefix", "acme:p"), sort=sort)
    expected = reference_order(rows, sort)

    first = client.put("products", body)
    assert ids_of(first) == expected[:3]
    # New rows that sort before the cursor must neither shift the following pages nor appear in them.
    for product_id, revisit, start in BEFORE_CURSOR[sort]:
        make_product(
            product_id, owners=[f"user:{owner.namespace}"], revisit_period_minutes_min=revisit, start_datetime=start
        )
    found = ids_of(first)
    response = first
    while response.json()["links"].get("next"):
        response = client.put(next_path(response.json()["links"]["next"]), body)
        assert response.status_code == 200, response.content
        found += ids_of(response)

    assert found == expected
    assert len(found) == len(set(found))


def test_rows_inserted_after_the_cursor_are_returned_once(client, owner, dataset, settings):
    settings.CATALOG_PAGE_SIZE = 3
    rows = [row for row in PRODUCT_ROWS if row["id"].startswith("acme:p")]
    body = search_body(leaf("id", "prefix", "acme:p"), sort="revisit_period_minutes_min")

    first = client.put("products", body)
    make_product("acme:p99", owners=[f"user:{owner.namespace}"], revisit_period_minutes_min=7.0)
    found = ids_of(first)
    response = first
    while response.json()["links"].get("next"):
        response = client.put(next_path(response.json()["links"]["next"]), body)
        found += ids_of(response)

    late = {"id": "acme:p99", "revisit_period_minutes_min": 7.0}
    assert found == reference_order([*rows, late], "revisit_period_minutes_min")


def test_deleting_the_cursor_row_does_not_break_continuation(client, dataset, settings):
    settings.CATALOG_PAGE_SIZE = 3
    rows = [row for row in PRODUCT_ROWS if row["id"].startswith("acme:p")]
    body = search_body(leaf("id", "prefix", "acme:p"), sort="-start_datetime")
    expected = reference_order(rows, "-start_datetime")

    first = client.put("products", body)
    Product.objects.filter(pk=expected[2]).delete()
    rest, _ = Api(client.client).search_all(next_path(first.json()["links"]["next"]), body)

    assert ids_of(first) + rest == expected
