"""Admin for uploads: the same visibility as the API, status filters, the event log inline, cancel/retry."""

from __future__ import annotations

from django.contrib import admin, messages

from catalogsite.choices import Action
from catalogsite.jsonapi import Conflict

from . import services
from .models import ImageUpload, ImageUploadEvent, ImageUploadFile, ReaperState


class ImageUploadEventInline(admin.TabularInline):
    model = ImageUploadEvent
    extra = 0
    can_delete = False
    fields = ("event_datetime", "event_type", "severity", "component", "component_id", "message")
    readonly_fields = fields
    ordering = ("id",)

    def has_add_permission(self, request, obj=None):
        return False


class ImageUploadFileInline(admin.TabularInline):
    model = ImageUploadFile
    extra = 0
    can_delete = False
    fields = ("index", "original_name", "size_bytes", "sha256", "received_at", "staging_deleted_at")
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(ImageUpload)
class ImageUploadAdmin(admin.ModelAdmin):
    """Uploads are created only through the API; staff can watch them, cancel them and retry failures."""

    list_display = ("id", "image_id", "status", "upload_type", "attempts", "user_namespace", "created", "finished_at")
    list_filter = ("status", "upload_type", "created", "product__namespace")
    search_fields = ("id", "image_id", "user_namespace")
    list_select_related = ("product",)
    readonly_fields = [field.name for field in ImageUpload._meta.fields]
    inlines = [ImageUploadFileInline, ImageUploadEventInline]
    actions = ["cancel_uploads", "retry_uploads"]
    show_full_result_count = False

    def get_queryset(self, request):
        return super().get_queryset(request).restrict(request.user, Action.VIEW)

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        # Fields are read-only; "change" permission is what admin actions need.
        return request.user.is_active and request.user.is_staff

    @admin.action(description="Cancel selected uploads (transferring or pending)")
    def cancel_uploads(self, request, queryset):
        self._apply(request, queryset, services.image_upload_cancel, "canceled")

    @admin.action(description="Retry selected failed uploads")
    def retry_uploads(self, request, queryset):
        self._apply(request, queryset, services.image_upload_retry, "re-enqueued")

    def _apply(self, request, queryset, action, verb: str) -> None:
        done, refused = 0, []
        for upload in queryset:
            try:
                action(upload=upload)
                done += 1
            except Conflict as exc:
                refused.append(str(exc.detail))
        if done:
            self.message_user(request, f"{done} upload(s) {verb}.", messages.SUCCESS)
        for message in refused:
            self.message_user(request, message, messages.WARNING)


class _ReadOnlyAdmin(admin.ModelAdmin):
    """Rows written only by the services (event log, staging files, reaper state): looked at, never edited."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(ImageUploadEvent)
class ImageUploadEventAdmin(_ReadOnlyAdmin):
    """All upload events, to find failures across uploads (e.g. every ERROR of the ingest in the last day)."""

    list_display = ("event_datetime", "upload", "event_type", "severity", "component", "message")
    list_filter = ("severity", "event_type", "component", "event_datetime")
    search_fields = ("upload__id", "upload__image_id", "message")
    list_select_related = ("upload",)
    show_full_result_count = False

    def get_queryset(self, request):
        visible = ImageUpload.objects.restrict(request.user, Action.VIEW).values("pk")
        return super().get_queryset(request).filter(upload__in=visible)


@admin.register(ImageUploadFile)
class ImageUploadFileAdmin(_ReadOnlyAdmin):
    list_display = ("upload", "index", "original_name", "size_bytes", "sha256", "received_at", "staging_deleted_at")
    list_filter = (("received_at", admin.EmptyFieldListFilter), ("staging_deleted_at", admin.EmptyFieldListFilter))
    search_fields = ("upload__id", "original_name", "sha256")
    list_select_related = ("upload",)

    def get_queryset(self, request):
        visible = ImageUpload.objects.restrict(request.user, Action.VIEW).values("pk")
        return super().get_queryset(request).filter(upload__in=visible)


@admin.register(ReaperState)
class ReaperStateAdmin(_ReadOnlyAdmin):
    list_display = ("id", "chain_id", "last_run_at", "next_run_at")

    def has_module_permission(self, request):
        return request.user.is_active and request.user.is_superuser
