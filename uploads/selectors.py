"""Read-side queries on uploads (status counts for monitoring and the admin)."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db.models import Count
from django.utils import timezone

from .choices import ImageUploadStatus
from .models import ImageUpload


def image_upload_status_counts() -> dict[str, int]:
    """How many uploads are in each status (security notes §3.5 item 10: counts by status)."""
    counts = dict.fromkeys(ImageUploadStatus.values, 0)
    for row in ImageUpload.objects.order_by().values("status").annotate(n=Count("pk")):
        counts[row["status"]] = row["n"]
    return counts


def image_uploads_stuck(*, now=None) -> dict[str, int]:
    """Uploads the reaper should be acting on: pending too long, running past their lease."""
    now = now or timezone.now()
    grace = now - timedelta(seconds=settings.INGEST_PENDING_GRACE)
    return {
        "pending_too_long": ImageUpload.objects.filter(status=ImageUploadStatus.PENDING, enqueued_at__lt=grace).count(),
        "running_expired": ImageUpload.objects.filter(
            status=ImageUploadStatus.RUNNING, lease_expires_at__lt=now
        ).count(),
    }
