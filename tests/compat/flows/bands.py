"""Bands: the five band types with their attributes, type-filtered searches, get_many, resolutions.

Inputs: COMPAT_ORG.
"""

from __future__ import annotations

from _flowlib import check, env, raises, run, step, unique
from descarteslabs.catalog import (
    Band,
    BandType,
    ClassBand,
    Colormap,
    DataType,
    GenericBand,
    MaskBand,
    MicrowaveBand,
    Product,
    Resolution,
    ResolutionUnit,
    SpectralBand,
)
from descarteslabs.catalog import properties as p
from descarteslabs.exceptions import NotFoundError

TOA_STEPS = [
    {
        "function": "linear",
        "parameter": "reflectance_gain_bias",
        "index": 0,
        "data_type": "Float32",
        "data_range": [0.0, 1.0],
        "display_range": [0.0, 0.4],
        "physical_range": [0.0, 1.0],
        "physical_range_unit": "reflectance",
    }
]


def meters(value: float) -> Resolution:
    return Resolution(unit=ResolutionUnit.METERS, value=value)


def create_bands(product: Product) -> dict[str, Band]:
    step("create one band of each type, with type-specific attributes")
    blue = SpectralBand(name="blue", product=product)
    blue.data_type = DataType.UINT16
    blue.data_range = (0, 10000)
    blue.display_range = (0, 4000)
    blue.resolution = meters(60)
    blue.band_index = 0
    blue.wavelength_nm_min = 452
    blue.wavelength_nm_max = 512
    blue.wavelength_nm_center = 482
    blue.wavelength_nm_fwhm = 60
    blue.physical_range = (0.0, 1.0)
    blue.physical_range_unit = "reflectance"
    blue.nodata = 0
    blue.description = "Blue, visible light"
    blue.processing_levels = {"toa_reflectance": TOA_STEPS, "surface": "toa_reflectance"}
    blue.vendor_order = 2
    blue.vendor_band_name = "B2"

    red = SpectralBand(
        name="red",
        product=product,
        data_type=DataType.UINT16,
        data_range=(0, 10000),
        display_range=(0, 4000),
        resolution=meters(10),
        band_index=1,
        wavelength_nm_center=665,
    )
    nir = SpectralBand(
        name="nir",
        product=product,
        data_type=DataType.UINT16,
        data_range=(0, 10000),
        display_range=(0, 4000),
        resolution=meters(10),
        band_index=2,
        wavelength_nm_center=842,
    )

    vv = MicrowaveBand(name="vv", product=product)
    vv.data_type = DataType.FLOAT32
    vv.data_range = (-50, 10)
    vv.display_range = (-30, 0)
    vv.resolution = meters(20)
    vv.band_index = 3
    vv.frequency = 5.405
    vv.bandwidth = 100.0
    vv.physical_range = (-50.0, 10.0)
    vv.physical_range_unit = "dB"

    alpha = MaskBand(name="alpha", product=product)
    alpha.is_alpha = True
    alpha.data_type = DataType.UINT16
    alpha.resolution = blue.resolution
    alpha.band_index = 4

    qa_snow = ClassBand(
        name="qa_snow",
        product=product,
        data_type=DataType.BYTE,
        data_range=(0, 2),
        display_range=(0, 2),
        resolution=meters(60),
        band_index=5,
    )
    qa_snow.colormap_name = Colormap.MAGMA
    qa_snow.class_labels = ["none", None, "snow"]
    qa_cloud = ClassBand(
        name="qa_cloud",
        product=product,
        data_type=DataType.BYTE,
        data_range=(0, 1),
        display_range=(0, 1),
        resolution=meters(60),
        band_index=6,
    )
    qa_cloud.colormap = [(0, 0, 0, 0), (255, 255, 255, 255)]
    qa_cloud.class_labels = ["clear", "cloud"]

    ndvi = GenericBand(
        name="ndvi",
        product=product,
        data_type=DataType.UINT16,
        data_range=(0, 65535),
        display_range=(0, 65535),
        resolution=meters(10),
        band_index=0,
    )
    ndvi.physical_range = (-1.0, 1.0)
    ndvi.physical_range_unit = "index"
    ndvi.colormap_name = Colormap.VIRIDIS
    ndvi.derived_params = {"function": "ndi_uint16", "bands": ["nir", "red"], "source_type": "UInt16"}

    bands = {band.name: band for band in (blue, red, nir, vv, alpha, qa_snow, qa_cloud, ndvi)}
    for band in bands.values():
        band.save()
        assert band.id == f"{product.id}:{band.name}", f"band id {band.id!r}"
        assert band.product_id == product.id, f"{band.name}: product_id {band.product_id!r}"
    return bands


def check_attributes(product: Product, bands: dict[str, Band]) -> None:
    step("every band comes back with its class and type-specific attributes")
    blue = Band.get(bands["blue"].id)
    assert isinstance(blue, SpectralBand), f"Band.get(blue) is {type(blue).__name__}"
    assert blue.type == BandType.SPECTRAL, f"blue.type {blue.type!r}"
    assert blue.data_type == DataType.UINT16, f"blue.data_type {blue.data_type!r}"
    assert tuple(blue.data_range) == (0, 10000), f"blue.data_range {blue.data_range!r}"
    assert tuple(blue.display_range) == (0, 4000), f"blue.display_range {blue.display_range!r}"
    assert blue.resolution.value == 60 and blue.resolution.unit == ResolutionUnit.METERS, (
        f"blue.resolution {blue.resolution!r}"
    )
    assert (blue.wavelength_nm_min, blue.wavelength_nm_max, blue.wavelength_nm_center, blue.wavelength_nm_fwhm) == (
        452,
        512,
        482,
        60,
    ), "blue wavelengths"
    assert tuple(blue.physical_range) == (0.0, 1.0) and blue.physical_range_unit == "reflectance", "physical range"
    assert blue.nodata == 0, f"blue.nodata {blue.nodata!r}"
    assert blue.description == "Blue, visible light", f"blue.description {blue.description!r}"
    assert (blue.vendor_order, blue.vendor_band_name) == (2, "B2"), (
        f"vendor {blue.vendor_order} {blue.vendor_band_name}"
    )
    assert (blue.file_index, blue.jpx_layer_index) == (0, 0), (
        f"file_index / jpx_layer_index default to 0: {blue.file_index!r} / {blue.jpx_layer_index!r}"
    )
    levels = blue.processing_levels
    assert set(levels) == {"toa_reflectance", "surface"}, f"processing_levels keys {list(levels)}"
    assert levels["surface"] == "toa_reflectance", f"processing level alias {levels['surface']!r}"
    toa = list(levels["toa_reflectance"])
    assert len(toa) == 1, f"toa_reflectance steps {toa!r}"
    assert (toa[0].function, toa[0].parameter, toa[0].index) == ("linear", "reflectance_gain_bias", 0), (
        f"processing step {toa[0]!r}"
    )
    assert toa[0].data_type == DataType.FLOAT32 and tuple(toa[0].display_range) == (0.0, 0.4), (
        f"processing step {toa[0]!r}"
    )
    assert product.id == blue.product.id, "blue.product resolves to the product"

    vv = Band.get(bands["vv"].id)
    assert isinstance(vv, MicrowaveBand) and vv.type == BandType.MICROWAVE, f"vv is {type(vv).__name__}"
    assert (vv.frequency, vv.bandwidth) == (5.405, 100.0), f"vv frequency/bandwidth {vv.frequency}/{vv.bandwidth}"
    assert vv.physical_range_unit == "dB", f"vv.physical_range_unit {vv.physical_range_unit!r}"

    alpha = Band.get(bands["alpha"].id)
    assert isinstance(alpha, MaskBand) and alpha.type == BandType.MASK, f"alpha is {type(alpha).__name__}"
    assert alpha.is_alpha is True, f"alpha.is_alpha {alpha.is_alpha!r}"
    assert alpha.data_range is not None and tuple(alpha.data_range) == (0, 1), (
        f"a mask band's data_range is implicitly [0, 1], got {alpha.data_range!r}"
    )

    qa_snow = Band.get(bands["qa_snow"].id)
    assert isinstance(qa_snow, ClassBand) and qa_snow.type == BandType.CLASS, f"qa_snow is {type(qa_snow)}"
    assert qa_snow.colormap_name == Colormap.MAGMA, f"qa_snow.colormap_name {qa_snow.colormap_name!r}"
    assert list(qa_snow.class_labels) == ["none", None, "snow"], f"class_labels {qa_snow.class_labels!r}"
    qa_cloud = Band.get(bands["qa_cloud"].id)
    assert [tuple(c) for c in qa_cloud.colormap] == [(0, 0, 0, 0), (255, 255, 255, 255)], (
        f"qa_cloud.colormap {qa_cloud.colormap!r}"
    )

    ndvi = Band.get(bands["ndvi"].id)
    assert isinstance(ndvi, GenericBand) and ndvi.type == BandType.GENERIC, f"ndvi is {type(ndvi).__name__}"
    assert ndvi.colormap_name == Colormap.VIRIDIS, f"ndvi.colormap_name {ndvi.colormap_name!r}"
    derived = ndvi.derived_params
    assert derived is not None, "ndvi.derived_params missing"
    assert (derived.function, list(derived.bands), derived.source_type) == (
        "ndi_uint16",
        ["nir", "red"],
        DataType.UINT16,
    ), f"derived_params {derived!r}"


def check_type_searches(product: Product, bands: dict[str, Band]) -> None:
    step("product.bands(): default order is creation order (sort_order)")
    names = [band.name for band in product.bands()]
    assert names == list(bands), f"product.bands() order {names}, expected {list(bands)}"

    step("product.bands().filter(type == CLASS).sort('name') returns exactly the class bands")
    found = list(product.bands().filter(p.type == BandType.CLASS).sort("name"))
    assert [band.name for band in found] == ["qa_cloud", "qa_snow"], f"class bands: {[b.name for b in found]}"
    assert all(isinstance(band, ClassBand) for band in found), f"classes {[type(b).__name__ for b in found]}"
    count = product.bands().filter(p.type == BandType.CLASS).count()
    assert count == 2, f"count() of class bands: {count}"

    step("subclass searches and gets only return their own type")
    spectral = sorted(band.name for band in SpectralBand.search().filter(p.product_id == product.id))
    assert spectral == ["blue", "nir", "red"], f"SpectralBand.search(): {spectral}"
    masks = [band.name for band in MaskBand.search().filter(p.product_id == product.id)]
    assert masks == ["alpha"], f"MaskBand.search(): {masks}"
    assert SpectralBand.get(bands["alpha"].id) is None, "SpectralBand.get(<mask band id>) should be None"
    assert isinstance(MaskBand.get(bands["alpha"].id), MaskBand), "MaskBand.get(<mask band id>)"
    assert ClassBand.get(bands["blue"].id) is None, "ClassBand.get(<spectral band id>) should be None"

    step("search on type-specific attributes")
    search = SpectralBand.search().filter(p.product_id == product.id).filter(p.wavelength_nm_center > 600)
    found = [band.name for band in search.sort("name")]
    assert found == ["nir", "red"], f"wavelength_nm_center > 600: {found}"
    found = sorted(band.name for band in product.bands().filter(p.resolution > 30))
    assert found == ["alpha", "blue", "qa_cloud", "qa_snow"], f"resolution > 30 (metres): {found}"

    step("find_text on band descriptions")
    found = [band.name for band in product.bands().find_text("visible")]
    assert found == ["blue"], f"product.bands().find_text('visible'): {found}"

    step("Band.get_many returns every type")
    ids = [bands[name].id for name in ("blue", "vv", "alpha", "qa_snow", "ndvi")]
    many = Band.get_many(ids)
    assert sorted(band.id for band in many) == sorted(ids), f"get_many ids {[b.id for b in many]}"
    kinds = {band.name: type(band).__name__ for band in many}
    assert kinds == {
        "blue": "SpectralBand",
        "vv": "MicrowaveBand",
        "alpha": "MaskBand",
        "qa_snow": "ClassBand",
        "ndvi": "GenericBand",
    }, f"get_many classes {kinds}"
    with raises(NotFoundError, "Band.get_many with a missing id"):
        Band.get_many([ids[0], f"{product.id}:no-such-band"])
    partial = Band.get_many([ids[0], f"{product.id}:no-such-band"], ignore_missing=True)
    assert [band.id for band in partial] == [ids[0]], f"get_many(ignore_missing=True): {[b.id for b in partial]}"


def resolutions(product_id: str) -> tuple[float | None, float | None]:
    product = Product.get(product_id)
    low, high = product.resolution_min, product.resolution_max
    for value in (low, high):
        if value is not None:
            assert value.unit == ResolutionUnit.METERS, f"product resolution unit {value.unit!r}"
    return (low.value if low else None, high.value if high else None)


def check_update_and_delete(product: Product, bands: dict[str, Band]) -> None:
    step("product resolution_min / resolution_max are computed from the bands")
    assert resolutions(product.id) == (10, 60), f"(resolution_min, resolution_max) = {resolutions(product.id)}"
    fine = [found.id for found in Product.search().filter(p.id == product.id).filter(p.resolution_min < 15)]
    assert fine == [product.id], f"Product search resolution_min < 15 (metres): {fine}"
    coarse = [found.id for found in Product.search().filter(p.id == product.id).filter(p.resolution_max < 50)]
    assert coarse == [], f"Product search resolution_max < 50 (metres) should not match: {coarse}"

    step("band update")
    blue = SpectralBand.get(bands["blue"].id)
    before = blue.modified
    blue.display_range = (0, 5000)
    blue.description = "Blue, updated"
    blue.tags = ["updated"]
    blue.save()
    assert tuple(blue.display_range) == (0, 5000), f"display_range after save {blue.display_range!r}"
    assert blue.modified > before, "modified did not advance on band update"
    again = SpectralBand.get(blue.id)
    assert tuple(again.display_range) == (0, 5000), f"display_range not persisted: {again.display_range!r}"
    assert again.description == "Blue, updated" and list(again.tags) == ["updated"], "description/tags"
    assert again.wavelength_nm_min == 452, "an update must keep attributes it did not send"

    step("changing a band's resolution changes the product's resolution_max")
    for name in ("blue", "alpha", "qa_snow", "qa_cloud"):
        band = Band.get(bands[name].id)
        band.resolution = meters(30)
        band.save()
    assert resolutions(product.id) == (10, 30), f"after setting 60 m bands to 30 m: {resolutions(product.id)}"

    step("band delete")
    for name in ("red", "nir", "ndvi"):
        Band.get(bands[name].id).delete()
        assert Band.get(bands[name].id) is None, f"band {name} still found after delete()"
        assert Band.exists(bands[name].id) is False, f"Band.exists({name}) after delete()"
    assert Band.delete(bands["red"].id) is False, "Band.delete(id) of a deleted band should be False"
    assert resolutions(product.id) == (20, 30), f"after deleting the 10 m bands: {resolutions(product.id)}"
    names = sorted(band.name for band in product.bands())
    assert names == ["alpha", "blue", "qa_cloud", "qa_snow", "vv"], f"remaining bands {names}"


def main() -> None:
    env("COMPAT_ORG")
    product = Product(id=unique("compat-bands"), name="Compat bands product")
    product.save()
    bands = create_bands(product)
    check(check_attributes, product, bands)
    check(check_type_searches, product, bands)
    check(check_update_and_delete, product, bands)


if __name__ == "__main__":
    run(main)
