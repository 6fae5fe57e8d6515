"""Query-parameter filters for image uploads (the web UI's uploads list)."""

from __future__ import annotations

import django_filters

from catalogsite.choices import Action
from products.models import Product

from .choices import ImageUploadStatus
from .models import ImageUpload


def visible_products(request):
    """The product filter offers, and accepts, only products the caller can read."""
    user = getattr(request, "user", None)
    return Product.objects.restrict(user, Action.VIEW).order_by("id")


class ImageUploadFilterSet(django_filters.FilterSet):
    product = django_filters.ModelChoiceFilter(queryset=visible_products, label="Product", empty_label="All products")
    status = django_filters.ChoiceFilter(choices=ImageUploadStatus.choices, empty_label="Any status")
    created_after = django_filters.DateFilter(field_name="created", lookup_expr="date__gte", label="From")
    created_before = django_filters.DateFilter(field_name="created", lookup_expr="date__lte", label="Until")
    image_id = django_filters.CharFilter(field_name="image_id", lookup_expr="icontains", label="Image contains")

    class Meta:
        model = ImageUpload
        fields = ["product", "status", "created_after", "created_before", "image_id"]
