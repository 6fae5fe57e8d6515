"""The JSON:API layer of the Catalog v2 protocol: parsing, rendering and error documents.

The descarteslabs client sends `application/vnd.api+json` on every request and maps HTTP statuses to
exception classes; only the statuses of protocol §2.3 may be emitted (other 4xx crash the 3.2.2 client),
so every error leaves through `exception_handler` below.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.http import Http404, JsonResponse
from rest_framework import exceptions, status
from rest_framework.parsers import BaseParser
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response

logger = logging.getLogger(__name__)

JSONAPI_MEDIA_TYPE = "application/vnd.api+json"
JSONAPI_VERSION = {"version": "1.0"}

# Statuses the 3.2.2 client maps to exception classes (protocol §2.3); anything else is folded into 400.
ALLOWED_STATUSES = {400, 401, 403, 404, 405, 409, 410, 422, 429, 500, 502, 503, 504}


class Conflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "The request conflicts with the current state of the resource."
    default_code = "conflict"


class Unprocessable(exceptions.APIException):
    status_code = status.HTTP_422_UNPROCESSABLE_ENTITY
    default_detail = "The request is well-formed but invalid."
    default_code = "invalid"


class BadRequest(exceptions.APIException):
    """A 400 that names where the problem is (`pointer` into the document, or a request `parameter`)."""

    status_code = status.HTTP_400_BAD_REQUEST
    default_code = "bad_request"

    def __init__(self, detail: str, *, pointer: str | None = None, parameter: str | None = None):
        super().__init__(detail)
        self.pointer = pointer
        self.parameter = parameter


class JSONAPIParser(BaseParser):
    """Parses JSON bodies sent as `application/vnd.api+json` or `application/json`, with a size cap."""

    media_type = "*/*"

    def parse(self, stream, media_type=None, parser_context=None):
        request = (parser_context or {}).get("request")
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        content_type = (media_type or "").split(";")[0].strip().lower()
        if content_type and not (content_type.endswith("json") or content_type.endswith("+json")):
            raise BadRequest(f"Unsupported content type {content_type!r}; send application/vnd.api+json.")
        try:
            raw = stream.read(limit + 1) if stream is not None else b""
        except RequestDataTooBig as exc:
            raise BadRequest(f"Request body exceeds {limit} bytes.") from exc
        if len(raw) > limit:
            raise BadRequest(f"Request body exceeds {limit} bytes.")
        if not raw.strip():
            return {}
        try:
            return json.loads(raw.decode("utf-8"))
        except RecursionError as exc:
            raise BadRequest("Malformed JSON in request body: nested too deeply.") from exc
        except (UnicodeDecodeError, ValueError) as exc:
            raise BadRequest(f"Malformed JSON in request body: {exc}") from exc
        finally:
            del request


class JSONAPIRenderer(JSONRenderer):
    media_type = JSONAPI_MEDIA_TYPE
    format = "vnd.api+json"


_TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    410: "Gone",
    422: "Unprocessable Entity",
    429: "Too Many Requests",
    500: "Internal Server Error",
}


def error_document(
    status_code: int, detail: str, *, pointer: str | None = None, parameter: str | None = None, title: str | None = None
) -> dict[str, Any]:
    error: dict[str, Any] = {
        "status": str(status_code),
        "title": title or _TITLES.get(status_code, "Error"),
        "detail": detail,
    }
    if pointer:
        error["source"] = {"pointer": pointer}
    elif parameter:
        error["source"] = {"parameter": parameter}
    return {"errors": [error], "jsonapi": JSONAPI_VERSION}


def _flatten_validation(detail: Any, path: str = "") -> list[tuple[str, str]]:
    """Turn DRF's nested ValidationError detail into (pointer-suffix, message) pairs."""
    out: list[tuple[str, str]] = []
    if isinstance(detail, dict):
        for key, value in detail.items():
            sub = path if key in ("non_field_errors",) else f"{path}/{key}"
            out.extend(_flatten_validation(value, sub))
    elif isinstance(detail, list):
        if all(not isinstance(item, (dict, list)) for item in detail):
            out.extend((path, str(item)) for item in detail)
        else:
            for index, item in enumerate(detail):
                out.extend(_flatten_validation(item, f"{path}/{index}"))
    else:
        out.append((path, str(detail)))
    return out


def exception_handler(exc: Exception, context: dict) -> Response:
    """Render every API error as a JSON:API error document with a client-mappable status."""
    if isinstance(exc, Http404):
        exc = exceptions.NotFound(str(exc) or "Not found.")
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied(str(exc) or None)

    if isinstance(exc, exceptions.ValidationError):
        pointer_base = getattr(exc, "pointer_base", "/data/attributes")
        errors = []
        for suffix, message in _flatten_validation(exc.detail):
            field = suffix.strip("/")
            error: dict[str, Any] = {
                "status": "400",
                "title": "Invalid attribute",
                "detail": f"{field}: {message}" if field else message,
            }
            if field:
                error["source"] = {"pointer": f"{pointer_base}/{field}"}
            errors.append(error)
        return Response(
            {"errors": errors or [error_document(400, "Invalid request.")["errors"][0]], "jsonapi": JSONAPI_VERSION},
            status=400,
        )

    if isinstance(exc, exceptions.APIException):
        code = exc.status_code if exc.status_code in ALLOWED_STATUSES else 400
        detail = exc.detail if isinstance(exc.detail, str) else json.dumps(exc.detail)
        if isinstance(exc, exceptions.UnsupportedMediaType):
            detail = f"{detail} Send application/vnd.api+json."
        doc = error_document(
            code, str(detail), pointer=getattr(exc, "pointer", None), parameter=getattr(exc, "parameter", None)
        )
        headers = {}
        if getattr(exc, "wait", None):
            headers["Retry-After"] = str(int(exc.wait))
        if code == 401:
            headers["WWW-Authenticate"] = 'Bearer realm="tessera"'
        return Response(doc, status=code, headers=headers)

    logger.exception("Unhandled error in API view", exc_info=exc)
    return Response(error_document(500, "Internal server error."), status=500)


def json_error_response(status_code: int, detail: str) -> JsonResponse:
    """A JSON:API error outside DRF (URL-level 404/500 handlers)."""
    return JsonResponse(error_document(status_code, detail), status=status_code, content_type=JSONAPI_MEDIA_TYPE)
