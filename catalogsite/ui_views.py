"""Web UI pages that belong to no single app: the dashboard and the HTML error pages."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.db.models import Count
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from products.models import Product
from products.selectors import product_object_counts
from uploads.choices import ImageUploadStatus
from uploads.models import ImageUpload

from .choices import Action

DASHBOARD_PRODUCTS = 8
DASHBOARD_UPLOADS = 10
# The upload states a steward watches, in the words the dashboard uses for them.
DASHBOARD_STATUSES = (
    (ImageUploadStatus.PENDING, "Queued"),
    (ImageUploadStatus.RUNNING, "Ingesting"),
    (ImageUploadStatus.SUCCESS, "Ingested"),
    (ImageUploadStatus.FAILURE, "Failed"),
)


@login_required
def dashboard(request: HttpRequest) -> HttpResponse:
    """My products, recent uploads with status counts, failures first: what a data steward checks each morning."""
    user = request.user
    my_products = list(Product.objects.restrict(user, Action.CHANGE).order_by("-modified")[:DASHBOARD_PRODUCTS])
    counts = product_object_counts(user=user, product_ids=[p.pk for p in my_products])
    uploads = ImageUpload.objects.restrict(user, Action.VIEW)
    status_counts = dict.fromkeys(ImageUploadStatus.values, 0)
    for row in uploads.order_by().values("status").annotate(n=Count("pk")):
        status_counts[row["status"]] = row["n"]
    recent = list(uploads.select_related("product").order_by("-created")[:DASHBOARD_UPLOADS])
    # Failures first: they are what needs a person; the rest keep newest-first order (sort is stable).
    recent.sort(key=lambda upload: upload.status != ImageUploadStatus.FAILURE)
    context = {
        "products": [(product, counts[product.pk]) for product in my_products],
        "visible_products": Product.objects.restrict(user, Action.VIEW).count(),
        "status_counts": [(status, label, status_counts[status]) for status, label in DASHBOARD_STATUSES],
        "uploads_total": sum(status_counts.values()),
        "recent_uploads": recent,
    }
    return render(request, "dashboard.html", context)


def page_not_found(request: HttpRequest, exception=None) -> HttpResponse:
    return render(request, "404.html", status=404)


def permission_denied(request: HttpRequest, exception=None) -> HttpResponse:
    message = str(exception) if exception is not None and str(exception) else ""
    return render(request, "403.html", {"message": message}, status=403)


def server_error(request: HttpRequest) -> HttpResponse:
    # No context processors: the error may have come from them or from the database.
    from django.template import loader

    return HttpResponse(loader.get_template("500.html").render(), status=500)
