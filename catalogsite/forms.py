"""Form fields shared by the web UI's forms: lists typed as text, [min, max] pairs, browser date-times.

The forms turn what a browser sends into the attribute values of the wire protocol; the API's serializers
then validate them, so the UI accepts exactly what the API accepts.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from django import forms

DATETIME_LOCAL_FORMAT = "%Y-%m-%dT%H:%M"
DATETIME_INPUT_FORMATS = ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d"]


class DateTimeLocalField(forms.DateTimeField):
    """A UTC date-time edited with the browser's `datetime-local` picker (naive input means UTC)."""

    widget = forms.DateTimeInput(attrs={"type": "datetime-local", "step": "60"}, format=DATETIME_LOCAL_FORMAT)

    def __init__(self, **kwargs):
        kwargs.setdefault("input_formats", DATETIME_INPUT_FORMATS)
        kwargs.setdefault("help_text", "UTC")
        super().__init__(**kwargs)


class ListField(forms.CharField):
    """A list of strings typed as text, one per line or separated by commas; duplicates are dropped."""

    widget = forms.TextInput

    def __init__(self, *, separators: str = ",\n", **kwargs):
        self.pattern = re.compile("[" + re.escape(separators) + "]")
        kwargs.setdefault("required", False)
        super().__init__(**kwargs)

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, (list, tuple)):
            joiner = "\n" if isinstance(self.widget, forms.Textarea) else ", "
            return joiner.join(str(item) for item in value)
        return value

    def to_python(self, value: Any) -> list[str]:
        if isinstance(value, (list, tuple)):
            items = [str(item).strip() for item in value]
        else:
            text = super().to_python(value) or ""
            items = [item.strip() for item in self.pattern.split(text)]
        return list(dict.fromkeys(item for item in items if item))


class RangeWidget(forms.MultiWidget):
    def __init__(self, attrs=None):
        number = {"step": "any", **(attrs or {})}
        super().__init__(
            [
                forms.NumberInput(attrs={**number, "aria-label": "minimum", "placeholder": "min"}),
                forms.NumberInput(attrs={**number, "aria-label": "maximum", "placeholder": "max"}),
            ]
        )

    def decompress(self, value):
        if value:
            return list(value)
        return [None, None]


class RangeField(forms.MultiValueField):
    """A `[min, max]` pair of numbers (data_range, display_range, physical_range), or nothing."""

    widget = RangeWidget

    def __init__(self, **kwargs):
        kwargs.setdefault("required", False)
        super().__init__(
            fields=[forms.FloatField(required=False), forms.FloatField(required=False)],
            require_all_fields=False,
            **kwargs,
        )

    def compress(self, data_list):
        if not data_list or all(value in (None, "") for value in data_list):
            return None
        if any(value in (None, "") for value in data_list):
            raise forms.ValidationError("Give both the minimum and the maximum, or neither.")
        return [float(data_list[0]), float(data_list[1])]


class JSONObjectField(forms.JSONField):
    """A JSON object typed in a text area (extra properties)."""

    def __init__(self, **kwargs):
        kwargs.setdefault("required", False)
        kwargs.setdefault("widget", forms.Textarea(attrs={"rows": 3, "class": "mono"}))
        super().__init__(**kwargs)

    def prepare_value(self, value):
        if value in (None, {}, ""):
            return ""
        return super().prepare_value(value)

    def to_python(self, value):
        value = super().to_python(value)
        if value in (None, ""):
            return None
        if not isinstance(value, dict):
            raise forms.ValidationError('Enter a JSON object, like {"key": "value"}.')
        return value


def wire_value(value: Any) -> Any:
    """A cleaned form value as it travels on the wire (timestamps as ISO 8601 strings)."""
    if isinstance(value, dt.datetime):
        return value.isoformat()
    return value
