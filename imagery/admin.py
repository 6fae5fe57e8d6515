from django.contrib import admin

from catalogsite.admin import RestrictedAdmin

from .models import Image


@admin.register(Image)
class ImageAdmin(RestrictedAdmin):
    list_display = ("id", "product", "acquired", "storage_state", "cloud_fraction", "size_bytes", "modified")
    list_filter = ("storage_state", "acquired", "product__namespace")
    search_fields = ("id", "name", "provider_id")
    readonly_fields = ("id", "product", "size_bytes", "created", "modified")
    list_select_related = ("product",)
    # Exact count on a million-image table makes every admin page slow; estimate instead.
    show_full_result_count = False

    def has_add_permission(self, request):
        # Images are created by upload or through the API, which check the product is writable.
        return False
