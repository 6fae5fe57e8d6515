"""Web UI routes for uploads (the API routes are in uploads/api/urls.py)."""

from django.urls import path

from . import views

app_name = "uploads"

urlpatterns = [
    path("uploads/", views.image_upload_list, name="image_upload_list"),
    path("uploads/add/", views.image_upload_add, name="image_upload_add"),
    path("uploads/<str:pk>/", views.image_upload_detail, name="image_upload_detail"),
    path("uploads/<str:pk>/live/", views.image_upload_events, name="image_upload_events"),
    path("uploads/<str:pk>/cancel/", views.image_upload_cancel, name="image_upload_cancel"),
]
