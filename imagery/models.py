"""Images: one acquisition of a product over a footprint, with its files (protocol §4.4)."""

from __future__ import annotations

from django.contrib.gis.db import models as gis_models
from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.indexes import GinIndex, GistIndex
from django.db import models

from catalogsite.models import CatalogObject
from products.models import Product

from .choices import StorageState


class Image(CatalogObject):
    """An image of a product. The footprint is stored in EPSG:4326, split at the antimeridian."""

    id = models.CharField(primary_key=True, max_length=4100)
    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="images")
    name = models.CharField(max_length=2000)
    geometry = gis_models.GeometryField(srid=4326, null=True, blank=True, spatial_index=True)
    cs_code = models.CharField(max_length=200, null=True, blank=True)
    projection = models.TextField(null=True, blank=True)
    geotrans = ArrayField(models.FloatField(), size=6, null=True, blank=True)
    x_pixels = models.IntegerField(null=True, blank=True)
    y_pixels = models.IntegerField(null=True, blank=True)
    acquired = models.DateTimeField(null=True, blank=True)
    acquired_end = models.DateTimeField(null=True, blank=True)
    published = models.DateTimeField(null=True, blank=True)
    storage_state = models.CharField(max_length=10, choices=StorageState.choices, default=StorageState.AVAILABLE)
    files = models.JSONField(default=list, blank=True)
    # Sum of files[].size_bytes, kept in a column so summaries need no JSON processing.
    size_bytes = models.BigIntegerField(default=0, editable=False)
    area = models.FloatField(null=True, blank=True)
    azimuth_angle = models.FloatField(null=True, blank=True)
    bright_fraction = models.FloatField(null=True, blank=True)
    cloud_fraction = models.FloatField(null=True, blank=True)
    alt_cloud_fraction = models.FloatField(null=True, blank=True)
    confidence_dlsr = models.FloatField(null=True, blank=True)
    fill_fraction = models.FloatField(null=True, blank=True)
    incidence_angle = models.FloatField(null=True, blank=True)
    roll_angle = models.FloatField(null=True, blank=True)
    solar_azimuth_angle = models.FloatField(null=True, blank=True)
    solar_elevation_angle = models.FloatField(null=True, blank=True)
    view_angle = models.FloatField(null=True, blank=True)
    bits_per_pixel = ArrayField(models.FloatField(), null=True, blank=True)
    reflectance_scale = ArrayField(models.FloatField(), null=True, blank=True)
    brightness_temperature_k1_k2 = models.JSONField(null=True, blank=True)
    c6s_dlsr = models.JSONField(null=True, blank=True)
    radiance_gain_bias = models.JSONField(null=True, blank=True)
    reflectance_gain_bias = models.JSONField(null=True, blank=True)
    temperature_gain_bias = models.JSONField(null=True, blank=True)
    processing_pipeline_id = models.CharField(max_length=2000, null=True, blank=True)
    satellite_id = models.CharField(max_length=2000, null=True, blank=True)
    provider_id = models.CharField(max_length=2000, null=True, blank=True)
    provider_url = models.CharField(max_length=4000, null=True, blank=True)
    preview_url = models.CharField(max_length=4000, null=True, blank=True)
    preview_file = models.CharField(max_length=4000, null=True, blank=True)

    class Meta:
        ordering = ["id"]
        constraints = [models.UniqueConstraint(fields=["product", "name"], name="image_unique_name_per_product")]
        # What the search and summary paths need (bench/README.md has the EXPLAIN ANALYZE evidence at 1M):
        # - GiST on geometry (spatial_index above) and on (product, geometry) (btree_gist): `product +
        #   intersects` is one index scan instead of a BitmapAnd with a 400k-entry product bitmap;
        # - (product, <sort field>, id) B-trees: a product's images in sort order, so a page after a
        #   keyset position `(field, id) > (v, last)` is one index range (catalogsite/pagination.py).
        #   (product, acquired, id) also INCLUDEs what summaries and the ACL filter read, so summaries
        #   and `product + date` counts are index-only scans;
        # - (product, id, acquired): the default order (id) within a product, an acquired range being an
        #   Index Cond on the entries. Without it the planner walked the primary key from the start of the
        #   catalog for `product + date range` (ids, like real scene names, embed dates);
        # - GIN on owners only (the owner-only actions). No GIN on readers/writers nor on tags: at 1M images
        #   an org member's `readers && {org:x,…}` or a common tag (`tags @> {qa:pass}`) matches most rows,
        #   and the planner, underestimating GIN bitmap costs against PostGIS's ST_Intersects cost (10000),
        #   AND-ed a 550k-630k-entry GIN bitmap into selective spatial scans (count of a 10° box: 175 ms
        #   instead of 15; polygon + cloud + tag search: 150 ms instead of 60). The ACL
        #   (catalogsite/permissions.py, unchanged) and tag filters are row filters on the rows the product,
        #   date and geometry indexes select. (Cost: a search on a rare tag alone walks the product.)
        indexes = [
            GinIndex(fields=["owners"], name="image_owners_gin"),
            GistIndex(fields=["product", "geometry"], name="image_product_geometry"),
            models.Index(
                fields=["product", "acquired", "id"],
                name="image_product_acquired_cover",
                include=["size_bytes", "owners", "readers", "writers"],
            ),
            models.Index(fields=["product", "cloud_fraction", "id"], name="image_product_cloud"),
            models.Index(fields=["product", "id", "acquired"], name="image_product_id_acquired"),
            models.Index(fields=["acquired", "id"], name="image_acquired"),
        ]

    def __str__(self) -> str:
        return self.id
