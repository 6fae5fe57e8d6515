"""Writes to products and bands. Every interface (API, admin, UI, jobs) goes through these functions."""

from __future__ import annotations

import re
from typing import Any

from django.db import transaction
from django.db.models import Max, Min
from django.utils import timezone
from rest_framework import exceptions

from accounts.models import Organization
from accounts.principals import principals_for
from catalogsite.choices import Action
from catalogsite.jsonapi import BadRequest, Conflict
from catalogsite.permissions import can

from .choices import BandType, ResolutionUnit, TaskKind, TaskState
from .models import Band, Product, ProductTask

PRODUCT_ID_RE = re.compile(r"^[A-Za-z0-9_.:-]+$")
USER_NAMESPACE_RE = re.compile(r"^[0-9a-f]{40}$")
MAX_PRODUCT_ID_LENGTH = 2000


def product_namespace(*, user) -> str:
    """The namespace a user creates products in: their organization, else their own sha1 namespace."""
    principals = principals_for(user)
    return principals.organization or principals.namespace


def product_full_id(*, user, requested_id: str) -> str:
    """Prefix `requested_id` with the caller's namespace unless it already has it (protocol §7.2)."""
    if not isinstance(requested_id, str) or not requested_id:
        raise BadRequest("data.id (the product id) is required.", pointer="/data/id")
    namespace = product_namespace(user=user)
    full_id = requested_id if requested_id.startswith(f"{namespace}:") else f"{namespace}:{requested_id}"
    if len(full_id) > MAX_PRODUCT_ID_LENGTH:
        raise BadRequest(f"Product ids are at most {MAX_PRODUCT_ID_LENGTH} characters.", pointer="/data/id")
    if not PRODUCT_ID_RE.match(requested_id):
        raise BadRequest("Product ids may contain only letters, digits, '-', '_', '.' and ':'.", pointer="/data/id")
    if full_id != requested_id:
        first = requested_id.split(":", 1)[0]
        if ":" in requested_id and (USER_NAMESPACE_RE.match(first) or Organization.objects.filter(slug=first).exists()):
            raise exceptions.PermissionDenied(
                f"Cannot create a product in namespace {first!r}; your products are created in {namespace!r}."
            )
    return full_id


def _default_owners(*, user) -> list[str]:
    principals = principals_for(user)
    owners = [f"user:{principals.namespace}"]
    if principals.organization:
        owners.append(f"org:{principals.organization}")
    return owners


def product_create(*, user, requested_id: str, attributes: dict[str, Any]) -> Product:
    """Create a product owned by its creator (and their organization's admins)."""
    full_id = product_full_id(user=user, requested_id=requested_id)
    if Product.objects.filter(pk=full_id).exists():
        raise Conflict(f"Product {full_id} already exists.")
    owners = list(attributes.pop("owners", None) or _default_owners(user=user))
    creator = f"user:{principals_for(user).namespace}"
    if creator not in owners:
        owners.insert(0, creator)
    product = Product(id=full_id, namespace=product_namespace(user=user), owners=owners, **attributes)
    product.full_clean(exclude=["owners", "readers", "writers", "tags", "default_display_bands"])
    product.save(force_insert=True)
    return product


ACL_FIELDS = ("owners", "readers", "writers")
# Above this many images the follow-up runs as a background job, so a PATCH never holds a huge UPDATE.
SYNC_ACL_FOLLOW_LIMIT = 10_000


def product_update(*, product: Product, attributes: dict[str, Any], user=None) -> Product:
    """Update a product; when its ACLs change, the bands and images that still inherit them follow."""
    previous = {key: list(getattr(product, key)) for key in ACL_FIELDS}
    for key, value in attributes.items():
        setattr(product, key, value)
    product.save()
    if any(list(getattr(product, key)) != previous[key] for key in ACL_FIELDS):
        related_acls_follow(product=product, previous=previous, user=user)
    return product


def related_acls_follow(*, product: Product, previous: dict[str, list[str]], user=None) -> None:
    """Give the product's new ACLs to every band and image still carrying its previous ones.

    Objects whose ACLs were set explicitly (1.x clients could) keep them. With 3.x clients bands and images
    have no ACLs of their own, so without this a product shared after its images were added would show
    none of them to the people it was shared with.
    """
    from imagery.models import Image

    current = {key: list(getattr(product, key)) for key in ACL_FIELDS}
    Band.objects.filter(product=product, **previous).update(**current, modified=timezone.now())
    images = Image.objects.filter(product=product, **previous)
    if images[: SYNC_ACL_FOLLOW_LIMIT + 1].count() <= SYNC_ACL_FOLLOW_LIMIT:
        images.update(**current, modified=timezone.now())
        return
    product_task_start(
        user=user,
        product=product,
        kind=TaskKind.UPDATE_ACLS,
        parameters={**current, "inherit": False, "match": previous},
    )


def product_delete(*, product: Product) -> None:
    """Delete an empty product; a product that still has bands or images is a 409 (protocol §1.3)."""
    if product.bands.exists() or product.images.exists():
        raise Conflict(
            "One or more related objects exist: delete the product's bands and images first "
            "(delete_related_objects does it in the background)."
        )
    product.delete()


def product_recompute_resolution(*, product: Product) -> None:
    """resolution_min/max from the bands: metres when any band is in metres, else degrees."""
    for unit in (ResolutionUnit.METERS, ResolutionUnit.DEGREES):
        bounds = product.bands.filter(resolution_unit=unit, resolution_value__isnull=False).aggregate(
            low=Min("resolution_value"), high=Max("resolution_value")
        )
        if bounds["low"] is not None:
            Product.objects.filter(pk=product.pk).update(
                resolution_min_value=bounds["low"],
                resolution_min_unit=unit,
                resolution_max_value=bounds["high"],
                resolution_max_unit=unit,
            )
            return
    Product.objects.filter(pk=product.pk).update(
        resolution_min_value=None, resolution_min_unit=None, resolution_max_value=None, resolution_max_unit=None
    )


def writable_product(*, user, product_id: str) -> Product:
    """The product, locked, for adding bands, images or uploads to it: 404 if unreadable, 403 if read-only."""
    product = Product.objects.restrict(user, Action.VIEW).select_for_update().filter(pk=product_id).first()
    if product is None:
        raise exceptions.NotFound(f"Product {product_id} not found.")
    if not can(user, product, Action.CHANGE):
        raise exceptions.PermissionDenied(f"You cannot add to or change product {product_id}.")
    return product


def inherited_acls(*, user, product: Product, attributes: dict[str, Any]) -> dict[str, list[str]]:
    """New bands and images take the product's ACLs; only product owners may give their own."""
    given = {key: attributes.pop(key) for key in ("owners", "readers", "writers") if key in attributes}
    acls = {"owners": list(product.owners), "readers": list(product.readers), "writers": list(product.writers)}
    if given and any(given[key] != acls[key] for key in given):
        if not can(user, product, Action.SHARE):
            raise exceptions.PermissionDenied("Only owners of the product can set ACLs on its bands and images.")
        acls.update(given)
    return acls


def band_create(*, user, attributes: dict[str, Any], requested_id: str | None = None) -> Band:
    product = writable_product(user=user, product_id=attributes.pop("product_id"))
    name = attributes["name"]
    band_id = f"{product.pk}:{name}"
    if requested_id is not None and requested_id != band_id:
        raise BadRequest(f"A band id is '<product_id>:<name>', expected {band_id!r}.", pointer="/data/id")
    if Band.objects.filter(pk=band_id).exists():
        raise Conflict(f"Band {band_id} already exists.")
    acls = inherited_acls(user=user, product=product, attributes=attributes)
    if attributes.get("type") == BandType.MASK:
        attributes.setdefault("data_range", [0.0, 1.0])
        attributes.setdefault("display_range", [0.0, 1.0])
    if attributes.get("sort_order") is None:
        current = product.bands.aggregate(top=Max("sort_order"))["top"]
        attributes["sort_order"] = 0 if current is None else current + 1
    band = Band(id=band_id, product=product, **acls, **attributes)
    band.save(force_insert=True)
    product_recompute_resolution(product=product)
    Product.objects.filter(pk=product.pk).update(modified=timezone.now())
    return band


def band_update(*, band: Band, attributes: dict[str, Any]) -> Band:
    for key in ("name", "product_id", "type"):
        attributes.pop(key, None)
    for key, value in attributes.items():
        setattr(band, key, value)
    band.save()
    if "resolution_value" in attributes:
        product_recompute_resolution(product=band.product)
    return band


def band_delete(*, band: Band) -> None:
    product = band.product
    band.delete()
    product_recompute_resolution(product=product)


# ---- product jobs -----------------------------------------------------------------------------------------
def product_task_start(*, user, product: Product, kind: str, parameters: dict[str, Any]) -> ProductTask | None:
    """Record a RUNNING job and enqueue it on commit; None when there is nothing to do (protocol: 204)."""
    if kind == TaskKind.DELETE_RELATED and not (product.bands.exists() or product.images.exists()):
        return None
    task = ProductTask.objects.select_for_update().filter(product=product, kind=kind).first()
    if task is not None and task.status == TaskState.RUNNING:
        raise Conflict(f"A {kind} job is already running for {product.pk}.")
    if task is None:
        task = ProductTask(product=product, kind=kind)
    task.status = TaskState.RUNNING
    task.parameters = parameters
    task.requested_by = user
    task.start_datetime = timezone.now()
    task.end_datetime = None
    task.objects_done = 0
    task.errors = []
    task.save()
    from .tasks import run_product_task

    transaction.on_commit(lambda: run_product_task.send(task.pk))
    return task
