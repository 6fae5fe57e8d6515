"""Sharing a product through its ACLs, one step per process (each step runs with another user's token).

Steps (COMPAT_STEP), in the order the test runs them:
  owner-create        A (owner org) creates the product + an image, readers = [org:<reader org>, email:other]
  reader              B (reader org) can get, search and list images, but cannot save, delete or add images
  outsider            C (a third org) gets None and does not find it
  group-reader        G (third org, in the reader group) can read
  org-member          M (owner org, not admin) gets None: `org:` in owners only means the org's admins
  org-admin           D (owner org admin) is an owner: sees all readers, may change them
  owner-grant-writer  A adds B's email to writers
  writer              B can now modify attributes and add images, but neither delete nor change ACLs
  owner-finish        A sees B's changes, revokes B's access
  revoked             B no longer sees the product
  owner-cleanup       A deletes everything

Inputs: COMPAT_STEP, COMPAT_OWNER_ORG, COMPAT_READER_ORG, COMPAT_READER_GROUP (`<org>:<group>`),
COMPAT_WRITER_EMAIL, COMPAT_PRODUCT_LOCAL_ID.
"""

from __future__ import annotations

from _flowlib import env, note, raises, run, step
from descarteslabs.catalog import Image, Product, StorageState
from descarteslabs.catalog import properties as p
from descarteslabs.exceptions import ForbiddenError

OTHER_READER = "email:someone-else@example.com"
FOOTPRINT = {"type": "Polygon", "coordinates": [[[10, 10], [11, 10], [11, 11], [10, 11], [10, 10]]]}


def product_id() -> str:
    return f"{env('COMPAT_OWNER_ORG')}:{env('COMPAT_PRODUCT_LOCAL_ID')}"


def add_image(product: Product, name: str) -> Image:
    image = Image(
        product=product, name=name, storage_state=StorageState.REMOTE, acquired="2020-01-01", geometry=FOOTPRINT
    )
    image.save()
    return image


def all_readers() -> list[str]:
    return [f"org:{env('COMPAT_READER_ORG')}", OTHER_READER, f"group:{env('COMPAT_READER_GROUP')}"]


def found_by_search(pid: str) -> list[str]:
    return [product.id for product in Product.search().filter(p.id == pid)]


def owner_create() -> None:
    step("A creates a product shared with the reader organization")
    product = Product(id=env("COMPAT_PRODUCT_LOCAL_ID"), name="Shared compat product")
    product.readers = all_readers()
    product.save()
    assert product.id == product_id(), f"id {product.id!r}"
    assert sorted(product.readers) == sorted(all_readers()), f"readers {product.readers}"
    assert product.owners, "a new product must have owners"
    assert product.user_is_owner(), f"the creator must be an owner (owners: {product.owners})"
    note(f"owners: {list(product.owners)}")
    owned = [found.id for found in Product.search().filter(p.owners == f"org:{env('COMPAT_OWNER_ORG')}")]
    assert product.id in owned, f"search owners == org:<owner org> (a default owner) should find it: {owned}"
    add_image(product, "by-owner")


def reader() -> None:
    pid = product_id()
    reader_org = env("COMPAT_READER_ORG")
    step("B (reader) can get and search the product")
    product = Product.get(pid)
    assert product is not None, f"a reader's Product.get({pid!r}) returned None"
    assert Product.exists(pid) is True, "Product.exists() for a reader"
    assert found_by_search(pid) == [pid], f"a reader's search: {found_by_search(pid)}"
    assert list(product.readers) == [f"org:{reader_org}"], (
        f"a non-owner sees only the reader entries granting it access, got {list(product.readers)}"
    )
    assert list(product.writers) == [], f"a reader sees no writers, got {list(product.writers)}"
    assert not product.user_is_owner() and not product.user_can_write() and product.user_can_read(), (
        "client-side ACL helpers for a reader"
    )
    names = [image.name for image in product.images()]
    assert names == ["by-owner"], f"a reader's product.images(): {names}"

    step("B (reader) cannot modify, delete or add images")
    product.name = "Changed by a reader"
    with raises(ForbiddenError, "a reader's save()"):
        product.save()
    with raises(ForbiddenError, "a reader's delete()"):
        Product.get(pid).delete()
    with raises(ForbiddenError, "a reader's Product.delete(id)"):
        Product.delete(pid)
    with raises(ForbiddenError, "a reader adding an image"):
        add_image(Product.get(pid), "by-reader")
    with raises(ForbiddenError, "a reader deleting an image"):
        Image.get(f"{pid}:by-owner").delete()
    assert Product.get(pid).name == "Shared compat product", "a forbidden save must not change the product"


def outsider() -> None:
    pid = product_id()
    step("C (outsider) neither gets nor finds the product")
    assert Product.get(pid) is None, f"an outsider's Product.get({pid!r}) should be None"
    assert Product.exists(pid) is False, "Product.exists() for an outsider should be False"
    assert found_by_search(pid) == [], f"an outsider's search found {found_by_search(pid)}"
    assert Image.get(f"{pid}:by-owner") is None, "an outsider's Image.get() of an image in the product"
    images = list(Image.search().filter(p.product_id == pid))
    assert images == [], f"an outsider's image search found {[i.id for i in images]}"


def group_reader() -> None:
    pid = product_id()
    group = env("COMPAT_READER_GROUP")
    step("G (member of a reader group in a third org) can read")
    product = Product.get(pid)
    assert product is not None, f"a group reader's Product.get({pid!r}) returned None"
    assert list(product.readers) == [f"group:{group}"], f"a group reader sees its entry only: {product.readers}"
    assert product.user_can_read(), "client-side user_can_read() for a group reader"
    assert found_by_search(pid) == [pid], f"a group reader's search: {found_by_search(pid)}"


def org_member() -> None:
    pid = product_id()
    step("M (plain member of the owner org) is not an owner: `org:` in owners means org admins")
    assert Product.get(pid) is None, "a non-admin member of the owner org should not see the product"
    assert found_by_search(pid) == [], "a non-admin member of the owner org found the product"


def org_admin() -> None:
    pid = product_id()
    step("D (admin of the owner org) is an owner through `org:<org>` in owners")
    product = Product.get(pid)
    assert product is not None, "an org admin's Product.get() returned None"
    assert sorted(product.readers) == sorted(all_readers()), f"an owner sees all readers: {list(product.readers)}"
    assert product.user_is_owner(), f"client-side user_is_owner() for an org admin (owners {product.owners})"
    product.readers = [*all_readers(), "email:added-by-admin@example.com"]
    product.save()
    assert "email:added-by-admin@example.com" in product.readers, "an org admin changing readers"
    product.readers = all_readers()
    product.save()


def owner_grant_writer() -> None:
    step("A adds B's email to the writers")
    product = Product.get(product_id())
    product.writers = [f"email:{env('COMPAT_WRITER_EMAIL')}"]
    product.save()
    assert list(product.writers) == [f"email:{env('COMPAT_WRITER_EMAIL')}"], f"writers {list(product.writers)}"


def writer() -> None:
    pid = product_id()
    email = env("COMPAT_WRITER_EMAIL")
    step("B (writer) can modify the product and add images")
    product = Product.get(pid)
    assert product is not None, "a writer's Product.get() returned None"
    assert list(product.writers) == [f"email:{email}"], f"a writer sees its writer entry: {list(product.writers)}"
    assert product.user_can_write() and not product.user_is_owner(), "client-side ACL helpers for a writer"
    product.description = "Described by the writer"
    product.save()
    assert product.description == "Described by the writer", f"description after save {product.description!r}"
    # Images take the product's ACLs when they are created (user guide: existing images keep theirs), so
    # the writer works on an image it adds now, not on the owner's older one.
    image = add_image(product, "by-writer")
    image.cloud_fraction = 0.3
    image.save()

    step("B (writer) cannot delete the product nor change its ACLs")
    with raises(ForbiddenError, "a writer's delete()"):
        Product.get(pid).delete()
    with raises(ForbiddenError, "a writer's delete_related_objects()"):
        Product.get(pid).delete_related_objects()
    assert sorted(image.name for image in Product.get(pid).images()) == ["by-owner", "by-writer"], (
        "a writer's refused delete_related_objects() must not delete anything"
    )
    for acl, value in (
        ("readers", [f"org:{env('COMPAT_READER_ORG')}", "org:everyone-else"]),
        ("writers", [f"email:{email}", "email:friend@example.com"]),
        ("owners", [f"org:{env('COMPAT_READER_ORG')}"]),
    ):
        product = Product.get(pid)
        setattr(product, acl, value)
        with raises(ForbiddenError, f"a writer changing {acl}"):
            product.save()
    assert Product.exists(pid), "the product must survive a writer's delete attempt"


def owner_finish() -> None:
    pid = product_id()
    step("A sees the writer's changes and the full ACLs")
    product = Product.get(pid)
    assert product.description == "Described by the writer", f"description {product.description!r}"
    assert sorted(product.readers) == sorted(all_readers()), f"the owner sees all readers: {list(product.readers)}"
    assert list(product.writers) == [f"email:{env('COMPAT_WRITER_EMAIL')}"], f"writers {list(product.writers)}"
    names = sorted(image.name for image in product.images())
    assert names == ["by-owner", "by-writer"], f"images {names}"
    assert Image.get(f"{pid}:by-writer").cloud_fraction == 0.3, "the writer's image update"

    step("A revokes the reader organization and the writer")
    product.readers = [OTHER_READER]
    product.writers = []
    product.save()
    assert list(product.readers) == [OTHER_READER] and list(product.writers) == [], "ACLs after revoking"


def revoked() -> None:
    pid = product_id()
    step("B lost access")
    assert Product.get(pid) is None, "Product.get() after access was revoked should be None"
    assert found_by_search(pid) == [], "search after access was revoked"


def owner_cleanup() -> None:
    pid = product_id()
    step("A deletes images and product")
    product = Product.get(pid)
    for image in product.images():
        image.delete()
    product.delete()
    assert Product.exists(pid) is False, "product still exists after cleanup"


STEPS = {
    "owner-create": owner_create,
    "group-reader": group_reader,
    "org-member": org_member,
    "org-admin": org_admin,
    "reader": reader,
    "outsider": outsider,
    "owner-grant-writer": owner_grant_writer,
    "writer": writer,
    "owner-finish": owner_finish,
    "revoked": revoked,
    "owner-cleanup": owner_cleanup,
}


def main() -> None:
    name = env("COMPAT_STEP")
    assert name in STEPS, f"unknown COMPAT_STEP {name!r}; one of {sorted(STEPS)}"
    STEPS[name]()


if __name__ == "__main__":
    run(main)
