"""Fixtures of the upload tests: a product with bands, API helpers for the upload flow, an ingest worker.

Storage, spool and scratch directories live in the test's tmp_path; messages go to this session's own
queue names (catalogsite.settings gives test runs a random DRAMATIQ_QUEUE_PREFIX).
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.factories import make_user
from tests.uploads.helpers import UploadClient, make_product


@pytest.fixture(autouse=True)
def upload_settings(settings, tmp_path):
    """Local storage and scratch space per test; short leases so recovery is observable quickly."""
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.STORAGES = {
        **settings.STORAGES,
        "imagery": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path / "media" / "imagery"), "base_url": None},
        },
    }
    settings.UPLOAD_SPOOL_DIR = str(tmp_path / "spool")
    settings.INGEST_WORK_DIR = str(tmp_path / "work")
    settings.INGEST_CHILD_TIMEOUT = 60
    return settings


@pytest.fixture
def alice(db):
    return make_user("alice", org="uporg", org_admin=True)


@pytest.fixture
def bob(db):
    return make_user("bob", org="otherorg")


@pytest.fixture
def product(alice):
    return make_product(alice)


@pytest.fixture
def upload_client(auth_client, alice):
    from django.conf import settings

    return UploadClient(client=auth_client(alice), prefix=settings.CATALOG_URL_PREFIX)


@pytest.fixture
def enqueued(monkeypatch):
    """Ingest messages sent to the broker (instead of Redis), as a list; reaper kicks are swallowed."""
    from uploads.tasks import ingest_image_upload

    sent: list[Any] = []
    reaper: list[Any] = []

    def enqueue(message, **kwargs):
        (sent if message.actor_name == ingest_image_upload.actor_name else reaper).append(message)
        return message

    monkeypatch.setattr(ingest_image_upload.broker, "enqueue", enqueue)
    return sent


@pytest.fixture(scope="session")
def session_ingest_worker(django_db_setup, django_db_blocker):
    """One in-process dramatiq worker for the session, consuming this session's ingest queue on real Redis.

    Depending on django_db_setup makes it stop (closing its threads' connections) before the test
    database is dropped.
    """
    import dramatiq

    from uploads.tasks import ingest_image_upload

    broker = dramatiq.get_broker()
    try:
        # Redis answers PING; RabbitMQ (BROKER_URL=amqp://…) already connected to declare the queue.
        if hasattr(broker, "client"):
            broker.client.ping()
    except Exception as exc:  # noqa: BLE001
        pytest.fail(f"the dramatiq broker (Redis at REDIS_URL) is not reachable: {exc}")
    queue = ingest_image_upload.queue_name
    broker.declare_queue(queue)
    worker = dramatiq.Worker(broker, queues={queue}, worker_threads=2, worker_timeout=100)
    worker.start()
    yield worker
    worker.stop(timeout=30_000)
    broker.flush(queue)
    from uploads.tasks import MAINTENANCE_QUEUE

    broker.declare_queue(MAINTENANCE_QUEUE)
    broker.flush(MAINTENANCE_QUEUE)  # reaper kicks sent by this session (no maintenance worker runs here)


@pytest.fixture
def ingest_worker(session_ingest_worker, transactional_db):
    """The session's ingest worker, for a test whose rows are committed (so the worker can see them)."""
    return session_ingest_worker
