"""Errors as the client surfaces them: conflicts, client-side filter errors, missing objects, bad input.

Inputs: COMPAT_ORG.
"""

from __future__ import annotations

from _flowlib import check, env, raises, run, step, unique
from descarteslabs.catalog import Band, DeletedObjectError, Image, Product, SpectralBand, StorageState
from descarteslabs.catalog import properties as p
from descarteslabs.exceptions import BadRequestError, ClientError, ConflictError, NotFoundError

# A bow tie: self-intersecting, so not a valid polygon (the client accepts it, the server must not).
BOW_TIE = {"type": "Polygon", "coordinates": [[[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]]]}
FOOTPRINT = {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 1], [0, 0]]]}


def remote_image(product: Product, name: str, **attributes) -> Image:
    attributes = {"storage_state": StorageState.REMOTE, "acquired": "2020-01-01", "geometry": FOOTPRINT, **attributes}
    return Image(product=product, name=name, **attributes)


def check_conflicts(local_id: str, product: Product) -> None:
    step("creating a product whose id exists is a conflict")
    with raises(ConflictError, "creating a duplicate product (same unprefixed id)"):
        Product(id=local_id, name="Duplicate").save()
    with raises(ConflictError, "creating a duplicate product (prefixed id)"):
        Product(id=product.id, name="Duplicate").save()
    assert Product.get(product.id).name == "Compat errors product", "the conflict must not change the product"

    step("creating a band or image whose id exists is a conflict")
    SpectralBand(name="blue", product=product).save()
    with raises(ConflictError, "creating a duplicate band"):
        SpectralBand(name="blue", product=product).save()
    remote_image(product, "img").save()
    with raises(ConflictError, "creating a duplicate image"):
        remote_image(product, "img").save()


def check_client_side_filter_error() -> None:
    step("a filter on an unknown attribute fails in the client, before any request")
    with raises(AttributeError, "filter on p.not_an_attribute", match="not_an_attribute"):
        Product.search().filter(p.not_an_attribute == "x").count()


def check_missing_objects(org: str, product: Product) -> None:
    step("missing objects")
    assert Product.get("does-not-exist") is None, "Product.get('does-not-exist') should be None"
    assert Product.get(f"{org}:does-not-exist") is None, "Product.get of a missing prefixed id should be None"
    assert Product.exists("does-not-exist") is False, "Product.exists('does-not-exist') should be False"
    assert Band.get(f"{product.id}:nope") is None, "Band.get of a missing band should be None"
    assert Image.get(f"{product.id}:nope") is None, "Image.get of a missing image should be None"
    with raises(NotFoundError, "Product.get_many with a missing id"):
        Product.get_many([product.id, f"{org}:does-not-exist"])

    step("saving an object that was deleted meanwhile")
    stale = Product(id=unique("compat-stale"), name="Stale")
    stale.save()
    Product.delete(stale.id)
    stale.name = "Renamed after delete"
    with raises(DeletedObjectError, "save() of a product deleted by someone else"):
        stale.save()


def check_invalid_geometry(product: Product) -> None:
    step("an invalid geometry on image save is a 400 naming `geometry`")
    with raises(BadRequestError, "image with a self-intersecting geometry", match="geometry"):
        remote_image(product, "bow-tie", geometry=BOW_TIE).save()
    too_far_north = {"type": "Polygon", "coordinates": [[[0, 80], [1, 80], [1, 95], [0, 95], [0, 80]]]}
    with raises(BadRequestError, "image with latitudes beyond 90", match="geometry"):
        remote_image(product, "too-far-north", geometry=too_far_north).save()
    assert Image.get(f"{product.id}:bow-tie") is None, "the rejected image must not exist"

    step("an invalid geometry on image update is a 400 naming `geometry`")
    remote_image(product, "to-update").save()
    image = Image.get(f"{product.id}:to-update")
    image.geometry = BOW_TIE
    with raises(BadRequestError, "image update with a self-intersecting geometry", match="geometry"):
        image.save()


def check_limits(product: Product) -> None:
    step("documented limits are enforced with 400/422 (BadRequestError)")
    cases = [
        ("33 tags", {"tags": [f"t{i}" for i in range(33)]}),
        ("a tag over 1000 bytes", {"tags": ["x" * 1001]}),
        ("a name over 2000 characters", {"name": "n" * 2001}),
        ("a description over 80000 characters", {"description": "d" * 80001}),
        ("51 extra_properties", {"extra_properties": {f"k{i}": i for i in range(51)}}),
    ]
    for what, attributes in cases:
        candidate = Product(id=unique("compat-limits"), **{"name": "Limits", **attributes})
        with raises(BadRequestError, f"a product with {what}"):
            candidate.save()
        assert not Product.exists(Product.namespace_id(candidate.id)), f"the product with {what} was created"
    with raises(BadRequestError, "a band name with invalid characters", match="name"):
        SpectralBand(name="bad name!", product=product).save()
    with raises(BadRequestError, "a remote image without acquired", match="acquired"):
        Image(product=product, name="no-acquired", storage_state=StorageState.REMOTE, geometry=FOOTPRINT).save()


def check_privileged_attributes() -> None:
    step("is_core needs a privileged group")
    with raises(ClientError, "a normal user creating an is_core product"):
        Product(id=unique("compat-core"), name="Core", is_core=True).save()


def check_bad_search_parameters() -> None:
    step("invalid search parameters are a 400, not a server error")
    with raises(BadRequestError, "filter start_datetime < 'not a date'"):
        Product.search().filter(p.start_datetime < "not a date").count()
    with raises(BadRequestError, "sort on an attribute that is not sortable (tags)"):
        list(Product.search().sort("tags").limit(1))


def main() -> None:
    org = env("COMPAT_ORG")
    local_id = unique("compat-errors")
    product = Product(id=local_id, name="Compat errors product")
    product.save()
    check(check_conflicts, local_id, product)
    check(check_client_side_filter_error)
    check(check_missing_objects, org, product)
    check(check_invalid_geometry, product)
    check(check_limits, product)
    check(check_privileged_attributes)
    check(check_bad_search_parameters)


if __name__ == "__main__":
    run(main)
