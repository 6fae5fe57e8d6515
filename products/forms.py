"""Web UI forms for products, bands and product sharing.

Each form converts browser input into wire attributes and validates them with the API's serializer, so a
product or band made in the browser obeys exactly the rules of one made with the descarteslabs client.
The views then hand the validated attributes to `products.services`.
"""

from __future__ import annotations

from typing import Any

from django import forms
from rest_framework import serializers

from accounts.principals import principals_for
from catalogsite.forms import DateTimeLocalField, JSONObjectField, ListField, RangeField, wire_value
from catalogsite.serializers import OWNER_PRINCIPAL_RE, PRINCIPAL_RE, principal_validator
from catalogsite.ui import add_api_errors

from .api.serializers import ALL_TYPE_FIELDS, TYPE_FIELDS, BandSerializer, ProductSerializer
from .choices import BandType, Colormap, DataType, ResolutionUnit
from .models import Band, Product

BAND_TYPE_HELP = {
    BandType.SPECTRAL: "Measurements in the visible, near-infrared or short-wave infrared spectrum.",
    BandType.MICROWAVE: "Radar or other microwave measurements.",
    BandType.MASK: "A binary band (0 or 1), for example the alpha band marking valid pixels.",
    BandType.CLASS: "Discrete classes, such as a land-cover classification.",
    BandType.GENERIC: "Any other georeferenced values.",
}

NORMALIZE_PRINCIPALS = {
    "owners": principal_validator(OWNER_PRINCIPAL_RE, "user:, org:, access-id:"),
    "writers": principal_validator(PRINCIPAL_RE, "user:, email:, group:, org:"),
    "readers": principal_validator(PRINCIPAL_RE, "user:, email:, group:, org:"),
}


class SerializerValidatedForm(forms.Form):
    """A form whose cleaned data is checked once more by an API serializer (the rules live there)."""

    serializer_class: type[serializers.Serializer]
    # Wire attribute name → form field name, for putting serializer errors on the right field.
    error_fields: dict[str, str] = {}

    def __init__(self, *args, instance=None, **kwargs):
        self.instance = instance
        self.validated_attributes: dict[str, Any] = {}
        super().__init__(*args, **kwargs)

    def attributes(self) -> dict[str, Any]:
        raise NotImplementedError

    def clean(self):
        cleaned = super().clean()
        if self.errors:
            return cleaned
        serializer = self.serializer_class(self.instance, data=self.attributes(), partial=self.instance is not None)
        if serializer.is_valid():
            self.validated_attributes = dict(serializer.validated_data)
        else:
            add_api_errors(self, serializers.ValidationError(serializer.errors), field_map=self.error_fields)
        return cleaned


class ProductForm(SerializerValidatedForm):
    serializer_class = ProductSerializer

    id = forms.CharField(
        max_length=1900,
        label="Product id",
        help_text="Letters, digits, '-', '_', '.'. Your organization's namespace is put in front of it.",
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
    )
    name = forms.CharField(max_length=2000, required=False, help_text="A human-readable title.")
    description = forms.CharField(required=False, max_length=80000, widget=forms.Textarea(attrs={"rows": 4}))
    start_datetime = DateTimeLocalField(required=False, label="Data from")
    end_datetime = DateTimeLocalField(required=False, label="Data until")
    revisit_period_minutes_min = forms.FloatField(
        required=False, min_value=0, label="Revisit period, minimum", help_text="minutes"
    )
    revisit_period_minutes_max = forms.FloatField(
        required=False, min_value=0, label="Revisit period, maximum", help_text="minutes"
    )
    default_display_bands = ListField(
        label="Default display bands", help_text="Band names, comma-separated: e.g. red, green, blue, alpha"
    )
    tags = ListField(help_text="Comma-separated")
    extra_properties = JSONObjectField(help_text="A JSON object of string keys to strings or numbers.")

    FIELDS = (
        "name",
        "description",
        "start_datetime",
        "end_datetime",
        "revisit_period_minutes_min",
        "revisit_period_minutes_max",
        "default_display_bands",
        "tags",
        "extra_properties",
    )

    def __init__(self, *args, instance: Product | None = None, namespace: str = "", **kwargs):
        if instance is not None:
            kwargs.setdefault("initial", {name: getattr(instance, name) for name in self.FIELDS})
        super().__init__(*args, instance=instance, **kwargs)
        self.namespace = namespace
        if instance is not None:
            del self.fields["id"]

    def attributes(self) -> dict[str, Any]:
        data = {name: wire_value(self.cleaned_data.get(name)) for name in self.FIELDS}
        if not data["default_display_bands"]:
            data["default_display_bands"] = None
        if data["extra_properties"] is None:
            data["extra_properties"] = {}
        if self.instance is None:
            # Leave unset attributes out of a new product, as the client does.
            data = {key: value for key, value in data.items() if value not in (None, "", [], {})}
        return data


class BandForm(SerializerValidatedForm):
    """One form for every band type; only the fields of the chosen type are kept (protocol §4.3)."""

    serializer_class = BandSerializer
    error_fields = {"resolution": "resolution_value"}

    name = forms.CharField(
        max_length=2000,
        help_text="Letters, digits, '-', '_', '.'; cannot be changed later.",
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
    )
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
    data_type = forms.ChoiceField(choices=[("", "—"), *DataType.choices], required=False, label="Data type")
    nodata = forms.FloatField(required=False, label="No-data value")
    data_range = RangeField(label="Data range")
    display_range = RangeField(label="Display range")
    resolution_value = forms.FloatField(required=False, min_value=0, label="Resolution")
    resolution_unit = forms.ChoiceField(
        choices=ResolutionUnit.choices, initial=ResolutionUnit.METERS, required=False, label="Resolution unit"
    )
    band_index = forms.IntegerField(
        required=False, min_value=0, label="Band index", help_text="0-based position of this band in its file"
    )
    file_index = forms.IntegerField(
        required=False,
        min_value=0,
        initial=0,
        label="File index",
        help_text="0-based: which file of an image holds this band",
    )
    jpx_layer_index = forms.IntegerField(required=False, min_value=0, initial=0, label="JPX layer index")
    sort_order = forms.IntegerField(required=False, label="Sort order", help_text="Empty: after the last band")
    vendor_order = forms.IntegerField(required=False, label="Vendor order")
    vendor_band_name = forms.CharField(required=False, max_length=2000, label="Vendor band name")
    tags = ListField(help_text="Comma-separated")
    # Type-specific attributes.
    physical_range = RangeField(label="Physical range")
    physical_range_unit = forms.CharField(required=False, max_length=200, label="Physical range unit")
    wavelength_nm_center = forms.FloatField(required=False, label="Wavelength center", help_text="nm")
    wavelength_nm_min = forms.FloatField(required=False, label="Wavelength minimum", help_text="nm")
    wavelength_nm_max = forms.FloatField(required=False, label="Wavelength maximum", help_text="nm")
    wavelength_nm_fwhm = forms.FloatField(required=False, label="Wavelength FWHM", help_text="nm")
    frequency = forms.FloatField(required=False, label="Frequency", help_text="GHz")
    bandwidth = forms.FloatField(required=False, label="Bandwidth", help_text="MHz")
    is_alpha = forms.BooleanField(
        required=False, label="Alpha band", help_text="Pixels with 0 in this band are transparent when rastered last."
    )
    colormap_name = forms.ChoiceField(choices=[("", "—"), *Colormap.choices], required=False, label="Colormap")
    colormap = forms.JSONField(
        required=False,
        label="Custom colormap",
        help_text="JSON list of [r, g, b, a] entries",
        widget=forms.Textarea(attrs={"rows": 3, "class": "mono"}),
    )
    class_labels = ListField(
        label="Class labels",
        separators="\n",
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text="One label per line, in class-value order",
    )

    COMMON = (
        "name",
        "description",
        "data_type",
        "nodata",
        "data_range",
        "display_range",
        "band_index",
        "file_index",
        "jpx_layer_index",
        "sort_order",
        "vendor_order",
        "vendor_band_name",
        "tags",
    )

    def __init__(self, *args, band_type: str, product: Product | None = None, instance: Band | None = None, **kwargs):
        self.band_type = band_type
        self.product = product
        if instance is not None:
            initial = {
                name: getattr(instance, name)
                for name in (*self.COMMON, *ALL_TYPE_FIELDS, "resolution_value", "resolution_unit")
            }
            kwargs.setdefault("initial", initial)
        super().__init__(*args, instance=instance, **kwargs)
        kept = set(TYPE_FIELDS[band_type])
        for name in ALL_TYPE_FIELDS:
            if name not in kept:
                del self.fields[name]
        if band_type == BandType.MASK:
            # Mask bands are binary: their ranges are always [0, 1].
            del self.fields["data_range"]
            del self.fields["display_range"]
        if instance is not None:
            del self.fields["name"]

    def type_field_names(self) -> list[str]:
        return [name for name in self.fields if name in ALL_TYPE_FIELDS]

    def attributes(self) -> dict[str, Any]:
        data = {
            name: self.cleaned_data.get(name)
            for name in self.fields
            if name not in ("resolution_value", "resolution_unit")
        }
        if self.cleaned_data.get("resolution_value") is not None:
            data["resolution"] = {
                "value": self.cleaned_data["resolution_value"],
                "unit": self.cleaned_data.get("resolution_unit") or ResolutionUnit.METERS,
            }
        else:
            data["resolution"] = None
        for key in ("file_index", "jpx_layer_index"):
            if data.get(key) is None:
                data[key] = 0
        if "is_alpha" in data and not data["is_alpha"]:
            data["is_alpha"] = None if self.instance is None else False
        if "class_labels" in data and not data["class_labels"]:
            data["class_labels"] = None
        if self.instance is not None:
            # An emptied field clears the attribute (a choice field gives "" for "none").
            data = {key: None if value == "" else value for key, value in data.items()}
        else:
            data = {key: value for key, value in data.items() if value not in (None, "", [])}
            data["type"] = self.band_type
            data["product_id"] = self.product.pk if self.product is not None else ""
        return data


class ShareForm(forms.Form):
    """The ACL editor of a product: owners, writers and readers, one principal per line (protocol §7.1)."""

    owners = ListField(
        widget=forms.Textarea(attrs={"rows": 4, "class": "mono"}),
        help_text="Can read, change, delete and share. user: or org: (org: means its admins).",
    )
    writers = ListField(
        widget=forms.Textarea(attrs={"rows": 4, "class": "mono"}),
        help_text="Can read and change attributes, and upload images.",
    )
    readers = ListField(
        widget=forms.Textarea(attrs={"rows": 4, "class": "mono"}),
        help_text="Can find and read the product, its bands and images.",
    )
    apply_to_related = forms.BooleanField(
        required=False,
        initial=True,
        label="Also apply to all bands and images of this product",
        help_text="Runs a background job; new bands and images always take the product's lists.",
    )

    def __init__(self, *args, product: Product, user, **kwargs):
        kwargs.setdefault(
            "initial",
            {
                "owners": product.owners,
                "writers": product.writers,
                "readers": product.readers,
                "apply_to_related": True,
            },
        )
        super().__init__(*args, **kwargs)
        self.product = product
        self.user = user
        self.validated_attributes: dict[str, list[str]] = {}

    def clean(self):
        cleaned = super().clean()
        if self.errors:
            return cleaned
        data = {key: cleaned.get(key) or [] for key in ("owners", "writers", "readers")}
        serializer = ProductSerializer(self.product, data=data, partial=True)
        if not serializer.is_valid():
            add_api_errors(self, serializers.ValidationError(serializer.errors))
            return cleaned
        # The serializer's validators check the principals; their normalized form (lowercase emails, groups and
        # orgs, which is how principals are matched) is what they return, so it is applied here explicitly.
        attributes = {key: NORMALIZE_PRINCIPALS[key](serializer.validated_data[key]) for key in data}
        principals = principals_for(self.user)
        if not principals.is_superuser and not set(attributes["owners"]) & principals.owner:
            self.add_error(
                "owners",
                "You would no longer be an owner of this product and could not change its "
                "sharing again: keep yourself (or your organization, as its admin) an owner.",
            )
        self.validated_attributes = attributes
        return cleaned
