from django.urls import path

from .views import ImageViewSet

app_name = "imagery-api"

urlpatterns = [
    path("images/summary/all", ImageViewSet.as_view({"put": "summary", "post": "summary"}), name="image_summary"),
    path(
        "images/summary/<str:date_field>/<str:interval>",
        ImageViewSet.as_view({"put": "summary_interval", "post": "summary_interval"}),
        name="image_summary_interval",
    ),
    path("images", ImageViewSet.as_view({"get": "list", "put": "search", "post": "create"}), name="image_list"),
    path(
        "images/<str:pk>",
        ImageViewSet.as_view({"get": "retrieve", "patch": "partial_update", "delete": "destroy"}),
        name="image_detail",
    ),
]
