"""dramatiq actors of the upload pipeline. Thin: they pass ids and call services.

`ingest_image_upload` runs on its own queue so ingest workers can be scaled (and limited) separately;
its time limit sits above the child's wall-clock limit because the hard limits live in the child
process (dramatiq's TimeLimit cannot interrupt C code, security notes §2.6).
"""

from __future__ import annotations

import dramatiq
from django.conf import settings

from . import services

INGEST_QUEUE = f"{settings.DRAMATIQ_QUEUE_PREFIX}ingest"
MAINTENANCE_QUEUE = f"{settings.DRAMATIQ_QUEUE_PREFIX}maintenance"


@dramatiq.actor(
    queue_name=INGEST_QUEUE,
    max_retries=5,
    min_backoff=5_000,
    max_backoff=300_000,
    time_limit=(settings.INGEST_CHILD_TIMEOUT + 600) * 1000,
    throws=(),
)
def ingest_image_upload(upload_id: str) -> None:
    """Ingest one upload. Idempotent: a redelivered message finds the upload claimed or finished and returns.

    Content problems end the upload in `failure` inside the service; only transient storage/database
    errors raise, and then dramatiq's Retries back off and try again.
    """
    services.image_upload_ingest(upload_id=upload_id)


@dramatiq.actor(queue_name=MAINTENANCE_QUEUE, max_retries=0, time_limit=600_000)
def reap_image_uploads(chain_id: str | None = None) -> None:
    """The periodic reaper: run once, then schedule the next run (one live chain per deployment)."""
    next_chain = services.reaper_tick(chain_id=chain_id)
    if next_chain is not None:
        reap_image_uploads.send_with_options(args=(next_chain,), delay=settings.INGEST_REAPER_INTERVAL * 1000)
