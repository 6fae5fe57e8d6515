"""Products (collections of images sharing a band structure) and their declared bands (protocol §4.2–4.3)."""

from __future__ import annotations

from django.contrib.postgres.fields import ArrayField
from django.db import models

from catalogsite.models import CatalogObject

from .choices import BandType, DataType, ResolutionUnit, TaskKind, TaskState


class Product(CatalogObject):
    """A collection of images. `id` is `<namespace>:<user id>`, the namespace being the creator's org."""

    id = models.CharField(primary_key=True, max_length=2000)
    namespace = models.CharField(max_length=200, db_index=True, editable=False)
    name = models.CharField(max_length=2000, blank=True, default="")
    description = models.TextField(max_length=80000, blank=True, null=True)
    is_core = models.BooleanField(null=True, blank=True)
    revisit_period_minutes_min = models.FloatField(null=True, blank=True)
    revisit_period_minutes_max = models.FloatField(null=True, blank=True)
    start_datetime = models.DateTimeField(null=True, blank=True)
    end_datetime = models.DateTimeField(null=True, blank=True)
    default_display_bands = ArrayField(models.CharField(max_length=2000), null=True, blank=True)
    image_index_name = models.CharField(max_length=2000, null=True, blank=True)
    product_tier = models.CharField(max_length=200, null=True, blank=True)
    # Computed from the bands on every band write (protocol: read-only, number filters mean metres).
    resolution_min_value = models.FloatField(null=True, blank=True, editable=False)
    resolution_min_unit = models.CharField(
        max_length=10, choices=ResolutionUnit.choices, null=True, blank=True, editable=False
    )
    resolution_max_value = models.FloatField(null=True, blank=True, editable=False)
    resolution_max_unit = models.CharField(
        max_length=10, choices=ResolutionUnit.choices, null=True, blank=True, editable=False
    )

    class Meta:
        ordering = ["id"]
        indexes = CatalogObject.acl_indexes("product")

    def __str__(self) -> str:
        return self.id


class Band(CatalogObject):
    """One declared band of a product; all five band types share this table, `type` says which."""

    id = models.CharField(primary_key=True, max_length=4100)
    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="bands")
    name = models.CharField(max_length=2000)
    description = models.TextField(null=True, blank=True)
    type = models.CharField(max_length=20, choices=BandType.choices)
    sort_order = models.IntegerField(null=True, blank=True)
    vendor_order = models.IntegerField(null=True, blank=True)
    data_type = models.CharField(max_length=10, choices=DataType.choices, null=True, blank=True)
    nodata = models.FloatField(null=True, blank=True)
    data_range = ArrayField(models.FloatField(), size=2, null=True, blank=True)
    display_range = ArrayField(models.FloatField(), size=2, null=True, blank=True)
    resolution_value = models.FloatField(null=True, blank=True)
    resolution_unit = models.CharField(max_length=10, choices=ResolutionUnit.choices, null=True, blank=True)
    band_index = models.IntegerField(null=True, blank=True)
    file_index = models.IntegerField(default=0)
    jpx_layer_index = models.IntegerField(default=0)
    vendor_band_name = models.CharField(max_length=2000, null=True, blank=True)
    processing_levels = models.JSONField(null=True, blank=True)
    derived_params = models.JSONField(null=True, blank=True)
    # Type-specific attributes (only serialized for the types that have them).
    physical_range = ArrayField(models.FloatField(), size=2, null=True, blank=True)
    physical_range_unit = models.CharField(max_length=200, null=True, blank=True)
    wavelength_nm_center = models.FloatField(null=True, blank=True)
    wavelength_nm_min = models.FloatField(null=True, blank=True)
    wavelength_nm_max = models.FloatField(null=True, blank=True)
    wavelength_nm_fwhm = models.FloatField(null=True, blank=True)
    frequency = models.FloatField(null=True, blank=True)
    bandwidth = models.FloatField(null=True, blank=True)
    is_alpha = models.BooleanField(null=True, blank=True)
    colormap_name = models.CharField(max_length=20, null=True, blank=True)
    colormap = models.JSONField(null=True, blank=True)
    class_labels = models.JSONField(null=True, blank=True)

    class Meta:
        ordering = ["product_id", "sort_order", "name"]
        constraints = [models.UniqueConstraint(fields=["product", "name"], name="band_unique_name_per_product")]
        indexes = [*CatalogObject.acl_indexes("band"), models.Index(fields=["product", "sort_order"])]

    def __str__(self) -> str:
        return self.id


class ProductTask(models.Model):
    """State of the latest asynchronous job of a kind on a product (delete related objects, update ACLs)."""

    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="tasks")
    kind = models.CharField(max_length=40, choices=TaskKind.choices)
    status = models.CharField(max_length=10, choices=TaskState.choices, default=TaskState.RUNNING)
    parameters = models.JSONField(default=dict, blank=True)
    requested_by = models.ForeignKey("accounts.User", null=True, on_delete=models.SET_NULL, related_name="+")
    start_datetime = models.DateTimeField(auto_now_add=True)
    end_datetime = models.DateTimeField(null=True, blank=True)
    objects_done = models.IntegerField(default=0)
    errors = models.JSONField(default=list, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["product", "kind"], name="one_task_state_per_kind")]

    def __str__(self) -> str:
        return f"{self.kind} {self.product_id} {self.status}"
