"""Admin base class: the same access rule as the API for staff who are not superusers."""

from __future__ import annotations

from django.contrib import admin

from .choices import Action
from .permissions import can


class RestrictedAdmin(admin.ModelAdmin):
    """Staff see and change only what `restrict(user, action)` allows them to, exactly like API callers."""

    def get_queryset(self, request):
        return super().get_queryset(request).restrict(request.user, Action.VIEW)

    def has_view_permission(self, request, obj=None):
        if obj is None:
            return request.user.is_active and request.user.is_staff
        return can(request.user, obj, Action.VIEW)

    def has_change_permission(self, request, obj=None):
        if obj is None:
            return request.user.is_active and request.user.is_staff
        return can(request.user, obj, Action.CHANGE)

    def has_delete_permission(self, request, obj=None):
        if obj is None:
            return request.user.is_active and request.user.is_staff
        return can(request.user, obj, Action.DELETE)

    def has_add_permission(self, request):
        return request.user.is_active and request.user.is_staff

    def has_module_permission(self, request):
        return request.user.is_active and request.user.is_staff

    def get_readonly_fields(self, request, obj=None):
        fields = list(super().get_readonly_fields(request, obj))
        if obj is not None and not can(request.user, obj, Action.SHARE):
            fields += ["owners", "readers", "writers"]
        return fields
