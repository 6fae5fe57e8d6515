"""Web UI pages for uploads: the upload page, the uploads list and an upload's detail with its event log.

The upload page itself holds no upload logic: its script uses the public uploads API with the session
cookie and the CSRF header, exactly the calls the descarteslabs client makes (protocol §5.3).
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST
from rest_framework.exceptions import APIException

from catalogsite.choices import Action
from catalogsite.ui import paginate
from imagery.models import Image
from products.models import Product

from . import services
from .choices import CANCELABLE_STATUSES, TERMINAL_STATUSES, ImageUploadStatus
from .filtersets import ImageUploadFilterSet
from .forms import ImageUploadForm
from .models import ImageUpload

UPLOAD_FILTERS = ("product", "status", "created_after", "created_before", "image_id")


def _visible_upload(request: HttpRequest, pk: str) -> ImageUpload:
    """Uploads have their own visibility rule (own uploads, and uploads into owned products): else 404."""
    upload = (
        ImageUpload.objects.restrict(request.user, Action.VIEW).select_related("product", "user").filter(pk=pk).first()
    )
    if upload is None:
        raise Http404("No such upload is visible to you.")
    return upload


@login_required
def image_upload_list(request: HttpRequest) -> HttpResponse:
    queryset = ImageUpload.objects.restrict(request.user, Action.VIEW).select_related("product")
    filterset = ImageUploadFilterSet(request.GET, queryset=queryset, request=request)
    form = filterset.form
    for name in ("created_after", "created_before"):
        form.fields[name].widget.input_type = "date"
    uploads = filterset.qs.order_by("-created", "id") if filterset.is_valid() else queryset.none()
    page = paginate(request, uploads)
    context = {
        "page": page,
        "filter_fields": [form[name] for name in UPLOAD_FILTERS],
        "filter_errors": filterset.errors if request.GET else {},
        "filtered": any(request.GET.get(name) for name in UPLOAD_FILTERS),
    }
    return render(request, "uploads/image_upload_list.html", context)


@login_required
def image_upload_add(request: HttpRequest) -> HttpResponse:
    """The upload page: drag-and-drop, per-file progress, then the live status of each upload."""
    initial = {}
    product_id = request.GET.get("product")
    if product_id:
        product = Product.objects.restrict(request.user, Action.CHANGE).filter(pk=product_id).first()
        if product is not None:
            initial["product"] = product
    form = ImageUploadForm(initial=initial, user=request.user)
    context = {
        "form": form,
        "has_products": form.fields["product"].queryset.exists(),
        "detail_url_template": reverse("uploads:image_upload_detail", kwargs={"pk": "__id__"}),
        "image_url_template": reverse("imagery:image_detail", kwargs={"pk": "__id__"}),
    }
    return render(request, "uploads/image_upload_form.html", context)


def _detail_context(request: HttpRequest, upload: ImageUpload) -> dict:
    image = None
    if upload.status == ImageUploadStatus.SUCCESS:
        image = Image.objects.restrict(request.user, Action.VIEW).filter(pk=upload.image_id).first()
    events = list(upload.events.order_by("id"))
    failure = (
        next((event for event in reversed(events) if event.severity in ("ERROR", "CRITICAL")), None)
        if upload.status == "failure"
        else None
    )
    return {
        "upload": upload,
        "events": events,
        "files": list(upload.files.order_by("index")),
        "image": image,
        "failure": failure,
        "image_attributes": [(key.replace("_", " "), value) for key, value in sorted(upload.image_attributes.items())],
        "is_terminal": upload.status in TERMINAL_STATUSES,
        "can_cancel": upload.status in CANCELABLE_STATUSES,
    }


@login_required
def image_upload_detail(request: HttpRequest, pk: str) -> HttpResponse:
    upload = _visible_upload(request, pk)
    return render(request, "uploads/image_upload_detail.html", _detail_context(request, upload))


@login_required
def image_upload_events(request: HttpRequest, pk: str) -> HttpResponse:
    """The live part of the detail page (status, failure, events), re-fetched while the upload runs."""
    upload = _visible_upload(request, pk)
    response = render(request, "uploads/_image_upload_live.html", _detail_context(request, upload))
    response["Cache-Control"] = "no-store"
    return response


@login_required
@require_POST
def image_upload_cancel(request: HttpRequest, pk: str) -> HttpResponse:
    """Cancel, as the client's `upload.cancel()`: allowed while transferring or pending (else 409 explained)."""
    upload = _visible_upload(request, pk)
    try:
        services.image_upload_set_status(user=request.user, upload=upload, status=ImageUploadStatus.CANCELED)
    except APIException as exc:
        messages.error(request, str(exc.detail))
    else:
        messages.success(request, "Upload canceled.")
    return redirect("uploads:image_upload_detail", pk=upload.pk)
