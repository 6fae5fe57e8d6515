"""Web UI pages for products and bands: browse, create, edit, delete, share, and the related-objects jobs.

Views stay thin: they fetch through `restrict(user, action)` (unreadable → 404, readable but not allowed →
403), validate with the forms (which use the API's serializers) and write through `products.services`.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST
from rest_framework.exceptions import APIException

from accounts.models import Group, User
from accounts.principals import principals_for
from catalogsite.choices import Action
from catalogsite.forms import DATETIME_LOCAL_FORMAT
from catalogsite.permissions import can, visible_acl
from catalogsite.ui import add_api_errors, get_visible_or_404, paginate
from imagery.filtersets import ImageFilterSet
from imagery.models import Image
from raster.tiles import tile_url_template
from uploads.models import ImageUpload

from . import services
from .choices import BandType, TaskKind, TaskState
from .derived import DERIVED_BANDS
from .filtersets import ProductFilterSet
from .forms import BAND_TYPE_HELP, BandForm, ProductForm, ShareForm
from .models import Band, Product, ProductTask
from .selectors import product_object_counts

PRODUCT_SORTS = {"id": "id", "name": "name", "-modified": "-modified", "-created": "-created"}
PRODUCT_FILTERS = ("q", "tags", "namespace")
IMAGE_FILTERS = ("name__icontains", "acquired_after", "acquired_before", "cloud_fraction__lte", "tags", "storage_state")
IMAGE_SORTS = {
    "-acquired": ("-acquired", "id"),
    "acquired": ("acquired", "id"),
    "name": ("name",),
    "cloud_fraction": ("cloud_fraction", "id"),
}


def prepare_filter_form(filterset, names: tuple[str, ...]) -> list:
    """The bound fields of a shared FilterSet that the page shows, with browser-friendly widgets."""
    form = filterset.form
    for name in names:
        field = form.fields[name]
        if name.startswith("acquired_"):
            field.widget.input_type = "datetime-local"
            field.widget.format = DATETIME_LOCAL_FORMAT
        elif name == "cloud_fraction__lte":
            field.widget.input_type = "number"
            field.widget.attrs.update({"step": "0.05", "min": "0", "max": "1"})
        elif name == "storage_state":
            field.widget.choices = [("", "Any"), *[choice for choice in field.widget.choices if choice[0] != ""]]
    labels = {
        "q": "Search",
        "tags": "Tag",
        "namespace": "Namespace",
        "name__icontains": "Name contains",
        "acquired_after": "Acquired from",
        "acquired_before": "Acquired before",
        "cloud_fraction__lte": "Max cloud fraction",
        "storage_state": "Storage",
    }
    for name in names:
        form.fields[name].label = labels.get(name, form.fields[name].label)
        form.fields[name].required = False
    return [form[name] for name in names]


# ---- products ---------------------------------------------------------------------------------------------
@login_required
def product_list(request: HttpRequest) -> HttpResponse:
    """Products the user can read, searched and filtered with the API's ProductFilterSet."""
    queryset = Product.objects.restrict(request.user, Action.VIEW)
    namespaces = sorted(set(queryset.order_by().values_list("namespace", flat=True).distinct()))
    filterset = ProductFilterSet(request.GET, queryset=queryset, request=request)
    fields = prepare_filter_form(filterset, PRODUCT_FILTERS)
    sort = request.GET.get("sort") if request.GET.get("sort") in PRODUCT_SORTS else "id"
    products = filterset.qs.order_by(PRODUCT_SORTS[sort]) if filterset.is_valid() else queryset.none()
    page = paginate(request, products)
    counts = product_object_counts(user=request.user, product_ids=[p.pk for p in page])
    context = {
        "page": page,
        "rows": [(product, counts[product.pk]) for product in page],
        "filter_fields": fields,
        "filter_errors": filterset.errors if request.GET else {},
        "namespaces": namespaces,
        "sort": sort,
        "sorts": [("id", "Id"), ("name", "Name"), ("-modified", "Recently modified"), ("-created", "Newest")],
        "filtered": any(request.GET.get(name) for name in PRODUCT_FILTERS),
    }
    return render(request, "products/product_list.html", context)


def _image_filterset(request: HttpRequest, product: Product) -> ImageFilterSet:
    queryset = Image.objects.restrict(request.user, Action.VIEW).filter(product=product)
    return ImageFilterSet(request.GET, queryset=queryset, request=request)


def _running_task(product: Product, kind: str) -> ProductTask | None:
    return ProductTask.objects.filter(product=product, kind=kind).first()


@login_required
def product_detail(request: HttpRequest, pk: str) -> HttpResponse:
    """Attributes, bands by type, applicable derived bands, filtered images and their footprints on a map."""
    user = request.user
    product = get_visible_or_404(Product.objects, user, pk)
    bands = list(Band.objects.restrict(user, Action.VIEW).filter(product=product).order_by("sort_order", "name"))
    bands_by_type = [
        (band_type, label, [band for band in bands if band.type == band_type]) for band_type, label in BandType.choices
    ]
    names = {band.name for band in bands}
    filterset = _image_filterset(request, product)
    image_fields = prepare_filter_form(filterset, IMAGE_FILTERS)
    sort = request.GET.get("sort") if request.GET.get("sort") in IMAGE_SORTS else "-acquired"
    images = filterset.qs.order_by(*IMAGE_SORTS[sort]) if filterset.is_valid() else filterset.queryset.none()
    page = paginate(request, images)
    query = request.GET.copy()
    query.pop("page", None)
    query.pop("sort", None)
    query["product_id"] = product.pk
    tasks = {task.kind: task for task in ProductTask.objects.filter(product=product)}
    _, labels = principal_choices(user)
    context = {
        "product": product,
        "bands_by_type": [entry for entry in bands_by_type if entry[2]],
        "band_count": len(bands),
        "band_types": BandType.choices,
        "derived_bands": [band for band in DERIVED_BANDS if band.applies_to(names)],
        "page": page,
        "image_fields": image_fields,
        "image_filter_errors": filterset.errors if request.GET else {},
        "image_sort": sort,
        "image_sorts": [
            ("-acquired", "Newest acquired"),
            ("acquired", "Oldest acquired"),
            ("name", "Name"),
            ("cloud_fraction", "Least cloudy"),
        ],
        "images_filtered": any(request.GET.get(name) for name in IMAGE_FILTERS),
        "footprints_url": f"{reverse('imagery:image_footprints')}?{query.urlencode()}",
        "tiles_url": tile_url_template(
            product=product.pk,
            **{
                key: value
                for key, value in request.GET.items()
                if key in ImageFilterSet.base_filters and key != "product_id" and value
            },
        )
        if bands
        else "",
        "can_change": can(user, product, Action.CHANGE),
        "can_share": can(user, product, Action.SHARE),
        "can_delete": can(user, product, Action.DELETE),
        "acl": {
            field: [(value, labels.get(value, "")) for value in visible_acl(user, product, field)]
            for field in ("owners", "writers", "readers")
        },
        "acl_task": tasks.get(TaskKind.UPDATE_ACLS),
        "delete_task": tasks.get(TaskKind.DELETE_RELATED),
        "uploads_count": ImageUpload.objects.restrict(user, Action.VIEW).filter(product=product).count(),
    }
    return render(request, "products/product_detail.html", context)


def _redirect_if_moved(request: HttpRequest, product: Product) -> None:
    """After a write the object must still be inside the caller's restricted set (conventions §3)."""
    if not Product.objects.restrict(request.user, Action.VIEW).filter(pk=product.pk).exists():
        raise PermissionDenied("The change would hide the product from you; it was not saved.")


@login_required
def product_add(request: HttpRequest) -> HttpResponse:
    namespace = principals_for(request.user).organization or principals_for(request.user).namespace
    form = ProductForm(request.POST or None, namespace=namespace)
    if request.method == "POST" and form.is_valid():
        try:
            with transaction.atomic():
                product = services.product_create(
                    user=request.user, requested_id=form.cleaned_data["id"], attributes=form.validated_attributes
                )
                _redirect_if_moved(request, product)
        except APIException as exc:
            # The service refuses only because of the id (malformed, taken, another namespace).
            form.add_error("id", str(exc.detail))
        else:
            messages.success(request, f"Product {product.pk} created. Next, declare its bands.")
            return redirect("products:product_detail", pk=product.pk)
    return render(request, "products/product_form.html", {"form": form, "namespace": namespace})


@login_required
def product_edit(request: HttpRequest, pk: str) -> HttpResponse:
    product = get_visible_or_404(Product.objects, request.user, pk, Action.CHANGE)
    form = ProductForm(request.POST or None, instance=product)
    if request.method == "POST" and form.is_valid():
        try:
            with transaction.atomic():
                locked = Product.objects.select_for_update().get(pk=product.pk)
                services.product_update(product=locked, attributes=form.validated_attributes)
                _redirect_if_moved(request, locked)
        except APIException as exc:
            add_api_errors(form, exc)
        else:
            messages.success(request, "Product saved.")
            return redirect("products:product_detail", pk=product.pk)
    return render(request, "products/product_form.html", {"form": form, "product": product})


def _related_counts(product: Product) -> tuple[int, int]:
    return Band.objects.filter(product=product).count(), Image.objects.filter(product=product).count()


@login_required
def product_delete(request: HttpRequest, pk: str) -> HttpResponse:
    """Delete an empty product; a product with bands or images is explained (the API's 409) with a way out."""
    product = get_visible_or_404(Product.objects, request.user, pk, Action.DELETE)
    conflict = ""
    if request.method == "POST":
        try:
            with transaction.atomic():
                services.product_delete(product=Product.objects.select_for_update().get(pk=product.pk))
        except APIException as exc:
            conflict = str(exc.detail)
        else:
            messages.success(request, f"Product {pk} deleted.")
            return redirect("products:product_list")
    bands, images = _related_counts(product)
    context = {
        "product": product,
        "bands": bands,
        "images": images,
        "conflict": conflict,
        "task": _running_task(product, TaskKind.DELETE_RELATED),
    }
    return render(request, "products/product_delete.html", context, status=409 if conflict else 200)


@login_required
@require_POST
def product_delete_related(request: HttpRequest, pk: str) -> HttpResponse:
    """Start the delete_related_objects job (the client's `delete_related_objects()`); progress is polled."""
    try:
        with transaction.atomic():
            product = get_visible_or_404(Product.objects.select_for_update(), request.user, pk, Action.DELETE)
            task = services.product_task_start(
                user=request.user, product=product, kind=TaskKind.DELETE_RELATED, parameters={}
            )
    except APIException as exc:
        messages.warning(request, str(exc.detail))
    else:
        if task is None:
            messages.info(request, "The product has no bands or images left.")
        else:
            messages.info(request, "Deleting all bands and images in the background.")
    return redirect("products:product_delete", pk=pk)


@login_required
def product_task(request: HttpRequest, pk: str, kind: str) -> JsonResponse:
    """Progress of a product job as JSON, polled by the progress bars (same state as the API's task status)."""
    if kind not in TaskKind.values:
        raise Http404("Unknown job.")
    action = Action.DELETE if kind == TaskKind.DELETE_RELATED else Action.SHARE
    product = get_visible_or_404(Product.objects, request.user, pk, action)
    task = _running_task(product, kind)
    bands, images = _related_counts(product)
    if task is None:
        return JsonResponse({"status": TaskState.NONE, "objects_done": 0, "remaining": bands + images})
    if kind == TaskKind.DELETE_RELATED:
        remaining = bands + images if task.status == TaskState.RUNNING else 0
        if task.status == TaskState.FAILURE:
            remaining = bands + images
    else:
        remaining = max(bands + images - task.objects_done, 0) if task.status == TaskState.RUNNING else 0
    total = task.objects_done + remaining
    return JsonResponse(
        {
            "status": task.status,
            "objects_done": task.objects_done,
            "remaining": remaining,
            "percent": 100 if total == 0 else round(100 * task.objects_done / total),
            "errors": task.errors or [],
            "related_left": bands + images,
        }
    )


def principal_choices(user) -> tuple[list[tuple[str, list[tuple[str, str]]]], dict[str, str]]:
    """What the principal picker offers, and short names for showing principals as chips.

    Only the caller's own organization, its groups and its members are listed; other principals (another
    organization, an email address) are typed, so the page never reveals who exists elsewhere.
    """
    principals = principals_for(user)
    groups: list[tuple[str, str]] = []
    users: list[tuple[str, str]] = []
    org: list[tuple[str, str]] = []
    names: dict[str, str] = {}
    if principals.organization:
        value = f"org:{principals.organization}"
        org.append((value, f"Everyone in {principals.organization} (as owner: its admins)"))
        names[value] = value
        for group in Group.objects.filter(organization__slug=principals.organization).order_by("name"):
            value = f"group:{group.qualified_name}"
            groups.append((value, f"Group {group.qualified_name}"))
            names[value] = f"group {group.name}"
        members = User.objects.filter(membership__organization__slug=principals.organization, is_active=True)
    else:
        members = User.objects.filter(pk=user.pk)
    for member in members.order_by("username"):
        value = f"user:{member.namespace}"
        users.append((value, f"{member.username} ({member.email})" if member.email else member.username))
        names[value] = member.username
    return [("Organization", org), ("Groups", groups), ("Users", users)], names


@login_required
def product_share(request: HttpRequest, pk: str) -> HttpResponse:
    """The ACL editor: owners only (protocol §7.1); optionally re-applies the lists to bands and images."""
    product = get_visible_or_404(Product.objects, request.user, pk, Action.SHARE)
    form = ShareForm(request.POST or None, product=product, user=request.user)
    if request.method == "POST" and form.is_valid():
        started = None
        try:
            with transaction.atomic():
                locked = get_visible_or_404(Product.objects.select_for_update(), request.user, pk, Action.SHARE)
                services.product_update(product=locked, attributes=dict(form.validated_attributes))
                _redirect_if_moved(request, locked)
                if form.cleaned_data["apply_to_related"]:
                    started = services.product_task_start(
                        user=request.user,
                        product=locked,
                        kind=TaskKind.UPDATE_ACLS,
                        parameters={"inherit": True, "owners": None, "readers": None, "writers": None},
                    )
        except APIException as exc:
            add_api_errors(form, exc)
        else:
            note = " Applying them to all bands and images in the background." if started else ""
            messages.success(request, f"Sharing of {product.pk} saved.{note}")
            return redirect("products:product_detail", pk=product.pk)
    choices, labels = principal_choices(request.user)
    current = [
        (field, [(value, labels.get(value, "")) for value in getattr(product, field)])
        for field in ("owners", "writers", "readers")
    ]
    context = {"product": product, "form": form, "principal_choices": choices, "current": current}
    return render(request, "products/product_share.html", context)


# ---- bands ------------------------------------------------------------------------------------------------
@login_required
def band_add(request: HttpRequest, pk: str, band_type: str | None = None) -> HttpResponse:
    """Declare a band of one type; the form holds only that type's attributes."""
    product = get_visible_or_404(Product.objects, request.user, pk, Action.CHANGE)
    if band_type is None:
        types = [(value, label, BAND_TYPE_HELP[value]) for value, label in BandType.choices]
        return render(request, "products/band_type_choose.html", {"product": product, "types": types})
    if band_type not in BandType.values:
        raise Http404("Unknown band type.")
    form = BandForm(request.POST or None, band_type=band_type, product=product)
    if request.method == "POST" and form.is_valid():
        try:
            with transaction.atomic():
                band = services.band_create(user=request.user, attributes=dict(form.validated_attributes))
                if not Band.objects.restrict(request.user, Action.VIEW).filter(pk=band.pk).exists():
                    raise PermissionDenied("The band would not be visible to you; it was not created.")
        except APIException as exc:
            add_api_errors(form, exc, field_map={"resolution": "resolution_value"})
            if not form.errors:
                form.add_error(None, str(exc.detail))
        else:
            messages.success(request, f"{BandType(band_type).label} band {band.name} added.")
            return redirect(f"{reverse('products:product_detail', kwargs={'pk': product.pk})}#bands")
    context = {
        "product": product,
        "form": form,
        "band_type": band_type,
        "band_type_label": BandType(band_type).label,
        "type_help": BAND_TYPE_HELP[band_type],
    }
    return render(request, "products/band_form.html", context)


@login_required
def band_edit(request: HttpRequest, pk: str) -> HttpResponse:
    band = get_visible_or_404(Band.objects.select_related("product"), request.user, pk, Action.CHANGE)
    form = BandForm(request.POST or None, band_type=band.type, instance=band)
    if request.method == "POST" and form.is_valid():
        try:
            with transaction.atomic():
                locked = Band.objects.select_for_update().select_related("product").get(pk=band.pk)
                services.band_update(band=locked, attributes=dict(form.validated_attributes))
        except APIException as exc:
            add_api_errors(form, exc, field_map={"resolution": "resolution_value"})
        else:
            messages.success(request, f"Band {band.name} saved.")
            return redirect(f"{reverse('products:product_detail', kwargs={'pk': band.product_id})}#bands")
    context = {
        "product": band.product,
        "band": band,
        "form": form,
        "band_type": band.type,
        "band_type_label": BandType(band.type).label,
        "type_help": BAND_TYPE_HELP[band.type],
    }
    return render(request, "products/band_form.html", context)


@login_required
def band_delete(request: HttpRequest, pk: str) -> HttpResponse:
    band = get_visible_or_404(Band.objects.select_related("product"), request.user, pk, Action.DELETE)
    if request.method == "POST":
        with transaction.atomic():
            services.band_delete(band=Band.objects.select_for_update().select_related("product").get(pk=band.pk))
        messages.success(request, f"Band {band.name} deleted.")
        return redirect(f"{reverse('products:product_detail', kwargs={'pk': band.product_id})}#bands")
    return render(request, "products/band_delete.html", {"band": band, "product": band.product})
