"""The web UI's upload form. It only renders the page: the browser then speaks the same uploads API the
descarteslabs client uses (JSON:API create, PUT to each resumable URL, PATCH status=pending, poll)."""

from __future__ import annotations

from django import forms

from catalogsite.choices import Action
from catalogsite.forms import DateTimeLocalField, ListField
from catalogsite.ui import restrict_form_fields
from products.models import Product


class ImageUploadForm(forms.Form):
    product = forms.ModelChoiceField(
        queryset=Product.objects.order_by("id"),
        empty_label="Choose a product…",
        help_text="Products you can add images to.",
    )
    name = forms.CharField(
        max_length=2000,
        required=False,
        label="Image name",
        help_text="Letters, digits, '-', '_', '.'. Empty: each file's name.",
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
    )
    acquired = DateTimeLocalField(label="Acquired")
    cloud_fraction = forms.FloatField(
        required=False,
        min_value=0,
        max_value=1,
        label="Cloud fraction",
        widget=forms.NumberInput(attrs={"step": "0.01", "min": "0", "max": "1"}),
        help_text="0 to 1",
    )
    tags = ListField(help_text="Comma-separated")

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        # Uploading adds an image: only products the user can change are offered.
        restrict_form_fields(self, user, Action.CHANGE)
        self.fields["product"].label_from_instance = lambda p: f"{p.name} ({p.pk})" if p.name else p.pk
