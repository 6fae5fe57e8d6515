from django.apps import AppConfig


class RasterConfig(AppConfig):
    """The pixel service (Raster v2, exports, XYZ tiles): no models, its own URL root `/raster/v2`."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "raster"
    verbose_name = "Raster"
