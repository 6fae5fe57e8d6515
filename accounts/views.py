"""`POST /token`: the refresh-token grant the descarteslabs client uses to get access tokens (protocol §6.1).

It is a plain Django view, not DRF: its errors are OAuth 2.0 documents (`error`, `error_description`), not the
JSON:API documents of the catalog, and it must not be reachable through session authentication or CSRF checks.
"""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from .tokens import InvalidRefreshToken, refresh_token_exchange

GRANT_TYPE_REFRESH_TOKEN = "refresh_token"
MAX_CLIENT_ID_LENGTH = 200
FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"


class _TokenRequestError(Exception):
    def __init__(self, status: int, error: str, description: str):
        super().__init__(description)
        self.status = status
        self.error = error
        self.description = description


def _oauth_response(payload: dict[str, Any], *, status: int = 200) -> JsonResponse:
    response = JsonResponse(payload, status=status)
    # RFC 6749 §5.1: responses carrying tokens must not be cached.
    response["Cache-Control"] = "no-store"
    response["Pragma"] = "no-cache"
    return response


def _read_parameters(request: HttpRequest) -> dict[str, Any]:
    """The request's parameters: a JSON object (what the client sends) or an RFC 6749 form body."""
    content_type = (request.content_type or "").lower()
    try:
        if content_type == FORM_CONTENT_TYPE:
            return request.POST.dict()
        body = request.body
    except RequestDataTooBig as exc:
        raise _TokenRequestError(400, "invalid_request", "The request body is too large.") from exc
    try:
        parameters = json.loads(body.decode("utf-8")) if body.strip() else {}
    except (UnicodeDecodeError, ValueError) as exc:
        raise _TokenRequestError(400, "invalid_request", f"The request body is not valid JSON: {exc}") from exc
    if not isinstance(parameters, dict):
        raise _TokenRequestError(400, "invalid_request", "The request body must be a JSON object.")
    return parameters


def _string_parameter(parameters: dict[str, Any], name: str, *, required: bool = True) -> str:
    value = parameters.get(name)
    if value is None or value == "":
        if required:
            raise _TokenRequestError(400, "invalid_request", f"The parameter {name!r} is required.")
        return ""
    if not isinstance(value, str):
        raise _TokenRequestError(400, "invalid_request", f"The parameter {name!r} must be a string.")
    return value


@csrf_exempt
def token(request: HttpRequest) -> JsonResponse:
    """Exchange a refresh token for an access token whose `aud` is the caller's client id."""
    if request.method != "POST":
        response = _oauth_response({"error": "invalid_request", "error_description": "Use POST."}, status=405)
        response["Allow"] = "POST"
        return response
    try:
        parameters = _read_parameters(request)
        grant_type = _string_parameter(parameters, "grant_type")
        if grant_type != GRANT_TYPE_REFRESH_TOKEN:
            raise _TokenRequestError(
                400, "unsupported_grant_type", f"Only grant_type={GRANT_TYPE_REFRESH_TOKEN!r} is supported."
            )
        client_id = _string_parameter(parameters, "client_id")
        if len(client_id) > MAX_CLIENT_ID_LENGTH:
            raise _TokenRequestError(
                400, "invalid_request", f"The parameter 'client_id' is longer than {MAX_CLIENT_ID_LENGTH} characters."
            )
        raw_refresh_token = _string_parameter(parameters, "refresh_token")
        # `scope` is accepted for compatibility; access is decided by the database, not by scopes.
        _string_parameter(parameters, "scope", required=False)
        access_token = refresh_token_exchange(raw=raw_refresh_token, client_id=client_id)
    except _TokenRequestError as exc:
        return _oauth_response({"error": exc.error, "error_description": exc.description}, status=exc.status)
    except InvalidRefreshToken as exc:
        return _oauth_response({"error": "invalid_grant", "error_description": str(exc)}, status=401)
    return _oauth_response(
        {
            "access_token": access_token,
            # Legacy clients read `id_token` instead of `access_token` (protocol §6.1).
            "id_token": access_token,
            "token_type": "Bearer",
            "expires_in": settings.JWT_ACCESS_TOKEN_LIFETIME,
        }
    )
