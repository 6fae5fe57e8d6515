"""Web UI routes for products and bands (the API routes are in products/api/urls.py)."""

from django.urls import path

from . import views

app_name = "products"

urlpatterns = [
    path("products/", views.product_list, name="product_list"),
    path("products/add/", views.product_add, name="product_add"),
    path("products/<str:pk>/", views.product_detail, name="product_detail"),
    path("products/<str:pk>/edit/", views.product_edit, name="product_edit"),
    path("products/<str:pk>/delete/", views.product_delete, name="product_delete"),
    path("products/<str:pk>/delete-related/", views.product_delete_related, name="product_delete_related"),
    path("products/<str:pk>/share/", views.product_share, name="product_share"),
    path("products/<str:pk>/jobs/<str:kind>/", views.product_task, name="product_task"),
    path("products/<str:pk>/bands/add/", views.band_add, name="band_add"),
    path("products/<str:pk>/bands/add/<str:band_type>/", views.band_add, name="band_add"),
    path("bands/<str:pk>/edit/", views.band_edit, name="band_edit"),
    path("bands/<str:pk>/delete/", views.band_delete, name="band_delete"),
]
