"""Which stored objects are orphans: under staging/ or rasters/, referenced by nothing in the database.

Referenced: staged files of uploads that still need them, the result keys of successful uploads, the
files and previews of images. Everything under an upload that is still transferring, pending or running
is in use too (a job may have stored outputs it has not committed yet).
"""

from __future__ import annotations

from django.db.models import Q

from imagery.models import Image

from . import storage
from .choices import ImageUploadStatus
from .models import ImageUpload, ImageUploadFile

IN_FLIGHT = (ImageUploadStatus.TRANSFERRING, ImageUploadStatus.PENDING, ImageUploadStatus.RUNNING)


def referenced_keys() -> tuple[set[str], set[str]]:
    """(keys in use, upload ids whose objects are all in use)."""
    keys: set[str] = set()
    in_flight = set(ImageUpload.objects.filter(status__in=IN_FLIGHT).values_list("pk", flat=True))
    staged = ImageUploadFile.objects.filter(staging_key__isnull=False, staging_deleted_at__isnull=True).filter(
        Q(upload__status__in=IN_FLIGHT) | Q(upload__status=ImageUploadStatus.FAILURE)
    )
    keys.update(staged.values_list("staging_key", flat=True))
    for result in ImageUpload.objects.filter(status=ImageUploadStatus.SUCCESS).values_list("result_keys", flat=True):
        keys.update(result or [])
    for files, preview in Image.objects.exclude(files=[]).values_list("files", "preview_file").iterator():
        for item in files or []:
            key = storage.key_for_href(str(item.get("href") or ""))
            if key:
                keys.add(key)
        if preview:
            key = storage.key_for_href(preview)
            if key:
                keys.add(key)
    return keys, in_flight


def find_orphans() -> list[str]:
    keys, in_flight = referenced_keys()
    orphans = []
    for prefix in (storage.STAGING_PREFIX, storage.RASTERS_PREFIX):
        for key in storage.list_keys(prefix):
            parts = key.split("/")
            upload_id = parts[2] if len(parts) > 2 else ""
            if key in keys or upload_id in in_flight:
                continue
            orphans.append(key)
    return sorted(orphans)
