"""Building blocks shared by the web UI views of every app.

The UI is another interface to the same services and the same access chokepoint as the API: every object a
page shows is fetched through `Model.objects.restrict(user, action)`, unreadable objects are a 404 exactly like
missing ones, and writes go through the services, whose API exceptions are turned into form errors here.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django import forms
from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.core.paginator import Page, Paginator
from django.db.models import Model, QuerySet
from django.http import Http404, HttpRequest
from rest_framework import exceptions as api_exceptions

from .choices import Action
from .permissions import can


def get_visible_or_404(queryset: QuerySet, user, pk: str, action: str = Action.VIEW) -> Model:
    """The object `pk` if `user` can read it (else 404, like a missing one) and perform `action` (else 403)."""
    obj = queryset.restrict(user, Action.VIEW).filter(pk=pk).first()
    if obj is None:
        raise Http404(f"No {queryset.model._meta.verbose_name} {pk!r} is visible to you.")
    if action != Action.VIEW and not can(user, obj, action):
        raise PermissionDenied(f"You are not allowed to {Action(action).label.lower()} {pk}.")
    return obj


def restrict_form_fields(form: forms.BaseForm, user, action: str = Action.VIEW) -> None:
    """Narrow every model choice field of `form` to what `user` may `action` (NetBox `restrict_form_fields`).

    A select box must never list, and a submitted value must never resolve to, an object the user cannot see.
    """
    for field in form.fields.values():
        queryset = getattr(field, "queryset", None)
        if queryset is not None and hasattr(queryset, "restrict"):
            field.queryset = queryset.restrict(user, action)


def paginate(request: HttpRequest, queryset: QuerySet | list, *, per_page: int | None = None) -> Page:
    """One page of `queryset`, from the `page` query parameter (out-of-range pages clamp to the last one)."""
    paginator = Paginator(queryset, per_page or settings.UI_PAGE_SIZE)
    return paginator.get_page(request.GET.get("page"))


def api_error_messages(exc: Exception) -> dict[str | None, list[str]]:
    """Messages of an API exception raised by a service or serializer, by field (None: the whole form)."""
    detail: Any = getattr(exc, "detail", str(exc))
    if isinstance(exc, api_exceptions.ValidationError) and isinstance(detail, dict):
        return {key: [str(item) for item in _flatten(value)] for key, value in detail.items()}
    return {None: [str(item) for item in _flatten(detail)]}


def _flatten(value: Any) -> Iterable[Any]:
    if isinstance(value, dict):
        for key, item in value.items():
            for message in _flatten(item):
                yield f"{key}: {message}"
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _flatten(item)
    else:
        yield value


def add_api_errors(form: forms.BaseForm, exc: Exception, *, field_map: dict[str, str] | None = None) -> None:
    """Show a service's or serializer's errors on the form, on the field they name when the form has it."""
    field_map = field_map or {}
    for key, messages in api_error_messages(exc).items():
        name = field_map.get(key, key) if key else None
        target = name if name in form.fields else None
        for message in messages:
            form.add_error(target, message if target or key in (None, "non_field_errors") else f"{key}: {message}")
