"""The work behind product jobs, in batches so a million images never sit in one transaction."""

from __future__ import annotations

import logging

from django.db import transaction
from django.utils import timezone

from imagery.models import Image

from .choices import TaskKind, TaskState
from .models import Band, ProductTask
from .services import product_recompute_resolution

logger = logging.getLogger(__name__)
BATCH_SIZE = 2000


def _delete_related(task: ProductTask) -> None:
    product = task.product
    for model in (Image, Band):
        while True:
            with transaction.atomic():
                ids = list(model.objects.filter(product=product).values_list("pk", flat=True)[:BATCH_SIZE])
                if not ids:
                    break
                deleted, _ = model.objects.filter(pk__in=ids).delete()
                ProductTask.objects.filter(pk=task.pk).update(objects_done=task.objects_done + deleted)
                task.objects_done += deleted
    product_recompute_resolution(product=product)


def _update_acls(task: ProductTask) -> None:
    product = task.product
    parameters = task.parameters
    values = {}
    for key in ("owners", "readers", "writers"):
        given = parameters.get(key)
        if given is not None:
            values[key] = given
        elif parameters.get("inherit"):
            values[key] = list(getattr(product, key))
    if not values:
        return
    # `match`: only objects still carrying these ACLs (the product's previous ones) follow the change.
    match = parameters.get("match") or {}
    for model in (Band, Image):
        last = ""
        while True:
            with transaction.atomic():
                ids = list(
                    model.objects.filter(product=product, pk__gt=last, **match)
                    .order_by("pk")
                    .values_list("pk", flat=True)[:BATCH_SIZE]
                )
                if not ids:
                    break
                updated = model.objects.filter(pk__in=ids).update(**values, modified=timezone.now())
                task.objects_done += updated
                ProductTask.objects.filter(pk=task.pk).update(objects_done=task.objects_done)
                last = ids[-1]


def product_task_run(*, task_id: int) -> None:
    """Run a RUNNING job to completion and record SUCCESS or FAILURE; other states mean it already ran."""
    task = ProductTask.objects.select_related("product").filter(pk=task_id, status=TaskState.RUNNING).first()
    if task is None:
        return
    task.objects_done = 0
    try:
        if task.kind == TaskKind.DELETE_RELATED:
            _delete_related(task)
        elif task.kind == TaskKind.UPDATE_ACLS:
            _update_acls(task)
        status, errors = TaskState.SUCCESS, []
    except Exception as exc:  # noqa: BLE001 - the job's FAILURE state and errors are how the user learns of it
        logger.exception("Product job %s failed", task_id)
        ProductTask.objects.filter(pk=task.pk).update(
            status=TaskState.FAILURE, errors=[str(exc)], objects_done=task.objects_done, end_datetime=timezone.now()
        )
        return
    ProductTask.objects.filter(pk=task.pk, status=TaskState.RUNNING).update(
        status=status, errors=errors, objects_done=task.objects_done, end_datetime=timezone.now()
    )
