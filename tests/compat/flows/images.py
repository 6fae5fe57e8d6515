"""Remote images: create, search (product, intersects, date range, cloud_fraction, tags), summaries,
update, get_many, and a footprint crossing the antimeridian.

Inputs: COMPAT_ORG, COMPAT_PAGE_SIZE.
"""

from __future__ import annotations

import datetime as dt

from _flowlib import assert_utc_datetime, check, env, note, run, step, unique, utc
from descarteslabs.catalog import File, Image, Interval, Product, StorageState
from descarteslabs.catalog import properties as p

# The user guide's search polygon (Girona) and a footprint that covers it.
GIRONA_SEARCH = {
    "type": "Polygon",
    "coordinates": [
        [
            [2.915496826171875, 42.044193618165224],
            [2.838592529296875, 41.92475971933975],
            [3.043212890625, 41.929868314485795],
            [2.915496826171875, 42.044193618165224],
        ]
    ],
}
GIRONA_FOOTPRINT = {
    "type": "Polygon",
    "coordinates": [[[2.5, 41.5], [3.5, 41.5], [3.5, 42.5], [2.5, 42.5], [2.5, 41.5]]],
}
# The user guide's remote image footprint (Bern): far from Girona.
BERN_FOOTPRINT = {
    "type": "Polygon",
    "coordinates": [
        [
            [7.488099932670593, 46.95386728954941],
            [7.488352060317992, 46.953656742419255],
            [7.488429844379425, 46.953916722233814],
            [7.488099932670593, 46.95386728954941],
        ]
    ],
}
# 175°E .. 175°W across the antimeridian (longitudes beyond 180 in GeoJSON order, unambiguous).
ANTIMERIDIAN_FOOTPRINT = {
    "type": "Polygon",
    "coordinates": [[[175.0, -5.0], [185.0, -5.0], [185.0, 5.0], [175.0, 5.0], [175.0, -5.0]]],
}


def box(west: float, south: float, east: float, north: float) -> dict:
    return {
        "type": "Polygon",
        "coordinates": [[[west, south], [east, south], [east, north], [west, north], [west, south]]],
    }


def remote_image(product: Product, name: str, acquired: str, geometry: dict, **attributes) -> Image:
    image = Image(product=product, name=name)
    image.storage_state = StorageState.REMOTE
    image.acquired = acquired
    image.geometry = geometry
    image.files = [File(href=f"https://example.com/{name}.tif", size_bytes=1000, provider_id=name)]
    for key, value in attributes.items():
        setattr(image, key, value)
    image.save()
    return image


def create_images(product: Product) -> dict[str, Image]:
    step("create remote images")
    specs = [
        # name, acquired, geometry, cloud_fraction, tags
        ("mar-a", "2017-03-05", GIRONA_FOOTPRINT, 0.1, ["temporary", "guide"]),
        ("mar-b", "2017-03-20T12:30:00Z", GIRONA_FOOTPRINT, 0.5, ["temporary"]),
        ("may-c", "2017-05-10", GIRONA_FOOTPRINT, 0.05, ["keep"]),
        ("feb-d", "2018-02-01", GIRONA_FOOTPRINT, 0.1, ["temporary"]),
        ("apr-e", "2017-04-01", BERN_FOOTPRINT, 0.1, ["temporary"]),
        ("jun-am", "2017-06-15", ANTIMERIDIAN_FOOTPRINT, None, []),
    ]
    images = {}
    for name, acquired, geometry, cloud_fraction, tags in specs:
        attributes = {"tags": tags}
        if cloud_fraction is not None:
            attributes["cloud_fraction"] = cloud_fraction
        images[name] = remote_image(product, name, acquired, geometry, **attributes)

    image = Image.get(images["mar-a"].id)
    assert image is not None, f"Image.get({images['mar-a'].id!r}) is None"
    assert image.id == f"{product.id}:mar-a", f"image id {image.id!r}"
    assert image.product_id == product.id and image.product.id == product.id, "image.product"
    assert image.storage_state == StorageState.REMOTE, f"storage_state {image.storage_state!r}"
    assert image.acquired == utc(2017, 3, 5), f"acquired {image.acquired!r}"
    assert_utc_datetime(image.created, "image.created")
    assert [f.href for f in image.files] == ["https://example.com/mar-a.tif"], f"files {image.files!r}"
    assert image.files[0].provider_id == "mar-a", f"file provider_id {image.files[0].provider_id!r}"
    assert image.cloud_fraction == 0.1, f"cloud_fraction {image.cloud_fraction!r}"
    assert sorted(image.tags) == ["guide", "temporary"], f"tags {image.tags!r}"
    minx, miny, maxx, maxy = image.geometry.bounds
    assert (minx, miny, maxx, maxy) == (2.5, 41.5, 3.5, 42.5), f"geometry bounds {image.geometry.bounds}"
    assert Image.get(images["mar-b"].id).acquired == utc(2017, 3, 20, 12, 30), "acquired with a time of day"
    return images


def check_attributes(product: Product) -> None:
    step("an image with most attributes round-trips")
    image = Image(product=product, name="full")
    image.storage_state = StorageState.REMOTE
    image.acquired = "2016-07-01T14:30:00+02:00"
    image.acquired_end = "2016-07-01T12:31:00Z"
    image.published = "2016-07-03"
    image.geometry = GIRONA_FOOTPRINT
    image.cs_code = "EPSG:4326"
    image.geotrans = (2.5, 0.01, 0.0, 42.5, 0.0, -0.01)
    image.x_pixels = 100
    image.y_pixels = 100
    image.files = [File(provider_href="https://provider.example.com/full", provider_id="p-full")]
    image.satellite_id = "sat-1"
    image.provider_id = "prov-1"
    image.processing_pipeline_id = "pipe-1"
    image.preview_url = "https://example.com/full.png"
    image.view_angle = 12.5
    image.solar_elevation_angle = 45.0
    image.fill_fraction = 0.9
    image.bits_per_pixel = [16.0, 16.0]
    image.reflectance_gain_bias = [[0.0001, 0.0], [0.0002, -0.1]]
    image.extra_properties = {"k": "v"}
    image.save()
    back = Image.get(image.id)
    assert back.acquired == utc(2016, 7, 1, 12, 30), f"acquired with +02:00 offset -> UTC: {back.acquired!r}"
    assert back.acquired_end == utc(2016, 7, 1, 12, 31), f"acquired_end {back.acquired_end!r}"
    assert back.published == utc(2016, 7, 3), f"published {back.published!r}"
    assert back.cs_code == "EPSG:4326", f"cs_code {back.cs_code!r}"
    assert tuple(back.geotrans) == (2.5, 0.01, 0.0, 42.5, 0.0, -0.01), f"geotrans {back.geotrans!r}"
    assert (back.x_pixels, back.y_pixels) == (100, 100), f"pixels {back.x_pixels} x {back.y_pixels}"
    assert back.files[0].provider_href == "https://provider.example.com/full", f"files {back.files!r}"
    assert (back.satellite_id, back.provider_id, back.processing_pipeline_id) == ("sat-1", "prov-1", "pipe-1"), (
        "string attributes"
    )
    assert back.preview_url == "https://example.com/full.png", f"preview_url {back.preview_url!r}"
    assert (back.view_angle, back.solar_elevation_angle, back.fill_fraction) == (12.5, 45.0, 0.9), "angles"
    assert list(back.bits_per_pixel) == [16.0, 16.0], f"bits_per_pixel {back.bits_per_pixel!r}"
    assert [list(row) for row in back.reflectance_gain_bias] == [[0.0001, 0.0], [0.0002, -0.1]], (
        f"reflectance_gain_bias {back.reflectance_gain_bias!r}"
    )
    found = names(product.images().filter(p.satellite_id == "sat-1").filter(p.view_angle > 10))
    assert found == ["full"], f"filter satellite_id / view_angle: {found}"
    found = names(product.images().filter(p.acquired < dt.datetime(2016, 7, 1, 12, 30, 30)))  # noqa: DTZ001
    assert found == ["full"], f"naive datetime filter (taken as UTC): {found}"
    back.delete()


def names(search) -> list[str]:
    return sorted(image.name for image in search)


def check_search(product: Product) -> None:
    step("search by product, intersects, acquired range, cloud_fraction, tags (the user guide's search)")
    everything = product.images()
    assert everything.count() == 6, f"product.images().count() = {everything.count()}"
    assert names(everything) == ["apr-e", "feb-d", "jun-am", "mar-a", "mar-b", "may-c"], names(everything)

    search = product.images().intersects(GIRONA_SEARCH)
    assert names(search) == ["feb-d", "mar-a", "mar-b", "may-c"], f"intersects(Girona): {names(search)}"
    search = search.filter((p.acquired > "2017-01-01") & (p.acquired < "2018-01-01"))
    assert search.count() == 3, f"+ acquired in 2017: count {search.count()}"
    assert names(search) == ["mar-a", "mar-b", "may-c"], f"+ acquired in 2017: {names(search)}"
    search = search.filter(p.cloud_fraction < 0.2)
    assert search.count() == 2, f"+ cloud_fraction < 0.2: count {search.count()}"
    assert names(search) == ["mar-a", "may-c"], f"+ cloud_fraction < 0.2: {names(search)}"
    tagged = search.filter(p.tags == "temporary")
    assert names(tagged) == ["mar-a"], f"+ tags == 'temporary': {names(tagged)}"
    assert tagged.count() == 1, f"+ tags == 'temporary': count {tagged.count()}"

    step("intersects(match_null_geometry=True), p.product == <Product>")
    with_null = names(product.images().intersects(GIRONA_SEARCH, match_null_geometry=True))
    assert with_null == ["feb-d", "mar-a", "mar-b", "may-c"], f"intersects(..., match_null_geometry): {with_null}"
    by_object = names(Image.search().filter(p.product == product))
    assert by_object == names(everything), f"Image.search().filter(p.product == product): {by_object}"

    step("filters on their own")
    assert names(product.images().filter(p.tags == "temporary")) == ["apr-e", "feb-d", "mar-a", "mar-b"], (
        "tags == 'temporary'"
    )
    no_cloud = names(product.images().filter(p.cloud_fraction.isnull))
    assert no_cloud == ["jun-am"], f"cloud_fraction.isnull: {no_cloud}"
    assert names(product.images().filter(p.storage_state == StorageState.REMOTE)) == names(everything), (
        "storage_state == remote"
    )
    ordered = [image.name for image in product.images().sort("acquired")]
    assert ordered == ["mar-a", "mar-b", "apr-e", "may-c", "jun-am", "feb-d"], f"sort('acquired'): {ordered}"
    ordered = [image.name for image in product.images().sort("acquired", ascending=False).limit(2)]
    assert ordered == ["feb-d", "jun-am"], f"sort(-acquired).limit(2): {ordered}"
    created_after = product.images().filter(p.created < utc(2000, 1, 1))
    assert created_after.count() == 0, "created < 2000 should match nothing"


def check_antimeridian(product: Product) -> None:
    step("an image crossing the antimeridian is found from either side, and not from the middle")
    east = names(product.images().intersects(box(177.0, -1.0, 179.0, 1.0)))
    west = names(product.images().intersects(box(-179.0, -1.0, -177.0, 1.0)))
    middle = names(product.images().intersects(box(-10.0, -1.0, 10.0, 1.0)))
    assert east == ["jun-am"], f"intersects east of 180: {east}"
    assert west == ["jun-am"], f"intersects west of -180: {west}"
    assert middle == [], f"intersects around 0 must not match the antimeridian image: {middle}"
    point = names(product.images().intersects({"type": "Point", "coordinates": [-178.0, 0.0]}))
    assert point == ["jun-am"], f"intersects Point(-178, 0): {point}"


def check_summaries(product: Product) -> None:
    step("summary()")
    summary = product.images().summary()
    assert summary.count == 6, f"summary().count = {summary.count}"
    assert list(summary.products) == [product.id], f"summary().products = {summary.products}"
    assert isinstance(summary.bytes, int) and summary.bytes >= 0, f"summary().bytes = {summary.bytes!r}"
    note(f"summary: {summary.count} images, {summary.bytes} bytes")

    filtered = product.images().filter(p.tags == "temporary").summary()
    assert filtered.count == 4, f"summary() of tags == 'temporary': count {filtered.count}"
    geo = product.images().intersects(GIRONA_SEARCH).summary()
    assert geo.count == 4, f"summary() with intersects(Girona): count {geo.count}"

    step("summary_interval(interval='month')")
    buckets = product.images().summary_interval(
        interval=Interval.MONTH, start_datetime="2017-03-01", end_datetime="2017-05-31"
    )
    by_month = {bucket.interval_start: bucket.count for bucket in buckets}
    note(f"buckets: {[(b.interval_start.isoformat(), b.count) for b in buckets]}")
    for bucket in buckets:
        assert_utc_datetime(bucket.interval_start, "interval_start")
        assert utc(2017, 3, 1) <= bucket.interval_start <= utc(2017, 5, 1), f"bucket outside range: {bucket!r}"
        assert bucket.interval_start.day == 1 and bucket.interval_start.hour == 0, f"not a month start: {bucket!r}"
        assert isinstance(bucket.bytes, int), f"bucket bytes {bucket.bytes!r}"
    assert by_month == {utc(2017, 3, 1): 2, utc(2017, 4, 1): 1, utc(2017, 5, 1): 1}, f"monthly counts {by_month}"
    starts = [bucket.interval_start for bucket in buckets]
    assert starts == sorted(starts), f"buckets not in chronological order: {starts}"

    daily = product.images().summary_interval(aggregate_date_field="created", interval="day")
    assert sum(bucket.count for bucket in daily) == 6, f"summary_interval by created/day: {daily}"
    assert [bucket.count for bucket in daily if bucket.count] == [6], f"all images were created today: {daily}"

    unbounded = product.images().summary_interval(interval="year", start_datetime=0, end_datetime=0)
    by_year = {bucket.interval_start.year: bucket.count for bucket in unbounded if bucket.count}
    assert by_year == {2017: 5, 2018: 1}, f"yearly counts with unbounded start/end (0): {by_year}"

    yearly = product.images().filter(p.tags == "temporary").summary_interval(interval="year")
    by_year = {bucket.interval_start.year: bucket.count for bucket in yearly if bucket.count}
    assert by_year == {2017: 3, 2018: 1}, f"yearly counts of 'temporary' images (bounds from data): {by_year}"


def check_update(product: Product, images: dict[str, Image]) -> None:
    step("image update: cloud_fraction, extra_properties, tags")
    image = Image.get(images["mar-b"].id)
    before = image.modified
    image.cloud_fraction = 0.15
    image.extra_properties = {"processing_time": 120, "quality": 0.5, "reviewer": "joe@acme.com"}
    image.tags = ["temporary", "guide"]
    image.save()
    assert image.cloud_fraction == 0.15, f"cloud_fraction after save {image.cloud_fraction!r}"
    assert image.modified > before, "modified did not advance on image update"
    again = Image.get(image.id)
    assert again.cloud_fraction == 0.15, f"cloud_fraction not persisted {again.cloud_fraction!r}"
    assert dict(again.extra_properties) == {"processing_time": 120, "quality": 0.5, "reviewer": "joe@acme.com"}, (
        f"extra_properties {dict(again.extra_properties)!r}"
    )
    assert sorted(again.tags) == ["guide", "temporary"], f"tags {again.tags!r}"
    assert again.acquired == utc(2017, 3, 20, 12, 30), "an update must keep attributes it did not send"
    assert again.geometry.bounds == (2.5, 41.5, 3.5, 42.5), "an update must keep the geometry"

    search = (
        product.images()
        .intersects(GIRONA_SEARCH)
        .filter((p.acquired > "2017-01-01") & (p.acquired < "2018-01-01"))
        .filter(p.cloud_fraction < 0.2)
    )
    assert names(search) == ["mar-a", "mar-b", "may-c"], f"after the update, cloud_fraction < 0.2: {names(search)}"
    guide = names(product.images().filter(p.tags == "guide"))
    assert guide == ["mar-a", "mar-b"], f"tags == 'guide' after the update: {guide}"

    step("Image.get_many")
    ids = [images["mar-a"].id, images["may-c"].id, images["jun-am"].id]
    many = Image.get_many(ids)
    assert sorted(image.id for image in many) == sorted(ids), f"get_many: {[i.id for i in many]}"


def check_paging(product: Product, page_size: int) -> None:
    total = page_size * 2 + 1
    step(f"image pagination: {total} more images, page size {page_size}")
    for index in range(total):
        remote_image(product, f"page-{index:03d}", f"2019-01-{index + 1:02d}", GIRONA_FOOTPRINT)
    search = product.images().filter(p.acquired >= "2019-01-01")
    assert search.count() == total, f"count {search.count()}"
    got = [image.name for image in search.sort("acquired")]
    assert got == [f"page-{index:03d}" for index in range(total)], f"paged images {got}"
    capped = [image.name for image in search.sort("acquired").limit(page_size + 2)]
    assert len(capped) == page_size + 2, f"limit({page_size + 2}) returned {len(capped)}"


def check_delete(images: dict[str, Image]) -> None:
    step("image delete")
    image = Image.get(images["apr-e"].id)
    image.delete()
    assert Image.get(images["apr-e"].id) is None, "image still found after delete()"
    assert Image.exists(images["apr-e"].id) is False, "Image.exists after delete()"


def main() -> None:
    env("COMPAT_ORG")
    page_size = int(env("COMPAT_PAGE_SIZE"))
    product = Product(id=unique("compat-images"), name="Compat images product")
    product.save()
    check(check_attributes, product)
    images = create_images(product)
    check(check_search, product)
    check(check_antimeridian, product)
    check(check_summaries, product)
    check(check_update, product, images)
    check(check_paging, product, page_size)
    check(check_delete, images)


if __name__ == "__main__":
    run(main)
