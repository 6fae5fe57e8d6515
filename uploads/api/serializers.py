"""ImageUpload documents on the wire (protocol §4.5, §5.3): validation of the create body and output shapes.

The create body nests a whole JSON:API image document; its attributes are validated with the image
serializer (minus what only ingest may set) and kept as sent, because they override what ingest derives.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from rest_framework import serializers

from catalogsite.jsonapi import BadRequest
from catalogsite.serializers import StrictCharField, TimestampField, format_timestamp
from imagery.api.serializers import ImageSerializer

from ..choices import ImageUploadStatus, ImageUploadType, OverviewResampler
from ..models import ImageUpload, ImageUploadEvent
from ..services import UploadSpec
from ..validation import InvalidCoordinateSystem, normalize_cs_code, projection_kind, safe_basename

MAX_OVERVIEWS = 16
MAX_OVERVIEW_FACTOR = 2**16
OPTION_KEYS = {"upload_type", "image_files", "overviews", "overview_resampler", "upload_size", "worker_tag"}
# Upload attributes that are server-set; a client echoing them back is ignored.
READ_ONLY_ATTRIBUTES = {"id", "user", "resumable_urls", "events", "created", "modified", "status"}
# What only ingest decides: the stored files and where they are.
INGEST_ONLY_IMAGE_ATTRIBUTES = {"files", "storage_state"}
ACL_ATTRIBUTES = {"owners", "readers", "writers"}


class UploadImageSerializer(ImageSerializer):
    """Image attributes as given with an upload: ingest derives georeferencing, size and files."""

    immutable_fields = ()

    def validate(self, attrs):
        errors: dict[str, list[str]] = {}
        if attrs.get("acquired") is None:
            errors["acquired"] = ["acquired is required for uploads."]
        for key in ("cs_code",):
            if attrs.get(key):
                try:
                    attrs[key] = normalize_cs_code(attrs[key])
                except InvalidCoordinateSystem as exc:
                    errors[key] = [str(exc)]
        if attrs.get("projection"):
            try:
                projection_kind(attrs["projection"])
            except InvalidCoordinateSystem as exc:
                errors["projection"] = [str(exc)]
        if errors:
            raise serializers.ValidationError(errors)
        return attrs


def _fail(message: str, pointer: str) -> BadRequest:
    return BadRequest(message, pointer=pointer)


def _validation_error(exc: serializers.ValidationError, prefix: str) -> serializers.ValidationError:
    error = serializers.ValidationError(exc.detail)
    error.pointer_base = prefix  # type: ignore[attr-defined] - read by catalogsite.jsonapi.exception_handler
    return error


def parse_create(attributes: dict[str, Any]) -> UploadSpec:
    """Validate the attributes of `POST /uploads_v2` (protocol §5.3 step 1) into an UploadSpec."""
    unknown = set(attributes) - {"image", "image_id", "image_upload_options", "product_id"} - READ_ONLY_ATTRIBUTES
    if unknown:
        raise _fail(f"Unknown upload attribute(s) {sorted(unknown)}.", f"/data/attributes/{sorted(unknown)[0]}")
    if attributes.get("status") not in (None, ImageUploadStatus.TRANSFERRING):
        raise _fail(
            "A new upload starts as 'transferring'; set 'pending' once the files are transferred.",
            "/data/attributes/status",
        )
    document = attributes.get("image")
    data = document.get("data") if isinstance(document, dict) else None
    if not isinstance(data, dict) or not isinstance(data.get("attributes"), dict):
        raise _fail(
            'image must be a JSON:API image document: {"data": {"type": "image", "attributes": …}}.',
            "/data/attributes/image",
        )
    if data.get("type") != "image":
        raise _fail("image.data.type must be 'image'.", "/data/attributes/image/data/type")
    raw = dict(data["attributes"])
    forbidden = sorted((INGEST_ONLY_IMAGE_ATTRIBUTES | ACL_ATTRIBUTES) & set(raw))
    if forbidden:
        raise _fail(
            f"{', '.join(forbidden)} cannot be given with an upload: ingest sets the files, and images "
            "take their product's ACLs.",
            f"/data/attributes/image/data/attributes/{forbidden[0]}",
        )
    for key in ("created", "modified", "v1_properties"):
        raw.pop(key, None)
    serializer = UploadImageSerializer(data=raw)
    if not serializer.is_valid():
        raise _validation_error(
            serializers.ValidationError(serializer.errors), "/data/attributes/image/data/attributes"
        )
    product_id, name = serializer.validated_data["product_id"], serializer.validated_data["name"]
    image_id = f"{product_id}:{name}"
    for given, pointer in (
        (attributes.get("image_id"), "/data/attributes/image_id"),
        (data.get("id"), "/data/attributes/image/data/id"),
    ):
        if given is not None and given != image_id:
            raise _fail(f"The image id must be '<product_id>:<name>', i.e. {image_id!r}.", pointer)
    if attributes.get("product_id") not in (None, product_id):
        raise _fail("product_id does not match the image's product_id.", "/data/attributes/product_id")
    kept = {key: value for key, value in raw.items() if key not in ("product_id", "name")}
    return _options(attributes.get("image_upload_options"), product_id=product_id, name=name, image=kept)


def _options(options: Any, *, product_id: str, name: str, image: dict[str, Any]) -> UploadSpec:
    pointer = "/data/attributes/image_upload_options"
    if options is None:
        options = {}
    if not isinstance(options, dict):
        raise _fail("image_upload_options must be an object.", pointer)
    unknown = set(options) - OPTION_KEYS
    if unknown:
        raise _fail(f"Unknown image_upload_options {sorted(unknown)}.", f"{pointer}/{sorted(unknown)[0]}")
    upload_type = options.get("upload_type") or ImageUploadType.FILE
    if upload_type not in ImageUploadType.values:
        raise _fail(f"upload_type must be one of {ImageUploadType.values}.", f"{pointer}/upload_type")
    files = options.get("image_files")
    if not isinstance(files, list) or not files or not all(isinstance(f, str) and 0 < len(f) <= 4096 for f in files):
        raise _fail("image_files must list the uploaded files (one entry per file).", f"{pointer}/image_files")
    if len(files) > settings.UPLOAD_MAX_FILES:
        raise _fail(f"At most {settings.UPLOAD_MAX_FILES} files per upload.", f"{pointer}/image_files")
    overviews = options.get("overviews") or []
    if (
        not isinstance(overviews, list)
        or len(overviews) > MAX_OVERVIEWS
        or not all(isinstance(v, int) and not isinstance(v, bool) and 2 <= v <= MAX_OVERVIEW_FACTOR for v in overviews)
    ):
        raise _fail(
            f"overviews is a list of at most {MAX_OVERVIEWS} integer factors between 2 and {MAX_OVERVIEW_FACTOR}.",
            f"{pointer}/overviews",
        )
    resampler = options.get("overview_resampler")
    if resampler is not None and resampler not in OverviewResampler.values:
        raise _fail(f"overview_resampler must be one of {OverviewResampler.values}.", f"{pointer}/overview_resampler")
    size = options.get("upload_size")
    if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 0):
        raise _fail("upload_size must be a non-negative integer (bytes).", f"{pointer}/upload_size")
    if size is not None and size > settings.UPLOAD_MAX_BYTES:
        raise _fail(f"upload_size exceeds the {settings.UPLOAD_MAX_BYTES} byte limit.", f"{pointer}/upload_size")
    if upload_type == ImageUploadType.NDARRAY:
        if not image.get("geotrans"):
            raise _fail(
                "An ndarray upload needs the image's geotrans (or raster_meta).",
                "/data/attributes/image/data/attributes/geotrans",
            )
        if not (image.get("cs_code") or image.get("projection")):
            raise _fail(
                "An ndarray upload needs the image's cs_code or projection (or raster_meta).",
                "/data/attributes/image/data/attributes/cs_code",
            )
    return UploadSpec(
        product_id=product_id,
        image_name=name,
        image_attributes=image,
        upload_type=upload_type,
        image_files=[safe_basename(f) for f in files],
        overviews=sorted(set(overviews)),
        overview_resampler=resampler,
        upload_size=size,
    )


def image_attributes_internal(raw: dict[str, Any]) -> dict[str, Any]:
    """The stored client image attributes as model values (for ingest, which applies them last)."""
    serializer = UploadImageSerializer(data={**raw, "product_id": "x", "name": "x"})
    serializer.is_valid(raise_exception=True)
    values = dict(serializer.validated_data)
    values.pop("product_id", None)
    values.pop("name", None)
    return values


class ImageUploadSerializer(serializers.ModelSerializer):
    """The upload's attributes (relationships/included events are added by the view)."""

    product_id = serializers.CharField(source="product.pk", read_only=True)
    image_id = StrictCharField(read_only=True)
    image_upload_options = serializers.SerializerMethodField()
    user = serializers.CharField(source="user_namespace", read_only=True)
    resumable_urls = serializers.SerializerMethodField()
    status = serializers.CharField(read_only=True)
    created = TimestampField(read_only=True)
    modified = TimestampField(read_only=True)

    class Meta:
        model = ImageUpload
        # No `image`: a nested image document in a response crashes the 3.2.2 client (it compares the raw
        # dict's `.id`), and `"image": null` is rejected; the client keeps its own sticky Image, and one
        # found by a search resolves `image` through `image_id`.
        fields = [
            "product_id",
            "image_id",
            "image_upload_options",
            "user",
            "resumable_urls",
            "status",
            "created",
            "modified",
        ]

    def get_image_upload_options(self, obj: ImageUpload) -> dict[str, Any]:
        return {key: value for key, value in obj.options.items() if value is not None}

    def get_resumable_urls(self, obj: ImageUpload) -> list[str]:
        # Capability URLs are handed out once, in the create response; later reads do not repeat them.
        return list(getattr(obj, "resumable_urls", []))


def event_resource(event: ImageUploadEvent) -> dict[str, Any]:
    return {
        "type": "image_upload_event",
        "id": str(event.pk),
        "attributes": {
            "event_datetime": format_timestamp(event.event_datetime),
            "component": event.component,
            "component_id": event.component_id,
            "event_type": event.event_type,
            "severity": event.severity,
            "message": event.message,
        },
    }
