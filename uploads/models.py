"""Image uploads: the job rows behind `/uploads_v2` (protocol §4.5, §5) and their append-only event log.

The upload row is the single source of truth for the ingest state machine. Every transition is a
conditional UPDATE (`WHERE status = … [AND lease_owner = …]`), so a redelivered broker message, a second
worker or the reaper can never move a row twice (security notes §3.5).
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q

from accounts.principals import principals_for
from catalogsite.choices import Action
from products.models import Product

from .choices import (
    EventComponent,
    ImageUploadEventSeverity,
    ImageUploadEventType,
    ImageUploadStatus,
    ImageUploadType,
    OverviewResampler,
)


def new_upload_id() -> str:
    """Upload ids are opaque and unguessable (protocol §7.2: server-generated strings)."""
    return uuid.uuid4().hex


class ImageUploadQuerySet(models.QuerySet):
    def restrict(self, user, action: str = Action.VIEW) -> ImageUploadQuerySet:
        """Uploads `user` may see or cancel: their own, and every upload into a product they own.

        The protocol says searches return uploads "created by this user"; product owners additionally
        need to see what is being ingested into their product. Product readers and writers do not see
        other people's uploads (their error messages and pending attributes are not theirs to read).
        """
        principals = principals_for(user)
        if principals.is_superuser:
            return self.all()
        if principals.is_anonymous:
            return self.none()
        owned = Product.objects.restrict(user, Action.SHARE).values("pk")
        return self.filter(Q(user=user) | Q(product__in=owned))


class ImageUpload(models.Model):
    """One upload of one image: the declared image attributes, the transferred files and the ingest state."""

    id = models.CharField(primary_key=True, max_length=32, default=new_upload_id, editable=False)
    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="image_uploads")
    image_id = models.CharField(max_length=4100, db_index=True)
    image_name = models.CharField(max_length=2000)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="image_uploads"
    )
    # The user's namespace at creation (the `user` attribute on the wire), kept if the account goes away.
    user_namespace = models.CharField(max_length=64, db_index=True)
    status = models.CharField(max_length=20, choices=ImageUploadStatus.choices, default=ImageUploadStatus.TRANSFERRING)
    upload_type = models.CharField(max_length=10, choices=ImageUploadType.choices, default=ImageUploadType.FILE)
    # The image attributes as the client sent them (validated at creation, re-validated by ingest); they
    # override whatever ingest derives from the files.
    image_attributes = models.JSONField(default=dict, blank=True)
    # image_upload_options as accepted: upload_type, image_files (basenames only), overviews, resampler, size.
    options = models.JSONField(default=dict, blank=True)
    overviews = models.JSONField(default=list, blank=True)
    overview_resampler = models.CharField(max_length=20, choices=OverviewResampler.choices, null=True, blank=True)
    declared_size = models.BigIntegerField(null=True, blank=True)
    # Ingest bookkeeping (security notes §3.5).
    attempts = models.PositiveIntegerField(default=0)
    lease_owner = models.CharField(max_length=200, null=True, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    enqueued_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(null=True, blank=True)
    # Storage keys written by the successful ingest (COGs, preview); the Image's files point at them.
    result_keys = models.JSONField(default=list, blank=True)
    created = models.DateTimeField(auto_now_add=True, db_index=True)
    modified = models.DateTimeField(auto_now=True, db_index=True)

    objects = ImageUploadQuerySet.as_manager()

    class Meta:
        ordering = ["-created", "id"]
        indexes = [
            models.Index(fields=["product", "created", "id"], name="upload_product_created"),
            models.Index(fields=["status", "enqueued_at"], name="upload_status_enqueued"),
            models.Index(fields=["status", "lease_expires_at"], name="upload_status_lease"),
        ]

    def __str__(self) -> str:
        return f"{self.id} ({self.image_id}, {self.status})"

    @property
    def namespace(self) -> str:
        """The storage namespace (the product's org or user namespace): keys never come from user strings."""
        return self.product.namespace


class ImageUploadFile(models.Model):
    """One file of an upload: where its bytes were staged and what they hash to.

    `received_at` set means the resumable URL has been used: the single-use rule is a conditional update
    on this row, taken under a row lock while the bytes stream in.
    """

    upload = models.ForeignKey(ImageUpload, on_delete=models.CASCADE, related_name="files")
    index = models.PositiveSmallIntegerField()
    # Basename of the client-side path, for messages only; never used as a path or passed to GDAL.
    original_name = models.CharField(max_length=255, blank=True, default="")
    cap_bytes = models.BigIntegerField()
    staging_key = models.CharField(max_length=500, null=True, blank=True)
    size_bytes = models.BigIntegerField(null=True, blank=True)
    sha256 = models.CharField(max_length=64, null=True, blank=True)
    md5 = models.CharField(max_length=32, null=True, blank=True)
    received_at = models.DateTimeField(null=True, blank=True)
    staging_deleted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["upload", "index"]
        constraints = [models.UniqueConstraint(fields=["upload", "index"], name="upload_file_unique_index")]

    def __str__(self) -> str:
        return f"{self.upload_id}/{self.index}"


class ImageUploadEvent(models.Model):
    """An append-only record of what happened to an upload (the protocol's `image_upload_event`)."""

    upload = models.ForeignKey(ImageUpload, on_delete=models.CASCADE, related_name="events")
    event_datetime = models.DateTimeField(auto_now_add=True)
    component = models.CharField(max_length=40, choices=EventComponent.choices)
    component_id = models.CharField(max_length=200, blank=True, default="")
    event_type = models.CharField(max_length=20, choices=ImageUploadEventType.choices)
    severity = models.CharField(
        max_length=10, choices=ImageUploadEventSeverity.choices, default=ImageUploadEventSeverity.INFO
    )
    message = models.TextField(blank=True, default="")
    data = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["upload", "id"]
        constraints = [
            # The database, not just the code, guarantees that an upload completes exactly once.
            models.UniqueConstraint(
                fields=["upload"],
                condition=Q(event_type=ImageUploadEventType.COMPLETE),
                name="upload_event_one_complete",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.upload_id} {self.event_type} {self.severity}"


class ReaperState(models.Model):
    """The singleton row that keeps one periodic reaper chain alive across workers (see uploads.tasks)."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1, editable=False)
    chain_id = models.CharField(max_length=32, blank=True, default="")
    last_run_at = models.DateTimeField(null=True, blank=True)
    next_run_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"reaper chain {self.chain_id or '-'} next {self.next_run_at}"
