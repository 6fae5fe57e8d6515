"""Leases, attempts, idempotency, transient errors and the reaper, at the service level (no broker)."""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.management import call_command
from django.utils import timezone

from imagery.models import Image
from tests.uploads.helpers import DATA
from uploads import sandbox, services, storage
from uploads.choices import ImageUploadStatus
from uploads.models import ImageUpload, ImageUploadEvent, ImageUploadFile, ReaperState

TIF = (DATA / "rgb-byte-tenth.tif").read_bytes()


def pending_upload(upload_client, product, name: str = "scene") -> str:
    """An upload whose bytes are staged and that is marked pending (the broker is not involved)."""
    response = upload_client.create(product_id=product.pk, name=name)
    data = response.json()["data"]
    assert upload_client.put(data["attributes"]["resumable_urls"][0], TIF).status_code == 200
    assert upload_client.patch_status(data["id"], "pending").status_code == 200
    return data["id"]


def events(upload_id: str) -> list[str]:
    return list(
        ImageUploadEvent.objects.filter(upload_id=upload_id).order_by("id").values_list("event_type", flat=True)
    )


@pytest.mark.django_db
def test_a_redelivered_message_never_double_completes(upload_client, product, enqueued):
    upload_id = pending_upload(upload_client, product)
    assert services.image_upload_ingest(upload_id=upload_id) == "success"
    assert services.image_upload_ingest(upload_id=upload_id) == "skipped"
    assert events(upload_id).count("complete") == 1
    assert Image.objects.count() == 1
    assert ImageUpload.objects.get(pk=upload_id).attempts == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_duplicate_deliveries_claim_once(upload_client, product, enqueued):
    upload_id = pending_upload(upload_client, product)
    results = []

    def deliver():
        from django.db import connection

        try:
            results.append(services.image_upload_ingest(upload_id=upload_id))
        finally:
            connection.close()

    threads = [threading.Thread(target=deliver) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == ["skipped", "skipped", "success"]
    assert events(upload_id).count("complete") == 1 and events(upload_id).count("run") == 1


@pytest.mark.django_db
def test_the_database_refuses_a_second_complete_event(upload_client, product, enqueued):
    from django.db import IntegrityError, transaction

    upload_id = pending_upload(upload_client, product)
    services.image_upload_ingest(upload_id=upload_id)
    with pytest.raises(IntegrityError), transaction.atomic():
        ImageUploadEvent.objects.create(upload_id=upload_id, event_type="complete", component="tessera-ingest")


@pytest.mark.django_db(transaction=True)
def test_the_attempt_is_committed_before_the_file_is_parsed(upload_client, product, enqueued, monkeypatch):
    upload_id = pending_upload(upload_client, product)
    seen = {}
    real = services.run_child

    def observing(request, **kwargs):
        def look():  # another connection: only committed state is visible there
            from django.db import connection

            row = ImageUpload.objects.get(pk=upload_id)
            seen.update(status=row.status, attempts=row.attempts, lease_owner=row.lease_owner)
            connection.close()

        thread = threading.Thread(target=look)
        thread.start()
        thread.join()
        return real(request, **kwargs)

    monkeypatch.setattr(services, "run_child", observing)
    services.image_upload_ingest(upload_id=upload_id)
    assert seen["status"] == "running" and seen["attempts"] == 1 and seen["lease_owner"] == services.worker_id()


@pytest.mark.django_db
def test_attempts_bound_a_file_that_keeps_killing_workers(upload_client, product, enqueued, settings):
    """Each "crash" leaves a running row with an expired lease; the reaper re-enqueues until attempts run out."""
    settings.INGEST_MAX_ATTEMPTS = 3
    upload_id = pending_upload(upload_client, product)
    for attempt in range(1, 4):
        claimed = services._claim(upload_id=upload_id, worker=f"doomed-{attempt}")
        assert claimed is not None and claimed.attempts == attempt
        # the worker dies here; time passes beyond its lease
        ImageUpload.objects.filter(pk=upload_id).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
        report = services.image_uploads_reap()
        if attempt < 3:
            assert report.recovered_running == 1
            assert ImageUpload.objects.get(pk=upload_id).status == ImageUploadStatus.PENDING
        else:
            assert report.failed_running == 1
    upload = ImageUpload.objects.get(pk=upload_id)
    assert upload.status == ImageUploadStatus.FAILURE and upload.attempts == 3
    assert events(upload_id)[-2:] == ["timeout", "complete"]
    assert "TooManyAttempts" in upload.events.get(event_type="complete").message
    assert not Image.objects.exists()


@pytest.mark.django_db
def test_a_claim_beyond_the_attempt_limit_fails_without_parsing(
    upload_client, product, enqueued, settings, monkeypatch
):
    settings.INGEST_MAX_ATTEMPTS = 1
    upload_id = pending_upload(upload_client, product)
    services._claim(upload_id=upload_id, worker="crashed")
    ImageUpload.objects.filter(pk=upload_id).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    monkeypatch.setattr(services, "run_child", lambda *a, **k: pytest.fail("the poison file was parsed again"))
    assert services.image_upload_ingest(upload_id=upload_id) == "failure"
    assert ImageUpload.objects.get(pk=upload_id).status == ImageUploadStatus.FAILURE


@pytest.mark.django_db
def test_transient_storage_errors_release_the_upload_for_a_retry(upload_client, product, enqueued, monkeypatch):
    upload_id = pending_upload(upload_client, product)
    real = storage.save_local_file
    calls = {"n": 0}

    def flaky(**kwargs):
        calls["n"] += 1
        if calls["n"] == 1:
            raise OSError("storage is down")
        return real(**kwargs)

    monkeypatch.setattr(storage, "save_local_file", flaky)
    with pytest.raises(services.TransientIngestError):
        services.image_upload_ingest(upload_id=upload_id)
    upload = ImageUpload.objects.get(pk=upload_id)
    assert upload.status == ImageUploadStatus.PENDING and upload.lease_owner is None
    assert "storage is down" in upload.events.filter(event_type="log").last().message
    assert list(storage.list_keys("rasters")) == []  # nothing half-stored is left behind
    assert services.image_upload_ingest(upload_id=upload_id) == "success"
    assert ImageUpload.objects.get(pk=upload_id).attempts == 2


def test_the_actor_retries_transient_errors_with_backoff_but_not_content_errors():
    from uploads.tasks import ingest_image_upload

    options = ingest_image_upload.options
    assert options["max_retries"] == 5 and options["min_backoff"] == 5_000 and options["max_backoff"] == 300_000
    assert ingest_image_upload.queue_name.endswith("ingest")
    from django.conf import settings

    assert options["time_limit"] > settings.INGEST_CHILD_TIMEOUT * 1000


@pytest.mark.django_db
def test_a_permanent_failure_returns_normally_so_it_is_not_retried(upload_client, product, enqueued):
    response = upload_client.create(product_id=product.pk, name="empty")
    data = response.json()["data"]
    upload_client.put(data["attributes"]["resumable_urls"][0], b"")
    upload_client.patch_status(data["id"], "pending")
    from uploads.tasks import ingest_image_upload

    ingest_image_upload.fn(data["id"])  # returns instead of raising: dramatiq's Retries never sees it
    assert ImageUpload.objects.get(pk=data["id"]).status == ImageUploadStatus.FAILURE


@pytest.mark.django_db(transaction=True)
def test_the_lease_is_renewed_while_the_child_runs(upload_client, product, enqueued, settings, monkeypatch):
    settings.INGEST_LEASE_SECONDS = 1
    upload_id = pending_upload(upload_client, product)
    real = sandbox.run_child
    observed = []

    def slow(request, **kwargs):
        outcome = real(request, **kwargs)
        deadline = time.monotonic() + 2.5
        while time.monotonic() < deadline:  # the parent keeps the lease alive past its 1 s duration
            assert kwargs["heartbeat"]()
            observed.append(services.image_uploads_reap().recovered_running)
            time.sleep(0.3)
        return outcome

    monkeypatch.setattr(services, "run_child", slow)
    assert services.image_upload_ingest(upload_id=upload_id) == "success"
    assert sum(observed) == 0


@pytest.mark.django_db(transaction=True)
def test_a_worker_that_lost_its_lease_stores_nothing(upload_client, product, enqueued, monkeypatch):
    upload_id = pending_upload(upload_client, product)
    real = services.run_child

    def stolen(request, **kwargs):
        outcome = real(request, **kwargs)
        ImageUpload.objects.filter(pk=upload_id).update(lease_owner="someone-else")
        return outcome

    monkeypatch.setattr(services, "run_child", stolen)
    assert services.image_upload_ingest(upload_id=upload_id) == "lost"
    assert not Image.objects.exists()
    assert list(storage.list_keys("rasters")) == []
    assert "complete" not in events(upload_id)


@pytest.mark.django_db
def test_reaper_requeues_lost_pending_uploads(
    upload_client, product, enqueued, settings, django_capture_on_commit_callbacks
):
    upload_id = pending_upload(upload_client, product)
    ImageUpload.objects.filter(pk=upload_id).update(enqueued_at=timezone.now() - timedelta(hours=1))
    enqueued.clear()
    with django_capture_on_commit_callbacks(execute=True):
        report = services.image_uploads_reap()
    assert report.requeued_pending == 1
    assert [message.args for message in enqueued] == [(upload_id,)]
    queue_events = ImageUploadEvent.objects.filter(upload_id=upload_id, event_type="queue").order_by("id")
    assert queue_events.last().component == "tessera-reaper"
    with django_capture_on_commit_callbacks(execute=True):  # fresh again: nothing more to do
        assert services.image_uploads_reap().requeued_pending == 0


@pytest.mark.django_db
def test_reaper_cancels_expired_transfers_and_removes_their_bytes(
    upload_client, product, settings, django_capture_on_commit_callbacks
):
    data = upload_client.create(product_id=product.pk, name="abandoned").json()["data"]
    upload_client.put(data["attributes"]["resumable_urls"][0], TIF)
    key = ImageUploadFile.objects.get().staging_key
    assert storage.imagery_storage().exists(key)
    ImageUpload.objects.filter(pk=data["id"]).update(created=timezone.now() - timedelta(days=2))
    with django_capture_on_commit_callbacks(execute=True):
        assert services.image_uploads_reap().expired_transferring == 1
    assert ImageUpload.objects.get().status == ImageUploadStatus.CANCELED
    assert events(data["id"]) == ["cancel"]
    assert not storage.imagery_storage().exists(key)


@pytest.mark.django_db
def test_reaper_removes_leftover_staging_and_stale_work_dirs(upload_client, product, enqueued, settings):
    upload_id = pending_upload(upload_client, product)
    ImageUpload.objects.filter(pk=upload_id).update(status=ImageUploadStatus.SUCCESS)  # cleanup never ran
    work = Path(settings.INGEST_WORK_DIR)
    stale = work / "job-dead"
    stale.mkdir(parents=True)
    old = time.time() - 10 * 24 * 3600
    import os

    os.utime(stale, (old, old))
    fresh = work / "job-alive"
    fresh.mkdir()
    report = services.image_uploads_reap()
    assert report.staging_cleaned == 1 and report.workdirs_removed == 1
    assert not stale.exists() and fresh.exists()
    assert list(storage.list_keys("staging")) == []


@pytest.mark.django_db
def test_reap_uploads_command(upload_client, product, enqueued, capsys):
    upload_id = pending_upload(upload_client, product)
    ImageUpload.objects.filter(pk=upload_id).update(
        status=ImageUploadStatus.RUNNING, lease_expires_at=timezone.now() - timedelta(seconds=5)
    )
    call_command("reap_uploads")
    out = capsys.readouterr().out
    assert "recovered running: 1" in out
    assert "uploads by status: transferring: 0, pending: 1, running: 0" in out
    assert "needing attention: pending too long: 0, running expired: 0" in out
    assert ImageUpload.objects.get(pk=upload_id).status == ImageUploadStatus.PENDING


@pytest.mark.django_db
def test_the_periodic_reaper_keeps_exactly_one_chain(settings):
    settings.INGEST_REAPER_INTERVAL = 60
    chain = services.reaper_tick(chain_id=None)
    assert chain is not None
    assert services.reaper_tick(chain_id=None) is None  # a second worker's kick: a chain is alive
    assert services.reaper_tick(chain_id="an-old-chain") is None  # a message of a dead chain stops
    assert services.reaper_tick(chain_id=chain) is None  # an early duplicate delivery stops too
    ReaperState.objects.filter(pk=1).update(next_run_at=timezone.now())
    assert services.reaper_tick(chain_id=chain) == chain  # the scheduled continuation runs
    ReaperState.objects.filter(pk=1).update(next_run_at=timezone.now() - timedelta(hours=1))
    revived = services.reaper_tick(chain_id=None)  # the chain died (lost message): a kick revives it
    assert revived not in (None, chain)


def test_the_reaper_chain_schedules_itself(monkeypatch):
    from uploads import tasks

    sent = []
    monkeypatch.setattr(tasks.services, "reaper_tick", lambda chain_id: "chain-1")
    monkeypatch.setattr(tasks.reap_image_uploads, "send_with_options", lambda **kwargs: sent.append(kwargs))
    tasks.reap_image_uploads.fn(None)
    from django.conf import settings

    assert sent == [{"args": ("chain-1",), "delay": settings.INGEST_REAPER_INTERVAL * 1000}]


def test_worker_boot_kicks_the_reaper_only_on_maintenance_workers(monkeypatch, settings):
    from uploads import tasks
    from uploads.middleware import ReaperKickMiddleware

    sent = []
    monkeypatch.setattr(tasks.reap_image_uploads, "send", lambda *args: sent.append(args))

    class FakeWorker:
        def __init__(self, queues):
            self.consumer_whitelist = queues

    middleware = ReaperKickMiddleware()
    middleware.after_worker_boot(None, FakeWorker({tasks.INGEST_QUEUE}))
    assert sent == []
    middleware.after_worker_boot(None, FakeWorker(None))
    middleware.after_worker_boot(None, FakeWorker({tasks.MAINTENANCE_QUEUE}))
    assert len(sent) == 2
    settings.INGEST_REAPER_AUTOSTART = False
    middleware.after_worker_boot(None, FakeWorker(None))
    assert len(sent) == 2


@pytest.mark.django_db
def test_a_dead_reaper_chain_is_revived_by_the_next_enqueue(
    upload_client, product, settings, monkeypatch, django_capture_on_commit_callbacks
):
    from uploads import tasks

    kicks = []
    monkeypatch.setattr(tasks.reap_image_uploads, "send", lambda *args: kicks.append(args))
    monkeypatch.setattr(tasks.ingest_image_upload.broker, "enqueue", lambda message, **kwargs: message)
    ReaperState.objects.create(pk=1, chain_id="c", next_run_at=timezone.now())  # alive
    with django_capture_on_commit_callbacks(execute=True):
        pending_upload(upload_client, product, "a")
    assert kicks == []
    ReaperState.objects.filter(pk=1).update(next_run_at=timezone.now() - timedelta(hours=1))  # dead
    with django_capture_on_commit_callbacks(execute=True):
        pending_upload(upload_client, product, "b")
    assert kicks == [()]


@pytest.mark.django_db
def test_a_stored_object_that_fails_verification_is_removed_and_the_ingest_retried(
    upload_client, product, enqueued, monkeypatch
):
    upload_id = pending_upload(upload_client, product)
    real = storage.verify
    calls = {"n": 0}

    def corrupting(*, key, size, sha256):
        calls["n"] += 1
        if calls["n"] == 1:
            raise storage.StorageFailure(f"{key}: stored object does not match what was written")
        return real(key=key, size=size, sha256=sha256)

    monkeypatch.setattr(storage, "verify", corrupting)
    with pytest.raises(services.TransientIngestError):
        services.image_upload_ingest(upload_id=upload_id)
    assert list(storage.list_keys("rasters")) == []
    assert services.image_upload_ingest(upload_id=upload_id) == "success"
