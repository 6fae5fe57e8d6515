"""Writes to images, through one path for API, admin, UI and ingest."""

from __future__ import annotations

from typing import Any

from django.utils import timezone

from catalogsite.jsonapi import BadRequest, Conflict
from products.models import Product
from products.services import _writable_product, inherited_acls

from .models import Image


def files_size(files: list[dict[str, Any]] | None) -> int:
    return sum(int(item.get("size_bytes") or 0) for item in files or [])


def image_create(*, user, attributes: dict[str, Any], requested_id: str | None = None) -> Image:
    """Create an image in a product the caller can write; it inherits the product's ACLs."""
    product = _writable_product(user=user, product_id=attributes.pop("product_id"))
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
