"""Web UI routes for images (the API routes are in imagery/api/urls.py)."""

from django.urls import path

from . import views

app_name = "imagery"

urlpatterns = [
    path("images/footprints.geojson", views.image_footprints, name="image_footprints"),
    path("images/<str:pk>/", views.image_detail, name="image_detail"),
    path("images/<str:pk>/preview.png", views.image_preview, name="image_preview"),
    path("images/<str:pk>/files/<int:index>/", views.image_file, name="image_file"),
]
