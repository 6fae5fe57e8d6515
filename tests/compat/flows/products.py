"""Products: create (org-prefixed ids), get, get_or_create, exists, update, search filters, pagination.

Inputs: COMPAT_ORG (the user's organization slug, or sha1(sub) for a user outside any organization),
COMPAT_PAGE_SIZE (the server's page size, so the flow creates more products than fit on one page), and
optionally COMPAT_SECTIONS (comma-separated names from SECTIONS; default all; creation always runs).
"""

from __future__ import annotations

import os

from _flowlib import assert_utc_datetime, check, env, note, raises, run, step, unique, utc
from descarteslabs.catalog import DocumentState, Product
from descarteslabs.catalog import properties as p


def check_create_and_get(org: str, tag: str) -> Product:
    step("create a product; its id comes back prefixed with the organization")
    local_id = unique("compat-product")
    product = Product(id=local_id, name="My compat product", tags=[tag])
    product.save()
    assert product.id == f"{org}:{local_id}", f"saved id should be '{org}:{local_id}', got {product.id!r}"
    assert product.state == DocumentState.SAVED, f"state after save: {product.state}"
    assert_utc_datetime(product.created, "product.created")
    assert_utc_datetime(product.modified, "product.modified")
    assert product.name == "My compat product", f"name after save: {product.name!r}"
    assert list(product.tags) == [tag], f"tags after save: {product.tags!r}"

    step("namespace_id / exists / get")
    assert Product.namespace_id(local_id) == product.id, (
        f"namespace_id({local_id!r}) = {Product.namespace_id(local_id)!r}, expected {product.id!r}"
    )
    assert Product.namespace_id("x") == f"{org}:x", f"namespace_id('x') = {Product.namespace_id('x')!r}"
    assert Product.namespace_id(product.id) == product.id, "namespace_id must not prefix an already prefixed id"
    assert Product.exists(product.id) is True, f"Product.exists({product.id!r}) should be True"
    assert Product.exists(local_id) is False, f"Product.exists({local_id!r}) (unprefixed) should be False"
    assert Product.exists(f"{org}:{unique('missing')}") is False, "exists() of an unknown id should be False"

    fetched = Product.get(product.id)
    assert fetched is not None, f"Product.get({product.id!r}) returned None"
    assert fetched.id == product.id and fetched.name == product.name, f"fetched {fetched.id!r} {fetched.name!r}"
    assert fetched.created == product.created, f"created differs: {fetched.created!r} != {product.created!r}"
    assert Product.get(f"{org}:{unique('missing')}") is None, "Product.get of an unknown id should be None"
    return product


def check_get_or_create(org: str, product: Product) -> None:
    step("get_or_create on an existing product updates it")
    existing = Product.get_or_create(product.id, name="My renamed compat product")
    assert existing.state == DocumentState.MODIFIED, f"existing product with a new name: state {existing.state}"
    existing.save()
    assert existing.name == "My renamed compat product", f"name after save: {existing.name!r}"
    assert Product.get(product.id).name == "My renamed compat product", "rename not persisted"

    same = Product.get_or_create(product.id, name="My renamed compat product")
    assert same.state == DocumentState.SAVED, f"identical get_or_create should be SAVED (no-op), is {same.state}"

    step("get_or_create on a new namespaced id creates it")
    new_id = Product.namespace_id(unique("compat-goc"))
    created = Product.get_or_create(new_id, name="My get_or_create product")
    assert created.state == DocumentState.UNSAVED, f"new product from get_or_create: state {created.state}"
    created.save()
    assert created.id == new_id, f"a namespaced id must be kept as is: sent {new_id!r}, got {created.id!r}"
    assert Product.get(new_id) is not None, f"{new_id} not found after get_or_create + save"
    created.delete()
    assert Product.exists(new_id) is False, f"{new_id} still exists after delete()"


def check_update(product: Product) -> None:
    step("update start_datetime / end_datetime; modified changes, timestamps are datetimes")
    before = Product.get(product.id)
    product = Product.get(product.id)
    product.start_datetime = "2012-01-01"
    product.end_datetime = "2015-01-01"
    product.description = "Updated by the compat suite"
    product.save()
    assert product.start_datetime == utc(2012, 1, 1), f"start_datetime: {product.start_datetime!r}"
    assert product.end_datetime == utc(2015, 1, 1), f"end_datetime: {product.end_datetime!r}"
    assert_utc_datetime(product.start_datetime, "start_datetime")
    assert_utc_datetime(product.modified, "modified")
    assert product.modified > before.modified, f"modified did not advance: {before.modified} -> {product.modified}"
    assert product.created == before.created, f"created changed on update: {before.created} -> {product.created}"

    again = Product.get(product.id)
    assert again.start_datetime == utc(2012, 1, 1), f"start_datetime not persisted: {again.start_datetime!r}"
    assert again.end_datetime == utc(2015, 1, 1), f"end_datetime not persisted: {again.end_datetime!r}"
    assert again.description == "Updated by the compat suite", f"description: {again.description!r}"

    step("update the other writable product attributes")
    again.revisit_period_minutes_min = 2.5
    again.revisit_period_minutes_max = 60.0
    again.default_display_bands = ["red", "green", "blue"]
    again.save()
    assert (again.revisit_period_minutes_min, again.revisit_period_minutes_max) == (2.5, 60.0), (
        f"revisit period: {again.revisit_period_minutes_min}, {again.revisit_period_minutes_max}"
    )
    assert list(again.default_display_bands) == ["red", "green", "blue"], f"{again.default_display_bands!r}"
    assert again.is_core in (False, None), f"is_core of a user's product: {again.is_core!r}"
    found = [found.id for found in Product.search().filter(p.revisit_period_minutes_min < 5)]
    assert again.id in found, f"revisit_period_minutes_min < 5 should find {again.id}: {found}"
    assert again.start_datetime == utc(2012, 1, 1), "a PATCH of other attributes must keep start_datetime"

    step("update tags and extra_properties")
    again.tags.append("extra-tag")
    again.extra_properties = {"k": "v", "n": 1}
    again.save()
    third = Product.get(product.id)
    assert "extra-tag" in third.tags, f"appended tag missing: {third.tags!r}"
    assert dict(third.extra_properties) == {"k": "v", "n": 1}, f"extra_properties: {dict(third.extra_properties)!r}"


def check_search_filters(tag: str) -> None:
    step("search: datetime range filters, sort, limit, count")
    word = unique("needle")
    specs = [
        # (suffix, name, start, end, description, tags)
        ("a", "My alpha", "2005-01-01", "2010-01-01", f"contains {word}", [tag, "t1"]),
        ("b", "My beta", "2001-06-01", "2003-01-01", None, [tag, "t2"]),
        ("c", "Other gamma", "2017-01-01", "2020-01-01", "plain", [tag, "t1", "t3"]),
        ("d", "Other delta", "1990-01-01", "1995-01-01", None, [tag]),
        ("e", "my epsilon", "2012-01-01", "2013-01-01", "plain", [tag, "t4"]),
    ]
    ids = {}
    for suffix, name, start, end, description, tags in specs:
        product = Product(
            id=unique(f"compat-search-{suffix}"), name=name, start_datetime=start, end_datetime=end, tags=tags
        )
        if description is not None:
            product.description = description
        product.save()
        ids[suffix] = product.id

    def found(search) -> set[str]:
        return {product.id for product in search}

    def suffixes(found_ids: set[str]) -> list[str]:
        return sorted(s for s, i in ids.items() if i in found_ids)

    scoped = Product.search().filter(p.tags == tag)
    assert scoped.count() == 5, f"count of the flow's products: {scoped.count()}"

    search = scoped.filter(p.start_datetime < "2016-01-01")
    assert search.count() == 4, f"start_datetime < 2016: count {search.count()}, expected 4 (a, b, d, e)"
    search = search.filter(p.end_datetime > "2000-01-01")
    got = found(search)
    assert got == {ids["a"], ids["b"], ids["e"]}, f"start < 2016 and end > 2000: got {suffixes(got)}"
    assert search.count() == 3, f"count(): {search.count()}"

    oldest = [product.id for product in search.sort("start_datetime").limit(3)]
    assert oldest == [ids["b"], ids["a"], ids["e"]], f"sort(start_datetime).limit(3): {suffixes(set(oldest))}"
    newest = [product.id for product in scoped.sort("start_datetime", ascending=False).limit(2)]
    assert newest == [ids["c"], ids["e"]], f"sort(-start_datetime).limit(2) gave {newest}"

    step("search: find_text")
    got = found(Product.search().find_text(word))
    assert got == {ids["a"]}, f"find_text({word!r}): {got}"

    step("search: tags eq / in_")
    got = found(scoped.filter(p.tags == "t1"))
    assert got == {ids["a"], ids["c"]}, f"tags == 't1': {suffixes(got)}"
    got = found(scoped.filter(p.tags.in_(["t2", "t3"])))
    assert got == {ids["b"], ids["c"]}, f"tags in ['t2', 't3']: {suffixes(got)}"
    assert scoped.filter(p.tags.in_(["t2", "t3"])).count() == 2, "count() of tags.in_"

    step("search: id prefix, name like, description isnull / isnotnull")
    prefix = ids["a"][: ids["a"].rindex("-") + 1]  # "<org>:compat-search-a-"
    got = found(Product.search().filter(p.id.prefix(prefix)))
    assert got == {ids["a"]}, f"id.prefix({prefix!r}): {got}"
    got = found(scoped.filter(p.name.like("My%")))
    assert got == {ids["a"], ids["b"], ids["e"]}, f"name.like('My%') (case-insensitive): {suffixes(got)}"
    got = found(scoped.filter(p.name.like("%gamma")))
    assert got == {ids["c"]}, f"name.like('%gamma'): {suffixes(got)}"
    got = found(scoped.filter(p.description.isnull))
    assert got == {ids["b"], ids["d"]}, f"description.isnull: {suffixes(got)}"
    got = found(scoped.filter(p.description.isnotnull))
    assert got == {ids["a"], ids["c"], ids["e"]}, f"description.isnotnull: {suffixes(got)}"

    step("search: or / ne")
    got = found(scoped.filter((p.name == "My alpha") | (p.name == "Other delta")))
    assert got == {ids["a"], ids["d"]}, f"name == alpha | name == delta: {suffixes(got)}"
    got = found(scoped.filter(p.name != "My alpha"))
    assert got == {ids["b"], ids["c"], ids["d"], ids["e"]}, f"name != 'My alpha': {suffixes(got)}"


def check_pagination(page_size: int) -> None:
    total = 2 * page_size + 2
    step(f"pagination: {total} products with a server page size of {page_size}")
    tag = unique("compat-page")
    created = []
    for index in range(total):
        product = Product(id=unique(f"compat-page-{index:03d}"), name=f"Paged {index:03d}", tags=[tag])
        product.save()
        created.append(product.id)

    search = Product.search().filter(p.tags == tag)
    assert search.count() == total, f"count(): {search.count()}, expected {total}"

    seen = [product.id for product in search]
    assert len(seen) == total, f"iteration returned {len(seen)} products, expected {total}"
    assert len(set(seen)) == total, f"iteration returned duplicates: {len(seen) - len(set(seen))}"
    assert set(seen) == set(created), "iteration returned other products than the ones created"

    by_name = [product.name for product in search.sort("name")]
    assert by_name == sorted(by_name) and len(by_name) == total, f"sort('name') across pages: {by_name}"
    by_name_desc = [product.name for product in search.sort("name", ascending=False)]
    assert by_name_desc == sorted(by_name, reverse=True), "sort('-name') across pages is not descending"

    for cap in (page_size - 1, page_size, page_size + 1, 2 * page_size + 1):
        got = [product.name for product in search.sort("name").limit(cap)]
        assert got == by_name[:cap], f"limit({cap}) is a total cap across pages: got {len(got)} items"
    note(f"iterated {total} products over {-(-total // page_size)} pages")

    return created


def check_get_many(created: list[str], page_size: int) -> None:
    step("get_many of more ids than fit on one page returns them all in one response")
    many = Product.get_many(created[:page_size])
    assert sorted(product.id for product in many) == sorted(created[:page_size]), "get_many of one page of ids"
    many = Product.get_many(created)
    assert sorted(product.id for product in many) == sorted(created), (
        f"Product.get_many({len(created)} ids) returned {len(many)} products (page size {page_size})"
    )


def check_more_filters(created: list[str]) -> None:
    total = len(created)
    search = Product.search().filter(p.id.in_(created))
    step("id.in_, created range (naive datetime = UTC), sort by -created")
    subset = created[:3]
    got = {product.id for product in Product.search().filter(p.id.in_(subset))}
    assert got == set(subset), f"id.in_({subset}): {sorted(got)}"
    first = Product.get(created[0])
    last = Product.get(created[-1])
    naive_start = first.created.replace(tzinfo=None)
    window = search.filter(p.created >= naive_start).filter(p.created <= last.created)
    assert window.count() == total, f"created between first and last (naive >=, aware <=): {window.count()}"
    newest_first = [product.id for product in search.sort("created", ascending=False)]
    assert newest_first == list(reversed(created)), "sort('-created') should list the newest product first"


def check_delete(product: Product) -> None:
    step("delete an empty product")
    product.delete()
    assert product.state == DocumentState.DELETED, f"state after delete(): {product.state}"
    assert Product.get(product.id) is None, "product still found after delete()"
    assert Product.exists(product.id) is False, "exists() is True after delete()"
    assert Product.delete(product.id) is False, "Product.delete(id) of a deleted product should be False (404)"

    step("Product.delete(id) (classmethod) of an existing product")
    other = Product(id=unique("compat-delete"), name="To be deleted")
    other.save()
    assert Product.delete(other.id) is True, "Product.delete(id) should return True"
    assert Product.exists(other.id) is False, "exists() is True after Product.delete(id)"
    from descarteslabs.catalog import DeletedObjectError

    with raises(DeletedObjectError, "save() of a deleted product"):
        product.name = "zombie"
        product.save()


SECTIONS = ("get_or_create", "update", "filters", "pagination", "get_many", "more_filters", "delete")


def main() -> None:
    org = env("COMPAT_ORG")
    page_size = int(env("COMPAT_PAGE_SIZE"))
    wanted = os.environ.get("COMPAT_SECTIONS")
    sections = set(wanted.split(",")) if wanted else set(SECTIONS)
    assert sections <= set(SECTIONS), f"unknown COMPAT_SECTIONS {sorted(sections - set(SECTIONS))}"

    product = check_create_and_get(org, unique("compat-products"))
    if "get_or_create" in sections:
        check(check_get_or_create, org, product)
    if "update" in sections:
        check(check_update, product)
    if "filters" in sections:
        check(check_search_filters, unique("compat-filters"))
    if sections & {"pagination", "get_many", "more_filters"}:
        created = check(check_pagination, page_size)
        if created and "get_many" in sections:
            check(check_get_many, created, page_size)
        if created and "more_filters" in sections:
            check(check_more_filters, created)
    if "delete" in sections:
        check(check_delete, Product.get(product.id))


if __name__ == "__main__":
    run(main)
