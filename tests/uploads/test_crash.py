"""Crash test: real `manage.py rundramatiq` workers are SIGKILLed while they ingest.

30 uploads, 5 kills of the worker process that holds a running upload's lease. A kill takes the whole
dramatiq node down (its main process stops the other workers), so the test restarts it, as a process
supervisor would. Recovery comes from the reaper chain inside the workers (short leases here), and
duplicate deliveries from the broker are absorbed by the conditional claim.

Asserted at the end: every upload is `success` or `failure`, each has exactly one `complete` event,
there is one Image per success, stored checksums match, and no stored object is orphaned.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.db import connection

from imagery.models import Image
from tests.uploads.helpers import DATA
from uploads import storage
from uploads.choices import ImageUploadStatus
from uploads.models import ImageUpload, ImageUploadEvent

pytestmark = pytest.mark.django_db(transaction=True)

UPLOADS = 30
KILLS = 5
DEADLINE = 240  # seconds for the whole run; it normally needs well under a minute
ROOT = Path(__file__).resolve().parents[2]


def database_url() -> str:
    params = connection.settings_dict
    password = f":{params['PASSWORD']}" if params.get("PASSWORD") else ""
    return (
        f"postgis://{params['USER']}{password}@{params['HOST'] or '127.0.0.1'}:{params['PORT'] or 5432}/"
        f"{params['NAME']}"
    )


class Node:
    """A `manage.py rundramatiq` node against the test database, restarted whenever it exits."""

    def __init__(self, env: dict[str, str], log: Path):
        self.env = env
        self.log = log
        self.process: subprocess.Popen | None = None
        self.starts = 0

    def ensure_running(self) -> None:
        if self.process is not None and self.process.poll() is None:
            return
        prefix = self.env["DRAMATIQ_QUEUE_PREFIX"]
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(  # noqa: S603 - fixed argv
                [
                    sys.executable,
                    "manage.py",
                    "rundramatiq",
                    "--processes",
                    "2",
                    "--threads",
                    "1",
                    "--skip-checks",
                    "--queues",
                    f"{prefix}ingest",
                    f"{prefix}maintenance",
                    "--worker-shutdown-timeout",
                    "3000",
                ],
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.starts += 1

    def children(self) -> set[int]:
        """Pids of the node's worker processes (direct children of its main process), from /proc."""
        if self.process is None:
            return set()
        found = set()
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            if int(fields[1]) == self.process.pid:
                found.add(int(stat.parent.name))
        return found

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


@pytest.fixture
def crash_queues(monkeypatch):
    """Queue names of this test only, so no other worker (e.g. the session's in-process one) takes its jobs."""
    import dramatiq

    from uploads.tasks import ingest_image_upload

    prefix = f"crash-{uuid.uuid4().hex[:10]}-"
    queue = f"{prefix}ingest"
    monkeypatch.setattr(ingest_image_upload, "queue_name", queue)
    broker = dramatiq.get_broker()
    broker.declare_queue(queue)
    yield prefix
    broker.flush(queue)


def test_sigkilled_workers_lose_no_upload_and_complete_none_twice(
    upload_client, product, settings, tmp_path, capsys, crash_queues
):
    settings.INGEST_MAX_ATTEMPTS = 4
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "TESSERA_TESTING": "1",
        "DATABASE_URL": database_url(),
        "REDIS_URL": django_settings.REDIS_URL,
        "BROKER_URL": django_settings.BROKER_URL,
        "DRAMATIQ_QUEUE_PREFIX": crash_queues,
        "MEDIA_ROOT": str(tmp_path / "media"),
        "UPLOAD_SPOOL_DIR": str(tmp_path / "spool"),
        "INGEST_WORK_DIR": str(tmp_path / "work"),
        "INGEST_LEASE_SECONDS": "3",
        "INGEST_PENDING_GRACE": "20",
        "INGEST_REAPER_INTERVAL": "1",
        "INGEST_MAX_ATTEMPTS": "4",
        "CONN_MAX_AGE": "0",
        "LOG_LEVEL": "WARNING",
    }
    assert Path(settings.STORAGES["imagery"]["OPTIONS"]["location"]) == tmp_path / "media" / "imagery"
    payload = (DATA / "RGB.byte.tif").read_bytes()
    upload_ids = [
        upload_client.upload(product_id=product.pk, name=f"crash-{index:02d}", payloads=[payload])
        for index in range(UPLOADS)
    ]

    node = Node(env, tmp_path / "rundramatiq.log")
    kills: list[tuple[int, str]] = []
    deadline = time.monotonic() + DEADLINE
    try:
        node.ensure_running()
        while time.monotonic() < deadline:
            node.ensure_running()
            remaining = (
                ImageUpload.objects.filter(pk__in=upload_ids)
                .exclude(status__in=[ImageUploadStatus.SUCCESS, ImageUploadStatus.FAILURE])
                .count()
            )
            if remaining == 0:
                break
            if len(kills) < KILLS:
                running = ImageUpload.objects.filter(
                    pk__in=upload_ids, status=ImageUploadStatus.RUNNING, lease_owner__isnull=False
                ).values_list("pk", "lease_owner")
                children = node.children()
                for upload_id, owner in running:
                    pid = int(owner.split(":")[1])
                    if pid in children:
                        os.kill(pid, signal.SIGKILL)  # mid-ingest: the child parser dies with it (PDEATHSIG)
                        kills.append((pid, upload_id))
                        break
            time.sleep(0.2)
    finally:
        node.stop()
    log_tail = (tmp_path / "rundramatiq.log").read_text(errors="replace")[-3000:]

    uploads = {upload.pk: upload for upload in ImageUpload.objects.filter(pk__in=upload_ids)}
    statuses = {pk: upload.status for pk, upload in uploads.items()}
    assert set(statuses.values()) <= {ImageUploadStatus.SUCCESS, ImageUploadStatus.FAILURE}, (statuses, log_tail)
    assert len(kills) == KILLS, (kills, log_tail)

    complete_counts = {
        pk: ImageUploadEvent.objects.filter(upload_id=pk, event_type="complete").count() for pk in upload_ids
    }
    assert set(complete_counts.values()) == {1}
    successes = [upload for upload in uploads.values() if upload.status == ImageUploadStatus.SUCCESS]
    images = {image.pk: image for image in Image.objects.filter(product=product)}
    assert sorted(images) == sorted(upload.image_id for upload in successes)
    for image in images.values():
        for entry in image.files:
            key = storage.key_for_href(entry["href"])
            content = b"".join(storage.iter_object(key))
            assert len(content) == entry["size_bytes"]
            assert hashlib.md5(content).hexdigest() == entry["hash"]
    from uploads.orphans import find_orphans
    from uploads.services import image_uploads_reap

    image_uploads_reap()  # staged bytes of uploads finished by a node that was then killed
    assert find_orphans() == []

    runs = {pk: ImageUploadEvent.objects.filter(upload_id=pk, event_type="run").count() for pk in upload_ids}
    figures = {
        "uploads": UPLOADS,
        "kills": len(kills),
        "node_starts": node.starts,
        "success": len(successes),
        "failure": UPLOADS - len(successes),
        "uploads_run_more_than_once": sum(1 for count in runs.values() if count > 1),
        "total_runs": sum(runs.values()),
        "recovered_by_reaper": ImageUploadEvent.objects.filter(
            upload_id__in=upload_ids, event_type="log", component="tessera-reaper"
        ).count(),
        "double_completions": sum(count - 1 for count in complete_counts.values()),
    }
    with capsys.disabled():
        sys.stdout.write(f"\ncrash test figures: {json.dumps(figures)}\n")
