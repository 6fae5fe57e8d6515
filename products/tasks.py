"""Background jobs on a product's related objects. Actors are thin: they load the job row and call a service."""

from __future__ import annotations

import dramatiq
from django.conf import settings

from .jobs import product_task_run

QUEUE = f"{settings.DRAMATIQ_QUEUE_PREFIX}catalog"


@dramatiq.actor(queue_name=QUEUE, max_retries=3, min_backoff=1_000, max_backoff=60_000, time_limit=3_600_000)
def run_product_task(task_id: int) -> None:
    """Run a delete-related-objects or update-related-ACLs job (idempotent: safe to redeliver)."""
    product_task_run(task_id=task_id)
