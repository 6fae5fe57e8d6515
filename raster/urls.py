"""Routes of the pixel service, included under /raster/v2/ (the client's DESCARTESLABS_RASTER_URL)."""

from django.urls import path, re_path

from .api.views import ImageExportView, MosaicExportView, NpzView, TileView

app_name = "raster"

urlpatterns = [
    path("npz", NpzView.as_view(), name="npz"),
    re_path(r"^images/(?P<image_id>[^/]+)\.(?P<fmt>tif|png|jpg)$", ImageExportView.as_view(), name="image_export"),
    re_path(r"^mosaic\.(?P<fmt>tif|png|jpg)$", MosaicExportView.as_view(), name="mosaic_export"),
    path("tiles/<int:z>/<int:x>/<int:y>.<str:fmt>", TileView.as_view(), name="tile"),
]
