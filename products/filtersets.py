"""Query-parameter filters for products and bands, shared by the API's GET collections and the UI."""

from __future__ import annotations

import django_filters

from .choices import BandType, DataType
from .models import Band, Product


class ProductFilterSet(django_filters.FilterSet):
    q = django_filters.CharFilter(method="search", label="Text in id, name or description")
    tags = django_filters.CharFilter(field_name="tags", lookup_expr="contains", method="has_tag")
    id__startswith = django_filters.CharFilter(field_name="id", lookup_expr="startswith")

    class Meta:
        model = Product
        fields = {
            "id": ["exact"],
            "name": ["exact", "icontains"],
            "namespace": ["exact"],
            "is_core": ["exact"],
            "start_datetime": ["gte", "lte", "gt", "lt"],
            "end_datetime": ["gte", "lte", "gt", "lt"],
            "created": ["gte", "lte", "gt", "lt"],
            "modified": ["gte", "lte", "gt", "lt"],
            "product_tier": ["exact"],
        }

    def search(self, queryset, name, value):
        from django.db.models import Q

        for word in value.split()[:20]:
            queryset = queryset.filter(Q(id__icontains=word) | Q(name__icontains=word) | Q(description__icontains=word))
        return queryset

    def has_tag(self, queryset, name, value):
        return queryset.filter(tags__contains=[value])


class BandFilterSet(django_filters.FilterSet):
    product_id = django_filters.CharFilter(field_name="product_id")
    type = django_filters.ChoiceFilter(choices=BandType.choices)
    data_type = django_filters.ChoiceFilter(choices=DataType.choices)
    tags = django_filters.CharFilter(method="has_tag")

    class Meta:
        model = Band
        fields = {
            "name": ["exact", "icontains"],
            "wavelength_nm_center": ["gte", "lte"],
            "resolution_value": ["gte", "lte"],
        }

    def has_tag(self, queryset, name, value):
        return queryset.filter(tags__contains=[value])
