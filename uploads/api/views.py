"""`/uploads_v2` (protocol §1.3, §5.3) and the unauthenticated resumable-URL PUT endpoint.

Upload documents differ from the other collections in two ways the 3.2.2 client depends on: `included`
holds only `image_upload_event` objects, and `relationships.events` is a to-many list (a to-one
relationship crashes the client, protocol §2.2).
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions, status
from rest_framework.request import Request
from rest_framework.response import Response

from catalogsite.api import CatalogViewSet, Include
from catalogsite.choices import Action
from catalogsite.filtering import field_for
from catalogsite.jsonapi import JSONAPI_MEDIA_TYPE, BadRequest, error_document
from catalogsite.schema import document_schema

from .. import services
from ..choices import ImageUploadStatus
from ..models import ImageUpload
from .serializers import READ_ONLY_ATTRIBUTES, ImageUploadSerializer, event_resource, parse_create

UPLOAD_FILTERS = {
    "id": "id",
    "product_id": "product",
    "image_id": "image_id",
    "status": "status",
    "user": "user_namespace",
    "created": "created",
    "modified": "modified",
}
UPLOAD_SORTS = {
    "product_id": "product_id",
    "image_id": "image_id",
    "status": "status",
    "user": "user_namespace",
    "created": "created",
    "modified": "modified",
}


class ImageUploadViewSet(CatalogViewSet):
    model = ImageUpload
    type_name = "image_upload"
    serializer_class = ImageUploadSerializer
    filter_fields = {name: field_for(ImageUpload, name, path) for name, path in UPLOAD_FILTERS.items()}
    sort_fields = UPLOAD_SORTS
    # Declared for the include parameter check; rendering of this to-many relationship is overridden below.
    includes = {"events": Include("events", None, "pk")}
    select_related = ("product",)

    def restricted(self, action: str = Action.VIEW):
        return super().restricted(action).prefetch_related("events")

    def get_visible_object(self, pk: str, action: str = Action.VIEW):
        """404 when the caller cannot see the upload; seeing it is enough to change its status."""
        obj = self.restricted(Action.VIEW).filter(pk=pk).first()
        if obj is None:
            raise exceptions.NotFound(f"image_upload {pk} not found.")
        return obj

    # ---- documents: events are a to-many relationship, included on request -------------------------
    def requested_includes(self, raw: Any) -> list[str]:
        names = super().requested_includes(raw)
        self.include_events = "events" in names
        return names

    def relationships(self, obj) -> dict[str, Any]:
        if not getattr(self, "include_events", False):
            return {}
        return {"events": {"data": [{"type": "image_upload_event", "id": str(event.pk)} for event in obj.events.all()]}}

    def included(self, objects: list, names: list[str]) -> list[dict[str, Any]]:
        if "events" not in names:
            return []
        return [event_resource(event) for obj in objects for event in obj.events.all()]

    # ---- handlers ------------------------------------------------------------------------------------
    def retrieve(self, request: Request, pk: str) -> Response:
        include = self.requested_includes(request.query_params.get("include"))
        return self.single(self.get_visible_object(pk), include=include)

    def create(self, request: Request) -> Response:
        identifier, attributes = self.document_data(require_id=False)
        if identifier is not None:
            raise BadRequest("Upload ids are chosen by the server; send no data.id.", pointer="/data/id")
        include = self.requested_includes(request.query_params.get("include"))
        spec = parse_create(attributes)
        with transaction.atomic():
            upload, tokens = services.image_upload_create(user=request.user, spec=spec)
        upload = self.restricted().get(pk=upload.pk)
        upload.resumable_urls = [self.resumable_url(upload.pk, index, token) for index, token in enumerate(tokens)]
        return self.single(upload, include=include, status_code=status.HTTP_201_CREATED)

    def resumable_url(self, upload_id: str, index: int, token: str) -> str:
        path = reverse("uploads-api:image_upload_file", kwargs={"pk": upload_id, "index": index})
        return self.request.build_absolute_uri(f"{path}?token={token}")

    def partial_update(self, request: Request, pk: str) -> Response:
        identifier, attributes = self.document_data(require_id=False)
        if identifier is not None and identifier != pk:
            raise BadRequest(f"data.id {identifier!r} does not match the URL id {pk!r}.", pointer="/data/id")
        include = self.requested_includes(request.query_params.get("include"))
        upload = self.get_visible_object(pk, Action.CHANGE)
        current = ImageUploadSerializer(upload, context=self.serializer_context()).data
        for key, value in attributes.items():
            if key == "status":
                continue
            if key not in current and key not in READ_ONLY_ATTRIBUTES:
                raise BadRequest(f"Unknown upload attribute {key!r}.", pointer=f"/data/attributes/{key}")
            if key in current and key != "resumable_urls" and value != current[key]:
                raise BadRequest(f"{key} cannot be changed; only status can.", pointer=f"/data/attributes/{key}")
        if "status" in attributes:
            requested = attributes["status"]
            if requested not in ImageUploadStatus.values:
                raise BadRequest(
                    f"status must be one of {ImageUploadStatus.values}.", pointer="/data/attributes/status"
                )
            services.image_upload_set_status(user=request.user, upload=upload, status=requested)
        return self.single(self.restricted().get(pk=pk), include=include)

    def destroy(self, request: Request, pk: str) -> Response:
        raise exceptions.MethodNotAllowed("DELETE", detail="Image uploads cannot be deleted.")


document_schema(ImageUploadViewSet)


# ---- the resumable URL ------------------------------------------------------------------------------------
def _error(status_code: int, detail: str) -> JsonResponse:
    return JsonResponse(error_document(status_code, detail), status=status_code, content_type=JSONAPI_MEDIA_TYPE)


@csrf_exempt
def resumable_upload(request: HttpRequest, pk: str, index: int) -> HttpResponse:
    """`PUT <url>?token=…` with the raw file bytes and no Authorization header (protocol §5.3 step 2).

    The body is streamed (never `request.body`): with a Content-Length, exactly that many bytes are read
    through Django's bounded stream; without one, a server that marks `wsgi.input` as terminated (e.g.
    gunicorn decoding a chunked body) is read to its end; otherwise the body counts as empty — the
    `requests` library sends an empty file that way.
    """
    if request.method != "PUT":
        response = _error(405, "Send the file bytes with PUT.")
        response["Allow"] = "PUT"
        return response
    raw_length = request.META.get("CONTENT_LENGTH")
    content_length: int | None
    if raw_length not in (None, ""):
        try:
            content_length = int(raw_length)
        except ValueError:
            return _error(400, "Content-Length is not a number.")
        if content_length < 0:
            return _error(400, "Content-Length is negative.")
        read = request.read
    elif request.META.get("wsgi.input_terminated"):
        content_length = None
        read = request.META["wsgi.input"].read
    else:
        content_length = 0
        read = request.read
    try:
        upload_file = services.image_upload_receive_file(
            upload_id=pk, index=index, token=request.GET.get("token", ""), read=read, content_length=content_length
        )
    except services.UploadTransferError as exc:
        return _error(exc.status, str(exc))
    return JsonResponse({"meta": {"size_bytes": upload_file.size_bytes, "sha256": upload_file.sha256}}, status=200)
