"""Writes to images, through one path for API, admin, UI and ingest."""

from __future__ import annotations

from typing import Any

from django.utils import timezone

from catalogsite.jsonapi import BadRequest, Conflict
from products.models import Product
from products.services import inherited_acls, writable_product

from .models import Image


def files_size(files: list[dict[str, Any]] | None) -> int:
    return sum(int(item.get("size_bytes") or 0) for item in files or [])


def image_create(*, user, attributes: dict[str, Any], requested_id: str | None = None) -> Image:
    """Create an image in a product the caller can write; it inherits the product's ACLs."""
    product = writable_product(user=user, product_id=attributes.pop("product_id"))
    image_id = f"{product.pk}:{attributes['name']}"
    if requested_id is not None and requested_id != image_id:
        raise BadRequest(f"An image id is '<product_id>:<name>', expected {image_id!r}.", pointer="/data/id")
    if Image.objects.filter(pk=image_id).exists():
        raise Conflict(f"Image {image_id} already exists.")
    acls = inherited_acls(user=user, product=product, attributes=attributes)
    image = Image(id=image_id, product=product, **acls, **attributes)
    image.size_bytes = files_size(image.files)
    image.save(force_insert=True)
    Product.objects.filter(pk=product.pk).update(modified=timezone.now())
    return image


def image_update(*, image: Image, attributes: dict[str, Any]) -> Image:
    for key in ("name", "product_id"):
        attributes.pop(key, None)
    for key, value in attributes.items():
        setattr(image, key, value)
    if "files" in attributes:
        image.size_bytes = files_size(image.files)
    image.save()
    return image


def image_delete(*, image: Image) -> None:
    image.delete()


# Kept when an upload replaces an existing image: its identity, ACLs and creation time.
_KEPT_ON_OVERWRITE = {"id", "product", "name", "created", "owners", "readers", "writers"}


def image_upsert_from_ingest(*, upload, attributes: dict[str, Any]) -> tuple[Image, list[dict[str, Any]]]:
    """Create the image of a successful upload, or replace an existing one (the client's `overwrite=True`).

    Called by uploads.services inside the transaction that marks the upload `success`, so the image is
    visible exactly when the upload is. A replaced image loses every attribute of its previous upload
    (the user guide: computed values may differ), keeping id, ACLs and creation time. Returns the image
    and its previous `files`, whose stored objects the caller deletes after commit.
    """
    product = upload.product
    image = Image.objects.select_for_update().filter(pk=upload.image_id).first()
    previous_files: list[dict[str, Any]] = []
    if image is None:
        image = Image(
            id=upload.image_id,
            product=product,
            name=upload.image_name,
            owners=list(product.owners),
            readers=list(product.readers),
            writers=list(product.writers),
        )
    else:
        previous_files = list(image.files or [])
        for model_field in Image._meta.concrete_fields:
            if model_field.name not in _KEPT_ON_OVERWRITE:
                setattr(image, model_field.attname, model_field.get_default())
    for key, value in attributes.items():
        setattr(image, key, value)
    image.size_bytes = files_size(image.files)
    image.save()
    Product.objects.filter(pk=product.pk).update(modified=timezone.now())
    return image, previous_files
