"""Capability tokens of the resumable upload URLs (security notes §2.8).

The descarteslabs client PUTs file bytes without an Authorization header, so the URL itself authorizes:
an HMAC-signed token that binds the upload id, the file index, the byte cap and an expiry (≤ 1 h).
Single use is enforced in the database (`ImageUploadFile.received_at`), not here.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from django.conf import settings
from django.core import signing

SALT = "tessera.uploads.resumable-url"
MAX_TTL = 3600


class InvalidUploadToken(Exception):
    """The token is forged, altered, expired or for another file; the message is safe to show."""


@dataclass(frozen=True)
class UploadGrant:
    upload_id: str
    index: int
    cap_bytes: int
    expires_at: int


def issue_upload_token(*, upload_id: str, index: int, cap_bytes: int, now: float | None = None) -> str:
    ttl = min(settings.UPLOAD_URL_TTL, MAX_TTL)
    expires_at = int((now if now is not None else time.time()) + ttl)
    return signing.dumps({"u": upload_id, "i": index, "c": cap_bytes, "e": expires_at}, salt=SALT, compress=False)


def read_upload_token(token: str, *, upload_id: str, index: int, now: float | None = None) -> UploadGrant:
    """Verify a token for the file it is presented for; raise InvalidUploadToken otherwise."""
    if not token or len(token) > 1000:
        raise InvalidUploadToken("The upload URL is not signed.")
    try:
        payload = signing.loads(token, salt=SALT)
    except signing.BadSignature as exc:
        raise InvalidUploadToken("The upload URL signature is invalid.") from exc
    if not isinstance(payload, dict) or set(payload) != {"u", "i", "c", "e"}:
        raise InvalidUploadToken("The upload URL signature is invalid.")
    if payload["u"] != upload_id or payload["i"] != index:
        raise InvalidUploadToken("The upload URL was issued for another file.")
    if (now if now is not None else time.time()) > payload["e"]:
        raise InvalidUploadToken("The upload URL has expired; create a new upload.")
    return UploadGrant(
        upload_id=payload["u"], index=payload["i"], cap_bytes=int(payload["c"]), expires_at=int(payload["e"])
    )
