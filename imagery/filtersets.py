"""Query-parameter filters for images, shared by the API's GET collection and the UI."""

from __future__ import annotations

import django_filters
from django import forms
from django.contrib.gis.geos import Polygon

from .choices import StorageState
from .models import Image


class BBoxField(forms.CharField):
    """`minx,miny,maxx,maxy` in EPSG:4326, validated (ordered, in range)."""

    def clean(self, value):
        value = super().clean(value)
        if not value:
            return None
        try:
            minx, miny, maxx, maxy = (float(part) for part in value.split(","))
        except ValueError as exc:
            raise forms.ValidationError("bbox is minx,miny,maxx,maxy (four numbers).") from exc
        if not (-180 <= minx <= 180 and -180 <= maxx <= 180 and -90 <= miny <= maxy <= 90):
            raise forms.ValidationError("bbox must lie within [-180, -90, 180, 90] with miny <= maxy.")
        if minx > maxx:
            raise forms.ValidationError("bbox minx is larger than maxx (split boxes that cross the antimeridian).")
        return Polygon.from_bbox((minx, miny, maxx, maxy))


class BBoxFilter(django_filters.Filter):
    field_class = BBoxField

    def filter(self, qs, value):
        if value is None:
            return qs
        value.srid = 4326
        return qs.filter(geometry__intersects=value)


class ImageFilterSet(django_filters.FilterSet):
    product_id = django_filters.CharFilter(field_name="product_id")
    storage_state = django_filters.ChoiceFilter(choices=StorageState.choices)
    tags = django_filters.CharFilter(method="has_tag")
    bbox = BBoxFilter()
    acquired_after = django_filters.IsoDateTimeFilter(field_name="acquired", lookup_expr="gte")
    acquired_before = django_filters.IsoDateTimeFilter(field_name="acquired", lookup_expr="lt")

    class Meta:
        model = Image
        fields = {
            "name": ["exact", "icontains"],
            "acquired": ["gte", "lte", "gt", "lt"],
            "created": ["gte", "lte", "gt", "lt"],
            "cloud_fraction": ["gte", "lte", "gt", "lt"],
            "provider_id": ["exact"],
            "satellite_id": ["exact"],
        }

    def has_tag(self, queryset, name, value):
        return queryset.filter(tags__contains=[value])
