from django.urls import path

from .views import ImageUploadViewSet, resumable_upload

app_name = "uploads-api"

urlpatterns = [
    path(
        "uploads_v2",
        ImageUploadViewSet.as_view({"get": "list", "put": "search", "post": "create"}),
        name="image_upload_list",
    ),
    path(
        "uploads_v2/<str:pk>",
        ImageUploadViewSet.as_view({"get": "retrieve", "patch": "partial_update", "delete": "destroy"}),
        name="image_upload_detail",
    ),
    # The capability URL of one file: authorized by its signed token, not by the Authorization header.
    path("uploads_v2/<str:pk>/files/<int:index>", resumable_upload, name="image_upload_file"),
]
