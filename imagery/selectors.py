"""Read-side queries on images: summaries over a restricted search queryset."""

from __future__ import annotations

import datetime as dt
from contextlib import contextmanager
from typing import Any

from dateutil.relativedelta import relativedelta
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, Max, Min, Sum
from django.db.models.functions import Trunc

from catalogsite.jsonapi import BadRequest
from catalogsite.serializers import format_timestamp

from .choices import SummaryInterval

STEPS = {
    SummaryInterval.YEAR: relativedelta(years=1),
    SummaryInterval.QUARTER: relativedelta(months=3),
    SummaryInterval.MONTH: relativedelta(months=1),
    SummaryInterval.WEEK: relativedelta(weeks=1),
    SummaryInterval.DAY: relativedelta(days=1),
    SummaryInterval.HOUR: relativedelta(hours=1),
    SummaryInterval.MINUTE: relativedelta(minutes=1),
}


@contextmanager
def parallel_scan(workers: int = 2):
    """Let PostgreSQL use parallel workers for the statements inside (off for our sessions, see settings).

    Summaries scan every matching row (hundreds of thousands for a large product), which parallel
    workers speed up about twofold; `SET LOCAL` ends with the transaction opened here.
    """
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"SET LOCAL max_parallel_workers_per_gather = {int(workers)}")
        yield


def summarize(*, queryset) -> dict[str, Any]:
    """count, total bytes and the product ids of the images in `queryset`, in ONE pass over the rows.

    Grouping by product (a handful of groups, a hash aggregate) gives the count, the bytes and the
    product list together; the totals are added up here. (Before: an aggregate plus a separate
    DISTINCT query, i.e. two scans of possibly hundreds of thousands of rows.)
    """
    with parallel_scan():
        rows = list(queryset.order_by().values("product_id").annotate(count=Count("pk"), bytes=Sum("size_bytes")))
    count = total = 0
    products = []
    for row in rows:
        count += row["count"]
        total += row["bytes"] or 0
        products.append(row["product_id"])
    return {"count": count, "bytes": total, "products": sorted(products)}


def truncate(value: dt.datetime, interval: str) -> dt.datetime:
    value = value.astimezone(dt.UTC)
    if interval == SummaryInterval.YEAR:
        return value.replace(month=1, day=1, hour=0, minute=0, second=0, microsecond=0)
    if interval == SummaryInterval.QUARTER:
        return value.replace(month=3 * ((value.month - 1) // 3) + 1, day=1, hour=0, minute=0, second=0, microsecond=0)
    if interval == SummaryInterval.MONTH:
        return value.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    if interval == SummaryInterval.WEEK:
        day = value.replace(hour=0, minute=0, second=0, microsecond=0)
        return day - dt.timedelta(days=day.weekday())
    if interval == SummaryInterval.DAY:
        return value.replace(hour=0, minute=0, second=0, microsecond=0)
    if interval == SummaryInterval.HOUR:
        return value.replace(minute=0, second=0, microsecond=0)
    return value.replace(second=0, microsecond=0)


def summarize_intervals(
    *, queryset, date_field: str, interval: str, start: dt.datetime | None, end: dt.datetime | None
) -> list[dict[str, Any]]:
    """Buckets of `interval` over `date_field` from `start` (inclusive) to `end` (exclusive), empty ones included."""
    if start is not None:
        queryset = queryset.filter(**{f"{date_field}__gte": start})
    if end is not None:
        queryset = queryset.filter(**{f"{date_field}__lt": end})
    queryset = queryset.filter(**{f"{date_field}__isnull": False}).order_by()
    if start is None or end is None:
        bounds = queryset.aggregate(low=Min(date_field), high=Max(date_field))
        if bounds["low"] is None:
            return []
        start = start or bounds["low"]
        end = end or bounds["high"] + dt.timedelta(microseconds=1)
    first = truncate(start, interval)
    buckets: list[dt.datetime] = []
    cursor = first
    while cursor < end:
        buckets.append(cursor)
        if len(buckets) > settings.CATALOG_MAX_SUMMARY_BUCKETS:
            raise BadRequest(
                f"More than {settings.CATALOG_MAX_SUMMARY_BUCKETS} {interval} intervals between _start "
                "and _end; choose a longer interval or a shorter range.",
                parameter="_start",
            )
        cursor = cursor + STEPS[interval]
    kind = "week" if interval == SummaryInterval.WEEK else interval
    # ONE grouped pass: (bucket, product) → count, bytes; buckets are folded here (before: two queries).
    with parallel_scan():
        rows = list(
            queryset.annotate(bucket=Trunc(date_field, kind, tzinfo=dt.UTC))
            .values("bucket", "product_id")
            .annotate(count=Count("pk"), bytes=Sum("size_bytes"))
        )
    by_bucket: dict[dt.datetime, dict[str, Any]] = {}
    for row in rows:
        bucket = by_bucket.setdefault(row["bucket"], {"count": 0, "bytes": 0, "products": set()})
        bucket["count"] += row["count"]
        bucket["bytes"] += row["bytes"] or 0
        bucket["products"].add(row["product_id"])
    out = []
    for bucket in buckets:
        row = by_bucket.get(bucket, {})
        out.append(
            {
                "count": row.get("count", 0),
                "bytes": row.get("bytes", 0),
                "products": sorted(row.get("products", ())),
                "interval_start": format_timestamp(bucket),
            }
        )
    return out
