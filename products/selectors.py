"""Read-side queries on products for the web UI: counts that respect the caller's access."""

from __future__ import annotations

from collections.abc import Iterable

from django.db.models import Count

from catalogsite.choices import Action
from imagery.models import Image

from .models import Band


def product_object_counts(*, user, product_ids: Iterable[str]) -> dict[str, dict[str, int]]:
    """Bands and images per product, counting only the rows `user` can see (a count is data too)."""
    ids = list(product_ids)
    counts = {pk: {"bands": 0, "images": 0} for pk in ids}
    if not ids:
        return counts
    for model, key in ((Band, "bands"), (Image, "images")):
        rows = (
            model.objects.restrict(user, Action.VIEW)
            .filter(product_id__in=ids)
            .order_by()
            .values("product_id")
            .annotate(n=Count("pk"))
        )
        for row in rows:
            counts[row["product_id"]][key] = row["n"]
    return counts
