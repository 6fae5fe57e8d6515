"""Side effects of uploads: create, receive bytes, change status, ingest, reap. Every interface calls these.

State machine (protocol §5.3, security notes §3.5):

    transferring --PATCH pending--> pending --claim--> running --> success | failure
    transferring | pending --PATCH canceled--> canceled
    running (lease expired) --reaper--> pending (again) or failure (attempts exhausted)

Each transition is one conditional UPDATE or a row locked with `select_for_update()` and re-checked,
so a redelivered message, a second worker or the reaper can never apply a transition twice.
Enqueueing happens only in `transaction.on_commit`.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import DatabaseError, OperationalError, connection, transaction
from django.db.models import F, Q
from django.utils import timezone
from rest_framework import exceptions

from accounts.principals import principals_for
from catalogsite.choices import Action
from catalogsite.jsonapi import BadRequest, Conflict
from catalogsite.permissions import can
from imagery.models import Image
from imagery.services import image_upsert_from_ingest
from products.services import writable_product

from . import storage
from .choices import (
    CANCELABLE_STATUSES,
    TERMINAL_STATUSES,
    EventComponent,
    ImageUploadEventSeverity,
    ImageUploadEventType,
    ImageUploadStatus,
    ImageUploadType,
)
from .models import ImageUpload, ImageUploadEvent, ImageUploadFile, ReaperState
from .sandbox import ChildLimits, run_child
from .tokens import InvalidUploadToken, issue_upload_token, read_upload_token

logger = logging.getLogger(__name__)

# An .npy file is its data plus a header; numpy writes headers of at most a few KiB, 64 KiB is ample.
NPY_HEADER_ALLOWANCE = 64 * 1024
SPOOL_CHUNK = 1024 * 1024
REAPER_BATCH = 200


class TransientIngestError(Exception):
    """Storage or database trouble during ingest: the upload goes back to pending and is retried."""


class UploadTransferError(Exception):
    """A byte transfer was refused; `status` is the HTTP status to answer (one the client maps)."""

    def __init__(self, message: str, *, status: int):
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class UploadSpec:
    """A validated create request (see uploads.api.serializers)."""

    product_id: str
    image_name: str
    image_attributes: dict[str, Any]
    upload_type: str
    image_files: list[str]
    overviews: list[int]
    overview_resampler: str | None
    upload_size: int | None


def worker_id() -> str:
    """Who holds a lease: host, process and thread (the crash test uses the pid to kill the right process)."""
    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"


def _event(
    upload: ImageUpload,
    event_type: str,
    message: str,
    *,
    severity: str = ImageUploadEventSeverity.INFO,
    component: str = EventComponent.INGEST,
    component_id: str = "",
    data: dict | None = None,
) -> None:
    ImageUploadEvent.objects.create(
        upload=upload,
        event_type=event_type,
        severity=severity,
        message=message[:10_000],
        component=component,
        component_id=component_id,
        data=data or {},
    )


# ---- creation and transfer ------------------------------------------------------------------------------
def image_upload_create(*, user, spec: UploadSpec) -> tuple[ImageUpload, list[str]]:
    """Create a transferring upload into a product the caller can write; returns it and one token per file.

    An upload for an existing image id is accepted (the client's `overwrite=True` is not on the wire) when
    the caller may change that image; ingest then replaces the image's data and attributes.
    """
    product = writable_product(user=user, product_id=spec.product_id)
    image_id = f"{product.pk}:{spec.image_name}"
    existing = Image.objects.filter(pk=image_id).first()
    if existing is not None and not can(user, existing, Action.CHANGE):
        raise exceptions.PermissionDenied(f"You cannot overwrite image {image_id}.")
    if spec.upload_type == ImageUploadType.NDARRAY and spec.upload_size is not None:
        cap = spec.upload_size + NPY_HEADER_ALLOWANCE
    else:
        cap = settings.UPLOAD_MAX_BYTES
    cap = min(cap, settings.UPLOAD_MAX_BYTES)
    upload = ImageUpload(
        product=product,
        image_id=image_id,
        image_name=spec.image_name,
        user=user,
        user_namespace=principals_for(user).namespace,
        upload_type=spec.upload_type,
        image_attributes=spec.image_attributes,
        options={
            "upload_type": spec.upload_type,
            "image_files": spec.image_files,
            "overviews": spec.overviews,
            "overview_resampler": spec.overview_resampler,
            "upload_size": spec.upload_size,
        },
        overviews=spec.overviews,
        overview_resampler=spec.overview_resampler,
        declared_size=spec.upload_size,
    )
    upload.full_clean(exclude=["user", "image_attributes", "options", "overviews", "result_keys"])
    upload.save(force_insert=True)
    ImageUploadFile.objects.bulk_create(
        [
            ImageUploadFile(upload=upload, index=index, original_name=name, cap_bytes=cap)
            for index, name in enumerate(spec.image_files)
        ]
    )
    tokens = [
        issue_upload_token(upload_id=upload.pk, index=index, cap_bytes=cap) for index in range(len(spec.image_files))
    ]
    return upload, tokens


def image_upload_receive_file(
    *, upload_id: str, index: int, token: str, read: Callable[[int], bytes], content_length: int | None
) -> ImageUploadFile:
    """Stream one file's bytes to staging storage, hashing on the way and enforcing the URL's byte cap.

    The file row stays locked (FOR UPDATE NOWAIT) while the bytes stream, and the upload row is held
    FOR SHARE, so a concurrent PUT to the same URL gets 409 and a cancel waits for the transfer.
    A URL that was used successfully cannot be used again.
    """
    try:
        grant = read_upload_token(token, upload_id=upload_id, index=index)
    except InvalidUploadToken as exc:
        raise UploadTransferError(str(exc), status=403) from exc
    cap = min(grant.cap_bytes, settings.UPLOAD_MAX_BYTES)
    if content_length is not None and content_length > cap:
        raise UploadTransferError(
            f"The file is {content_length} bytes; this upload URL accepts at most {cap}.", status=400
        )
    with transaction.atomic():
        try:
            with connection.cursor() as cursor:
                # FOR SHARE: parallel PUTs of different files are fine, a cancel/PATCH waits for them.
                cursor.execute(
                    f"SELECT 1 FROM {ImageUpload._meta.db_table} WHERE id = %s FOR SHARE NOWAIT", [upload_id]
                )
            upload_file = (
                ImageUploadFile.objects.select_for_update(nowait=True).filter(upload_id=upload_id, index=index).first()
            )
        except OperationalError as exc:
            raise UploadTransferError("Another transfer to this upload URL is in progress.", status=409) from exc
        upload = ImageUpload.objects.select_related("product").filter(pk=upload_id).first()
        if upload is None or upload_file is None:
            raise UploadTransferError("The upload does not exist.", status=404)
        if upload_file.received_at is not None:
            raise UploadTransferError("This upload URL has already been used.", status=409)
        if upload.status != ImageUploadStatus.TRANSFERRING:
            raise UploadTransferError(
                f"The upload is {upload.status}; bytes are accepted only while it is transferring.", status=409
            )
        key = storage.staging_key(namespace=upload.namespace, upload_id=upload.pk, index=index)
        spool_dir = Path(settings.UPLOAD_SPOOL_DIR)
        spool_dir.mkdir(parents=True, exist_ok=True)
        descriptor, spool_path = tempfile.mkstemp(prefix=f"{upload.pk}-{index}-", dir=spool_dir)
        try:
            size, md5, sha256 = _spool(descriptor, read=read, content_length=content_length, cap=cap)
            try:
                # A previous attempt may have stored the bytes and then failed to commit: this row is locked
                # and unreceived, so whatever sits at the key is that attempt's leftover.
                storage.delete_keys([key])
                stored = storage.save_local_file(key=key, path=spool_path, hashes=(size, md5, sha256))
            except Exception as exc:  # noqa: BLE001 - any backend error: the client retries 5xx PUTs
                logger.exception("Storing staged upload %s/%s failed", upload_id, index)
                raise UploadTransferError("Storage is unavailable; retry the upload.", status=503) from exc
        finally:
            Path(spool_path).unlink(missing_ok=True)
        upload_file.staging_key = stored.key
        upload_file.size_bytes = stored.size_bytes
        upload_file.md5 = stored.md5
        upload_file.sha256 = stored.sha256
        upload_file.received_at = timezone.now()
        upload_file.save(update_fields=["staging_key", "size_bytes", "md5", "sha256", "received_at"])
    return upload_file


def _spool(
    descriptor: int, *, read: Callable[[int], bytes], content_length: int | None, cap: int
) -> tuple[int, str, str]:
    sha256 = hashlib.sha256()
    md5 = hashlib.md5(usedforsecurity=False)
    size = 0
    with os.fdopen(descriptor, "wb") as spool:
        while True:
            want = SPOOL_CHUNK if content_length is None else min(SPOOL_CHUNK, content_length - size)
            if want <= 0:
                break
            chunk = read(want)
            if not chunk:
                break
            size += len(chunk)
            if size > cap:
                raise UploadTransferError(
                    f"The file is larger than the {cap} bytes this upload URL accepts.", status=400
                )
            sha256.update(chunk)
            md5.update(chunk)
            spool.write(chunk)
    if content_length is not None and size != content_length:
        raise UploadTransferError(f"The transfer ended after {size} of {content_length} bytes; retry it.", status=400)
    return size, md5.hexdigest(), sha256.hexdigest()


# ---- status changes requested by the client ---------------------------------------------------------------
def image_upload_set_status(*, user, upload: ImageUpload, status: str) -> ImageUpload:
    """The two transitions a client may ask for: transferring→pending (enqueue) and →canceled."""
    with transaction.atomic():
        locked = ImageUpload.objects.select_for_update().select_related("product").get(pk=upload.pk)
        if status == ImageUploadStatus.PENDING:
            if locked.status == ImageUploadStatus.PENDING:
                return locked  # a retried PATCH: already done
            if locked.status != ImageUploadStatus.TRANSFERRING:
                raise Conflict(f"Upload {locked.pk} is {locked.status}; only a transferring upload can become pending.")
            missing = [f for f in locked.files.all() if f.received_at is None]
            if missing:
                names = ", ".join(f"{f.index} ({f.original_name})" for f in missing)
                raise Conflict(f"File(s) {names} of upload {locked.pk} have not been transferred yet.")
            locked.status = ImageUploadStatus.PENDING
            locked.enqueued_at = timezone.now()
            locked.save(update_fields=["status", "enqueued_at", "modified"])
            image_upload_start_ingest(
                upload=locked, component=EventComponent.API, reason=f"by {principals_for(user).namespace}"
            )
            return locked
        if status == ImageUploadStatus.CANCELED:
            return _cancel(locked, component=EventComponent.API, message="Canceled by the user.")
        raise BadRequest(
            "status can only be set to 'pending' (files transferred) or 'canceled'.", pointer="/data/attributes/status"
        )


def image_upload_cancel(
    *, upload: ImageUpload, component: str = EventComponent.ADMIN, message: str = "Canceled by an administrator."
) -> ImageUpload:
    with transaction.atomic():
        locked = ImageUpload.objects.select_for_update().get(pk=upload.pk)
        return _cancel(locked, component=component, message=message)


def _cancel(locked: ImageUpload, *, component: str, message: str) -> ImageUpload:
    if locked.status not in CANCELABLE_STATUSES:
        raise Conflict(f"Upload {locked.pk} is {locked.status} and can no longer be canceled.")
    locked.status = ImageUploadStatus.CANCELED
    locked.finished_at = timezone.now()
    locked.save(update_fields=["status", "finished_at", "modified"])
    _event(locked, ImageUploadEventType.CANCEL, message, component=component)
    upload_id = locked.pk
    transaction.on_commit(lambda: delete_staging(upload_id=upload_id))
    return locked


def image_upload_start_ingest(*, upload: ImageUpload, component: str = EventComponent.API, reason: str = "") -> None:
    """Record a `queue` event and enqueue the ingest message once the surrounding transaction commits."""
    from .tasks import ingest_image_upload

    message = ingest_image_upload.message(upload.pk)
    text = f"Queued for ingest (message-id={message.message_id})"
    _event(upload, ImageUploadEventType.QUEUE, f"{text} {reason}".strip(), component=component)
    broker = ingest_image_upload.broker
    transaction.on_commit(lambda: broker.enqueue(message))
    reaper_kick_if_stale()


def reaper_kick_if_stale() -> None:
    """Revive the periodic reaper chain when it is dead (e.g. its delayed message was lost with Redis).

    Workers kick it when they boot; this covers a chain lost while the workers kept running. One
    indexed single-row read per enqueue.
    """
    if not settings.INGEST_REAPER_AUTOSTART:
        return
    state = ReaperState.objects.filter(pk=1).values_list("next_run_at", flat=True).first()
    horizon = timezone.now() - timedelta(seconds=2 * settings.INGEST_REAPER_INTERVAL)
    if state is None or state < horizon:
        from .tasks import reap_image_uploads

        transaction.on_commit(lambda: reap_image_uploads.send())


def image_upload_retry(*, upload: ImageUpload) -> ImageUpload:
    """Admin action: run a failed upload again (its staged files must still exist)."""
    with transaction.atomic():
        locked = ImageUpload.objects.select_for_update().get(pk=upload.pk)
        if locked.status != ImageUploadStatus.FAILURE:
            raise Conflict(f"Upload {locked.pk} is {locked.status}; only failed uploads can be retried.")
        if locked.files.filter(Q(staging_key__isnull=True) | Q(staging_deleted_at__isnull=False)).exists():
            raise Conflict(f"The staged files of upload {locked.pk} are gone; upload the image again.")
        locked.status = ImageUploadStatus.PENDING
        locked.attempts = 0
        locked.enqueued_at = timezone.now()
        locked.finished_at = None
        locked.last_error = None
        locked.save(update_fields=["status", "attempts", "enqueued_at", "finished_at", "last_error", "modified"])
        # The previous failure's `complete` event stays in the log under another type, so the new run can
        # complete exactly once.
        locked.events.filter(event_type=ImageUploadEventType.COMPLETE).update(event_type=ImageUploadEventType.LOG)
        image_upload_start_ingest(upload=locked, component=EventComponent.ADMIN, reason="(retried by an administrator)")
        return locked


# ---- ingest -------------------------------------------------------------------------------------------
@dataclass
class _Job:
    upload: ImageUpload
    worker: str
    workdir: Path
    stored: list[str] = field(default_factory=list)


def _claim(*, upload_id: str, worker: str) -> ImageUpload | None:
    """Take the lease (pending, or running with an expired lease) and count the attempt — committed
    before any byte is parsed, so a file that kills workers is bounded by INGEST_MAX_ATTEMPTS."""
    now = timezone.now()
    with transaction.atomic():
        claimed = (
            ImageUpload.objects.filter(pk=upload_id)
            .filter(Q(status=ImageUploadStatus.PENDING) | Q(status=ImageUploadStatus.RUNNING, lease_expires_at__lt=now))
            .update(
                status=ImageUploadStatus.RUNNING,
                attempts=F("attempts") + 1,
                lease_owner=worker,
                lease_expires_at=now + timedelta(seconds=settings.INGEST_LEASE_SECONDS),
                started_at=now,
                modified=now,
            )
        )
        if not claimed:
            return None
        upload = ImageUpload.objects.select_related("product").get(pk=upload_id)
        _event(upload, ImageUploadEventType.RUN, f"Running (attempt {upload.attempts})", component_id=worker)
    return upload


def _renew_lease(*, upload_id: str, worker: str) -> bool:
    now = timezone.now()
    try:
        return bool(
            ImageUpload.objects.filter(pk=upload_id, status=ImageUploadStatus.RUNNING, lease_owner=worker).update(
                lease_expires_at=now + timedelta(seconds=settings.INGEST_LEASE_SECONDS), modified=now
            )
        )
    except DatabaseError:
        logger.warning("Could not renew the lease of upload %s; continuing until it expires", upload_id)
        return True


def image_upload_ingest(*, upload_id: str) -> str:
    """Ingest one upload if it can be claimed. Returns success | failure | skipped | lost.

    Permanent problems (the content, the limits) end in `failure` with events and return normally;
    storage/database trouble raises TransientIngestError after putting the upload back to pending.
    """
    worker = worker_id()
    upload = _claim(upload_id=upload_id, worker=worker)
    if upload is None:
        return "skipped"
    if upload.attempts > settings.INGEST_MAX_ATTEMPTS:
        _finish_failure(
            upload=upload,
            worker=worker,
            event_type=ImageUploadEventType.ERROR,
            error="TooManyAttempts",
            message=f"ingest was started {upload.attempts - 1} times without finishing (the worker "
            "crashed, was killed or timed out each time); giving up.",
        )
        return "failure"
    root = Path(settings.INGEST_WORK_DIR)
    root.mkdir(parents=True, exist_ok=True)
    job = _Job(upload=upload, worker=worker, workdir=Path(tempfile.mkdtemp(prefix=f"job-{upload.pk}-", dir=root)))
    try:
        return _ingest(job)
    except TransientIngestError as exc:
        storage.delete_keys(job.stored)
        _release(upload=upload, worker=worker, message=str(exc))
        raise
    except DatabaseError as exc:
        storage.delete_keys(job.stored)
        _release(upload=upload, worker=worker, message=f"database error: {exc}")
        raise TransientIngestError(f"database error: {exc}") from exc
    except Exception:
        logger.exception("Ingest of upload %s failed unexpectedly", upload_id)
        storage.delete_keys(job.stored)
        _finish_failure(
            upload=upload,
            worker=worker,
            event_type=ImageUploadEventType.ERROR,
            error="InternalError",
            message="an internal error stopped the ingest; the operators have been notified.",
        )
        return "failure"
    finally:
        shutil.rmtree(job.workdir, ignore_errors=True)


def _ingest(job: _Job) -> str:
    upload = job.upload
    request = _child_request(job)
    limits = ChildLimits(
        timeout=settings.INGEST_CHILD_TIMEOUT,
        memory=settings.INGEST_CHILD_MEMORY,
        max_output=settings.INGEST_CHILD_MAX_OUTPUT,
    )
    outcome = run_child(
        request,
        workdir=str(job.workdir),
        limits=limits,
        scratch=settings.INGEST_WORK_DIR,
        heartbeat=lambda: _renew_lease(upload_id=upload.pk, worker=job.worker),
        heartbeat_every=max(1.0, settings.INGEST_LEASE_SECONDS / 3),
    )
    if outcome.lost_lease:
        logger.warning("Upload %s: lease lost while ingesting; another worker or the reaper took over", upload.pk)
        return "lost"
    if outcome.timed_out or outcome.killed_by == "SIGXCPU":
        _finish_failure(
            upload=upload,
            worker=job.worker,
            event_type=ImageUploadEventType.TIMEOUT,
            error="TimeoutError",
            message=f"processing the file took longer than the {settings.INGEST_CHILD_TIMEOUT} s limit.",
        )
        return "failure"
    document = outcome.document
    if document is None:
        logger.error(
            "Upload %s: ingest child ended with %s\n%s",
            upload.pk,
            outcome.killed_by or outcome.returncode,
            outcome.stderr_tail,
        )
        reason = f"was killed ({outcome.killed_by})" if outcome.killed_by else f"exited with {outcome.returncode}"
        _finish_failure(
            upload=upload,
            worker=job.worker,
            event_type=ImageUploadEventType.ERROR,
            error="ResourceLimitError",
            message=f"the file could not be processed within the ingest limits: the parser {reason} "
            f"(memory limit {settings.INGEST_CHILD_MEMORY // 2**20} MiB).",
        )
        return "failure"
    if not document.get("ok"):
        kind = document.get("kind")
        if kind == "internal":
            logger.error(
                "Upload %s: ingest child failed: %s\n%s", upload.pk, document.get("message"), outcome.stderr_tail
            )
        error = {"invalid": "InvalidFileError", "resource": "ResourceLimitError"}.get(kind, "InternalError")
        _finish_failure(
            upload=upload,
            worker=job.worker,
            event_type=ImageUploadEventType.ERROR,
            error=error,
            message=str(document.get("message") or "the file could not be processed."),
        )
        return "failure"
    result = document["result"]
    stored_files = _store_outputs(job, result)
    if not _finish_success(job, result, stored_files, seconds=outcome.seconds):
        storage.delete_keys(job.stored)
        return "lost"
    return "success"


def _child_request(job: _Job) -> dict[str, Any]:
    """Local copies of the staged files plus what the product declares; no client string is a path."""
    upload = job.upload
    inputs_dir = job.workdir / "in"
    output_dir = job.workdir / "out"
    inputs_dir.mkdir()
    output_dir.mkdir()
    inputs = []
    for upload_file in upload.files.order_by("index"):
        if not upload_file.staging_key or upload_file.staging_deleted_at is not None:
            raise TransientIngestError(f"file {upload_file.index} is not in staging storage")
        destination = inputs_dir / f"upload-{upload_file.index}"
        try:
            storage.local_copy(key=upload_file.staging_key, destination=destination)
        except FileNotFoundError as exc:
            raise TransientIngestError(f"staged file {upload_file.index} is missing from storage") from exc
        except Exception as exc:  # noqa: BLE001 - storage backends raise their own types; all are retryable here
            raise TransientIngestError(f"reading staged file {upload_file.index} failed: {exc}") from exc
        inputs.append(str(destination))
    bands = [
        {
            "name": band.name,
            "file_index": band.file_index,
            "band_index": band.band_index or 0,
            "data_type": band.data_type,
            "nodata": band.nodata,
            "is_alpha": bool(band.is_alpha),
        }
        for band in upload.product.bands.filter(derived_params__isnull=True).order_by("file_index", "band_index")
    ]
    attributes = upload.image_attributes
    return {
        "upload_type": upload.upload_type,
        "inputs": inputs,
        "output_dir": str(output_dir),
        "bands": bands,
        "limits": {
            "max_pixels": settings.INGEST_MAX_PIXELS,
            "max_dimension": settings.INGEST_MAX_DIMENSION,
            "max_bands": settings.INGEST_MAX_BANDS,
            "max_file_bytes": settings.UPLOAD_MAX_BYTES,
        },
        "overviews": list(upload.overviews or []),
        "resampler": upload.overview_resampler or "nearest",
        "geotrans": attributes.get("geotrans"),
        "cs_code": attributes.get("cs_code"),
        "projection": attributes.get("projection"),
        "x_pixels": attributes.get("x_pixels"),
        "y_pixels": attributes.get("y_pixels"),
        "compression": settings.INGEST_COG_COMPRESSION,
        "blocksize": settings.INGEST_COG_BLOCKSIZE,
        "preview_size": settings.INGEST_PREVIEW_SIZE,
    }


def _store_outputs(job: _Job, result: dict[str, Any]) -> list[dict[str, Any]]:
    """Put the COGs and the preview under fresh keys of this attempt; returns the Image's `files`."""
    upload = job.upload
    prefix = storage.raster_prefix(namespace=upload.namespace, upload_id=upload.pk, attempt=upload.attempts)
    files = []
    try:
        for output in result["files"]:
            path = Path(output["path"])
            if path.parent != job.workdir / "out":
                raise TransientIngestError("the ingest child reported an output outside its directory")
            key = f"{prefix}/file-{int(output['file_index'])}.tif"
            stored = storage.save_local_file(key=key, path=path)
            job.stored.append(key)
            files.append({"href": storage.href_for(key), "size_bytes": stored.size_bytes, "hash": stored.md5})
        preview = result.get("preview_path")
        if preview:
            key = f"{prefix}/preview.png"
            storage.save_local_file(key=key, path=job.workdir / "out" / "preview.png")
            job.stored.append(key)
    except TransientIngestError:
        raise
    except Exception as exc:  # noqa: BLE001 - any storage backend failure is retryable
        raise TransientIngestError(f"storing the converted image failed: {exc}") from exc
    return files


def _image_attributes(
    upload: ImageUpload, result: dict[str, Any], files: list[dict[str, Any]], preview_key: str | None
) -> dict[str, Any]:
    """Derived attributes, overridden by what the client set on the image (protocol §4.5 `image`)."""
    from catalogsite.geo import parse_geometry

    from .api.serializers import image_attributes_internal

    derived = dict(result["attributes"])
    derived["geometry"] = parse_geometry(derived["geometry"])
    derived["files"] = files
    derived["storage_state"] = "available"
    if preview_key:
        derived["preview_file"] = storage.href_for(preview_key)
    given = image_attributes_internal(upload.image_attributes)
    if "cs_code" in given or "projection" in given:
        # The client's coordinate system (validated against the data by ingest) replaces the derived pair.
        derived.pop("cs_code", None)
        derived.pop("projection", None)
    derived.update(given)
    return derived


def _finish_success(job: _Job, result: dict[str, Any], files: list[dict[str, Any]], *, seconds: float) -> bool:
    """One transaction: the Image (created or replaced) and `success` become visible together."""
    preview_key = next((key for key in job.stored if key.endswith("/preview.png")), None)
    with transaction.atomic():
        locked = (
            ImageUpload.objects.select_for_update()
            .select_related("product")
            .filter(pk=job.upload.pk, status=ImageUploadStatus.RUNNING, lease_owner=job.worker)
            .first()
        )
        if locked is None:
            return False
        attributes = _image_attributes(locked, result, files, preview_key)
        image, previous_files = image_upsert_from_ingest(upload=locked, attributes=attributes)
        now = timezone.now()
        locked.status = ImageUploadStatus.SUCCESS
        locked.finished_at = now
        locked.lease_owner = None
        locked.lease_expires_at = None
        locked.last_error = None
        locked.result_keys = list(job.stored)
        locked.save(
            update_fields=[
                "status",
                "finished_at",
                "lease_owner",
                "lease_expires_at",
                "last_error",
                "result_keys",
                "modified",
            ]
        )
        # Earlier uploads of a replaced image no longer own stored objects (they are deleted below).
        earlier = ImageUpload.objects.filter(image_id=locked.image_id, status=ImageUploadStatus.SUCCESS).exclude(
            pk=locked.pk
        )
        earlier_keys = [key for keys in earlier.values_list("result_keys", flat=True) for key in keys or []]
        earlier.update(result_keys=[])
        usage = dict(result.get("usage") or {})
        usage.update(
            {
                "stored_bytes": sum(f["size_bytes"] for f in files),
                "wall_seconds": round(seconds, 3),
                "attempt": locked.attempts,
            }
        )
        _event(
            locked,
            ImageUploadEventType.USAGE,
            f"Processed {usage.get('pixels', 0)} pixel values ({usage.get('decoded_bytes', 0)} bytes decoded) in "
            f"{usage['wall_seconds']} s; stored {usage['stored_bytes']} bytes in {len(files)} file(s).",
            component_id=job.worker,
            data=usage,
        )
        _event(locked, ImageUploadEventType.COMPLETE, f"Image {image.pk} is available.", component_id=job.worker)
        replaced = [storage.key_for_href(item.get("href", "")) for item in previous_files] + earlier_keys
        old_keys = sorted({key for key in replaced if key and key not in job.stored})
        upload_id, namespace, keep = locked.pk, locked.namespace, list(job.stored)
        transaction.on_commit(
            lambda: _cleanup_after_success(upload_id=upload_id, namespace=namespace, keep=keep, old_keys=old_keys)
        )
    return True


def _cleanup_after_success(*, upload_id: str, namespace: str, keep: list[str], old_keys: list[str]) -> None:
    delete_staging(upload_id=upload_id)
    prefix = storage.upload_rasters_prefix(namespace=namespace, upload_id=upload_id)
    stale = [key for key in storage.list_keys(prefix) if key not in keep]
    leftovers = storage.delete_keys(stale + old_keys)
    if leftovers:
        logger.warning("Upload %s: could not delete %s (storage_orphans will report them)", upload_id, leftovers)


def _finish_failure(
    *,
    upload: ImageUpload,
    worker: str | None,
    event_type: str,
    error: str,
    message: str,
    component: str = EventComponent.INGEST,
) -> bool:
    """running → failure (only for the lease holder, or any running row when worker is None: the reaper)."""
    with transaction.atomic():
        query = ImageUpload.objects.select_for_update().filter(pk=upload.pk, status=ImageUploadStatus.RUNNING)
        if worker is not None:
            query = query.filter(lease_owner=worker)
        locked = query.first()
        if locked is None:
            return False
        locked.status = ImageUploadStatus.FAILURE
        locked.finished_at = timezone.now()
        locked.lease_owner = None
        locked.lease_expires_at = None
        locked.last_error = f"{error}: {message}"
        locked.save(
            update_fields=["status", "finished_at", "lease_owner", "lease_expires_at", "last_error", "modified"]
        )
        severity = ImageUploadEventSeverity.ERROR
        _event(locked, event_type, message, severity=severity, component=component, component_id=worker or "")
        _event(
            locked,
            ImageUploadEventType.COMPLETE,
            f"{error}: {message}",
            severity=severity,
            component=component,
            component_id=worker or "",
        )
        if not settings.UPLOAD_FAILED_STAGING_RETENTION:
            upload_id = locked.pk
            transaction.on_commit(lambda: delete_staging(upload_id=upload_id))
    return True


def _release(*, upload: ImageUpload, worker: str, message: str) -> None:
    """running → pending after a transient error, so a retry (or the reaper) can claim it again."""
    try:
        with transaction.atomic():
            released = ImageUpload.objects.filter(
                pk=upload.pk, status=ImageUploadStatus.RUNNING, lease_owner=worker
            ).update(
                status=ImageUploadStatus.PENDING,
                lease_owner=None,
                lease_expires_at=None,
                enqueued_at=timezone.now(),
                last_error=message[:2000],
                modified=timezone.now(),
            )
            if released:
                _event(
                    upload,
                    ImageUploadEventType.LOG,
                    f"Transient error, will retry: {message}",
                    severity=ImageUploadEventSeverity.WARNING,
                    component_id=worker,
                )
    except DatabaseError:
        logger.warning("Upload %s: could not release the lease; the reaper will recover it", upload.pk)


def delete_staging(*, upload_id: str) -> int:
    """Remove the staged bytes of an upload that no longer needs them; returns how many were removed."""
    files = list(
        ImageUploadFile.objects.filter(upload_id=upload_id, staging_key__isnull=False, staging_deleted_at__isnull=True)
    )
    failed = set(storage.delete_keys([f.staging_key for f in files]))
    done = [f.pk for f in files if f.staging_key not in failed]
    ImageUploadFile.objects.filter(pk__in=done).update(staging_deleted_at=timezone.now())
    return len(done)


# ---- reaper ---------------------------------------------------------------------------------------------
@dataclass
class ReapReport:
    requeued_pending: int = 0
    recovered_running: int = 0
    failed_running: int = 0
    expired_transferring: int = 0
    staging_cleaned: int = 0
    workdirs_removed: int = 0

    def __str__(self) -> str:
        return ", ".join(f"{name.replace('_', ' ')}: {value}" for name, value in self.__dict__.items())


def image_uploads_reap(*, now=None) -> ReapReport:
    """Recover what crashes and lost messages leave behind (security notes §3.5 item 7).

    * pending without progress for INGEST_PENDING_GRACE: re-enqueued (lost message after commit);
    * running with an expired lease: back to pending and re-enqueued, or failed once attempts are used up;
    * transferring older than UPLOAD_TRANSFER_TIMEOUT: canceled, staged bytes removed;
    * finished uploads whose staged bytes are still there: removed;
    * ingest scratch directories of dead jobs: removed.
    Rows are claimed with SKIP LOCKED, so several reapers (or a reaper and a worker) never collide.
    """
    now = now or timezone.now()
    report = ReapReport()
    grace = now - timedelta(seconds=settings.INGEST_PENDING_GRACE)
    with transaction.atomic():
        for upload in (
            ImageUpload.objects.select_for_update(skip_locked=True)
            .filter(status=ImageUploadStatus.PENDING, enqueued_at__lt=grace)
            .order_by("enqueued_at")[:REAPER_BATCH]
        ):
            upload.enqueued_at = now
            upload.save(update_fields=["enqueued_at", "modified"])
            image_upload_start_ingest(
                upload=upload, component=EventComponent.REAPER, reason="(re-enqueued: not started in time)"
            )
            report.requeued_pending += 1
    with transaction.atomic():
        for upload in (
            ImageUpload.objects.select_for_update(skip_locked=True)
            .filter(status=ImageUploadStatus.RUNNING, lease_expires_at__lt=now)
            .order_by("lease_expires_at")[:REAPER_BATCH]
        ):
            if upload.attempts >= settings.INGEST_MAX_ATTEMPTS:
                _finish_failure(
                    upload=upload,
                    worker=None,
                    event_type=ImageUploadEventType.TIMEOUT,
                    error="TooManyAttempts",
                    component=EventComponent.REAPER,
                    message=f"ingest did not finish in {upload.attempts} attempt(s): the worker was lost "
                    "(crash, kill or timeout) each time.",
                )
                report.failed_running += 1
                continue
            upload.status = ImageUploadStatus.PENDING
            upload.lease_owner = None
            upload.lease_expires_at = None
            upload.enqueued_at = now
            upload.save(update_fields=["status", "lease_owner", "lease_expires_at", "enqueued_at", "modified"])
            _event(
                upload,
                ImageUploadEventType.LOG,
                "The worker processing this upload was lost (its lease expired); the upload goes back to the queue.",
                severity=ImageUploadEventSeverity.WARNING,
                component=EventComponent.REAPER,
            )
            image_upload_start_ingest(upload=upload, component=EventComponent.REAPER, reason="(after a lost worker)")
            report.recovered_running += 1
    expiry = now - timedelta(seconds=settings.UPLOAD_TRANSFER_TIMEOUT)
    with transaction.atomic():
        for upload in ImageUpload.objects.select_for_update(skip_locked=True).filter(
            status=ImageUploadStatus.TRANSFERRING, created__lt=expiry
        )[:REAPER_BATCH]:
            _cancel(
                upload,
                component=EventComponent.REAPER,
                message=f"Canceled: the files were not transferred within {settings.UPLOAD_TRANSFER_TIMEOUT} s.",
            )
            report.expired_transferring += 1
    retained = Q(
        upload__status=ImageUploadStatus.FAILURE,
        upload__finished_at__gte=now - timedelta(seconds=settings.UPLOAD_FAILED_STAGING_RETENTION),
    )
    leftover = (
        ImageUploadFile.objects.filter(
            upload__status__in=TERMINAL_STATUSES, staging_key__isnull=False, staging_deleted_at__isnull=True
        )
        .exclude(retained)
        .values_list("upload_id", flat=True)
        .distinct()[:REAPER_BATCH]
    )
    for upload_id in list(leftover):
        report.staging_cleaned += delete_staging(upload_id=upload_id)
    report.workdirs_removed = _remove_stale_workdirs()
    return report


def _remove_stale_workdirs() -> int:
    root = Path(settings.INGEST_WORK_DIR)
    if not root.is_dir():
        return 0
    horizon = time.time() - (settings.INGEST_CHILD_TIMEOUT + 2 * settings.INGEST_LEASE_SECONDS + 60)
    removed = 0
    for path in root.glob("job-*"):
        try:
            if path.is_dir() and path.stat().st_mtime < horizon:
                shutil.rmtree(path, ignore_errors=True)
                removed += 1
        except FileNotFoundError:
            continue
    return removed


def reaper_tick(*, chain_id: str | None) -> str | None:
    """One step of the periodic reaper chain; returns the chain id to continue with, or None to stop.

    A kick (chain_id None) starts a chain only when none is alive; a message of an older chain, or a
    duplicate delivery of the current one, stops instead of forking a second chain.
    """
    import uuid

    interval = timedelta(seconds=settings.INGEST_REAPER_INTERVAL)
    now = timezone.now()
    with transaction.atomic():
        state, _ = ReaperState.objects.select_for_update().get_or_create(pk=1)
        alive = state.next_run_at is not None and state.next_run_at > now - 2 * interval
        if chain_id is None and alive:
            return None
        if chain_id is not None and chain_id != state.chain_id:
            return None
        if chain_id is not None and state.next_run_at and now < state.next_run_at - interval / 2:
            return None  # a duplicate delivery of a message that already ran
        state.chain_id = chain_id or uuid.uuid4().hex
        state.last_run_at = now
        state.next_run_at = now + interval
        state.save()
    image_uploads_reap(now=now)
    return state.chain_id
