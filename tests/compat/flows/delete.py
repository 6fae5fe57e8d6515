"""Deleting a product with related objects: 409, then delete_related_objects (a background job), then delete.

Needs a job worker consuming the catalog queue while it runs. Inputs: COMPAT_ORG.
"""

from __future__ import annotations

from _flowlib import env, note, raises, run, step, unique
from descarteslabs.catalog import (
    DataType,
    DeletionTaskStatus,
    Image,
    MaskBand,
    Product,
    Resolution,
    ResolutionUnit,
    SpectralBand,
    StorageState,
    TaskState,
)
from descarteslabs.exceptions import ConflictError

FOOTPRINT = {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 1], [0, 0]]]}
# The client polls task status every 60 s (TaskStatus._POLLING_INTERVAL, no argument to change it).
POLL_SECONDS = 0.5
JOB_TIMEOUT = 60


def main() -> None:
    env("COMPAT_ORG")
    step("a product with two bands and three images")
    product = Product(id=unique("compat-delete"), name="Compat delete product")
    product.save()
    SpectralBand(
        name="blue",
        product=product,
        data_type=DataType.UINT16,
        data_range=(0, 10000),
        display_range=(0, 4000),
        resolution=Resolution(unit=ResolutionUnit.METERS, value=60),
        band_index=0,
    ).save()
    MaskBand(
        name="alpha",
        product=product,
        is_alpha=True,
        data_type=DataType.UINT16,
        resolution=Resolution(unit=ResolutionUnit.METERS, value=60),
        band_index=1,
    ).save()
    for index in range(3):
        Image(
            product=product,
            name=f"img{index}",
            storage_state=StorageState.REMOTE,
            acquired=f"2020-01-0{index + 1}",
            geometry=FOOTPRINT,
        ).save()
    assert product.bands().count() == 2 and product.images().count() == 3, "setup"
    assert Product.get(product.id).resolution_min is not None, "resolution_min of a product with bands"

    step("get_delete_status() before any deletion: NONE")
    never = product.get_delete_status()
    assert never.status == TaskState.NEVERRAN, f"status of a never-run deletion: {never.status!r}"

    step("product.delete() with related objects is a conflict")
    with raises(ConflictError, "delete() of a product with bands and images"):
        product.delete()
    assert Product.exists(product.id), "the product must survive the refused delete"

    step("delete_related_objects() starts a job; wait_for_completion()")
    status = product.delete_related_objects()
    assert status is not None, "delete_related_objects() returned None although there are bands and images"
    assert isinstance(status, DeletionTaskStatus), f"status is {type(status).__name__}"
    assert status.status in (TaskState.RUNNING, TaskState.SUCCEEDED), f"initial status {status.status!r}"
    note(f"initial status: {status!r}")
    status._POLLING_INTERVAL = POLL_SECONDS
    status.wait_for_completion(timeout=JOB_TIMEOUT)
    assert status.status == TaskState.SUCCEEDED, f"job finished with {status.status!r}: errors {status.errors}"
    assert getattr(status, "objects_deleted", None) == 5, (
        f"objects_deleted = {getattr(status, 'objects_deleted', None)!r}, expected 5 (2 bands + 3 images)"
    )
    current = product.get_delete_status()
    assert current.status == TaskState.SUCCEEDED, f"get_delete_status() after completion: {current.status!r}"

    step("bands and images are gone; nothing left to delete")
    assert product.bands().count() == 0, f"bands left: {product.bands().count()}"
    assert product.images().count() == 0, f"images left: {product.images().count()}"
    assert Image.get(f"{product.id}:img0") is None, "an image survived delete_related_objects"
    assert product.delete_related_objects() is None, "delete_related_objects() with nothing to delete -> None"
    emptied = Product.get(product.id)
    assert (emptied.resolution_min, emptied.resolution_max) == (None, None), (
        f"resolution_min/max of a product without bands: {emptied.resolution_min!r}, {emptied.resolution_max!r}"
    )

    step("product.delete() now works")
    product.delete()
    assert Product.get(product.id) is None, "product still found after delete()"


if __name__ == "__main__":
    run(main)
