from django.contrib import admin, messages
from django.db import transaction

from catalogsite.admin import RestrictedAdmin
from catalogsite.choices import Action
from catalogsite.permissions import can

from . import services
from .choices import TaskKind
from .models import Band, Product, ProductTask


class BandInline(admin.TabularInline):
    model = Band
    fields = ("name", "type", "data_type", "band_index", "file_index", "sort_order")
    readonly_fields = fields
    extra = 0
    show_change_link = True
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def get_queryset(self, request):
        return super().get_queryset(request).restrict(request.user, Action.VIEW)


@admin.register(Product)
class ProductAdmin(RestrictedAdmin):
    list_display = ("id", "name", "namespace", "resolution_min_value", "start_datetime", "end_datetime", "modified")
    list_filter = ("namespace", "is_core", "product_tier", "created")
    search_fields = ("id", "name", "description")
    readonly_fields = (
        "namespace",
        "resolution_min_value",
        "resolution_min_unit",
        "resolution_max_value",
        "resolution_max_unit",
        "created",
        "modified",
    )
    inlines = [BandInline]
    actions = ["reapply_acls"]

    def get_readonly_fields(self, request, obj=None):
        fields = list(super().get_readonly_fields(request, obj))
        if obj is not None:
            fields.append("id")
        return fields

    def save_model(self, request, obj, form, change):
        if change:
            # Update the stored row through the service so ACL changes reach the inheriting bands and images.
            stored = Product.objects.select_for_update().get(pk=obj.pk)
            services.product_update(
                product=stored, attributes={name: getattr(obj, name) for name in form.changed_data}, user=request.user
            )
            return
        attributes = {name: form.cleaned_data[name] for name in form.cleaned_data if name != "id"}
        created = services.product_create(user=request.user, requested_id=obj.id, attributes=attributes)
        obj.pk = created.pk
        obj.id = created.id

    def delete_model(self, request, obj):
        services.product_delete(product=obj)

    @admin.action(description="Re-apply product ACLs to all its bands and images")
    def reapply_acls(self, request, queryset):
        started = 0
        for product in queryset:
            if not can(request.user, product, Action.SHARE):
                continue
            with transaction.atomic():
                if services.product_task_start(
                    user=request.user,
                    product=product,
                    kind=TaskKind.UPDATE_ACLS,
                    parameters={"inherit": True, "owners": None, "readers": None, "writers": None},
                ):
                    started += 1
        messages.info(request, f"Started ACL propagation for {started} product(s).")


@admin.register(Band)
class BandAdmin(RestrictedAdmin):
    list_display = ("id", "product", "type", "data_type", "band_index", "file_index", "sort_order")
    list_filter = ("type", "data_type", "resolution_unit")
    search_fields = ("id", "name", "description")
    readonly_fields = ("id", "product", "created", "modified")
    list_select_related = ("product",)

    def has_add_permission(self, request):
        # Bands are created through the API or the UI, which check the product is writable.
        return False


@admin.register(ProductTask)
class ProductTaskAdmin(admin.ModelAdmin):
    list_display = ("product", "kind", "status", "objects_done", "start_datetime", "end_datetime")
    list_filter = ("kind", "status")
    search_fields = ("product__id",)
    list_select_related = ("product",)
    readonly_fields = [f.name for f in ProductTask._meta.fields]

    def get_queryset(self, request):
        from .models import Product as ProductModel

        visible = ProductModel.objects.restrict(request.user, Action.VIEW).values("pk")
        return super().get_queryset(request).filter(product__in=visible)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
