from django.urls import path

from .views import BandViewSet, DeleteRelatedViewSet, DerivedBandViewSet, ProductViewSet, UpdateAclsViewSet

app_name = "products-api"

collection = {"get": "list", "put": "search", "post": "create"}
item = {"get": "retrieve", "patch": "partial_update", "delete": "destroy"}

urlpatterns = [
    path(
        "products/<str:pk>/delete_related_objects",
        DeleteRelatedViewSet.as_view({"post": "start", "get": "status"}),
        name="product_delete_related",
    ),
    path(
        "products/<str:pk>/update_related_objects_acls",
        UpdateAclsViewSet.as_view({"post": "start", "get": "status"}),
        name="product_update_acls",
    ),
    path(
        "products/<str:pk>/relationships/derived_bands",
        DerivedBandViewSet.as_view({"put": "search", "get": "search"}),
        name="product_derived_bands",
    ),
    path("products", ProductViewSet.as_view(collection), name="product_list"),
    path("products/<str:pk>", ProductViewSet.as_view(item), name="product_detail"),
    path("bands", BandViewSet.as_view(collection), name="band_list"),
    path("bands/<str:pk>", BandViewSet.as_view(item), name="band_detail"),
    path("derived_bands", DerivedBandViewSet.as_view({"get": "list", "put": "search"}), name="derived_band_list"),
    path("derived_bands/<str:pk>", DerivedBandViewSet.as_view({"get": "retrieve"}), name="derived_band_detail"),
]
