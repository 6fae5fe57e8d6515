"""Access tokens (short-lived HS256 JWTs) and refresh tokens (opaque, hashed, revocable).

The descarteslabs client only accepts JWT-shaped bearer tokens carrying `exp` (protocol §6.3) and reads the
claims for its own namespace and ACL helpers. The server never authorizes from claims: `sub` identifies the
user and everything else is read from the database (security notes §0.12).
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta
from typing import Any

import jwt
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from .models import EmailAddress, RefreshToken, User
from .principals import principals_for

ALGORITHM = "HS256"
# Longer-lived credentials are refresh tokens, which can be revoked; a JWT cannot.
MAX_ACCESS_TOKEN_LIFETIME = 30 * 24 * 3600
REFRESH_TOKEN_PREFIX = "tsr_"
# Enough of the secret to recognise a token in the admin and in logs, far too little to guess the rest.
REFRESH_TOKEN_PREFIX_LENGTH = len(REFRESH_TOKEN_PREFIX) + 6


class TokenError(Exception):
    """Base class of the token errors; the message is safe to show to the caller."""


class InvalidAccessToken(TokenError):
    """The bearer token is not a valid, unexpired access token issued by this server."""


class InvalidRefreshToken(TokenError):
    """The refresh token is unknown, revoked, expired, or belongs to a disabled account."""


def _lifetime(expires_in: int | None, *, default: int, maximum: int | None) -> int:
    seconds = default if expires_in is None else expires_in
    if isinstance(seconds, bool) or not isinstance(seconds, int) or seconds <= 0:
        raise ValueError(f"expires_in must be a positive number of seconds, got {expires_in!r}.")
    if maximum is not None and seconds > maximum:
        raise ValueError(f"expires_in must be at most {maximum} seconds, got {seconds}.")
    return seconds


def _email_claims(user: User) -> tuple[str, bool]:
    """The address the client turns into its `email:` subject: the primary verified one if any."""
    verified = EmailAddress.objects.filter(user=user, is_verified=True).order_by("-is_primary", "created", "pk").first()
    if verified is not None:
        return verified.email.lower(), True
    return (user.email or "").lower(), False


def issue_access_token(*, user: User, audience: str | None = None, expires_in: int | None = None) -> str:
    """Sign a JWT carrying what the descarteslabs client needs locally (namespace, org, groups, email)."""
    lifetime = _lifetime(expires_in, default=settings.JWT_ACCESS_TOKEN_LIFETIME, maximum=MAX_ACCESS_TOKEN_LIFETIME)
    principals = principals_for(user)
    email, email_verified = _email_claims(user)
    now = int(timezone.now().timestamp())
    claims: dict[str, Any] = {
        "iss": settings.JWT_ISSUER,
        "sub": user.subject,
        "iat": now,
        "exp": now + lifetime,
        "email_verified": email_verified,
        "name": user.get_full_name() or user.username,
        "groups": list(principals.groups),
    }
    if email:
        claims["email"] = email
    if principals.organization:
        claims["org"] = principals.organization
    if audience:
        claims["aud"] = audience
    return jwt.encode(claims, settings.JWT_SIGNING_KEY, algorithm=ALGORITHM)


def decode_access_token(token: str) -> dict[str, Any]:
    """Verify signature, algorithm, expiry and issuer, so only tokens this server signed are accepted."""
    try:
        return jwt.decode(
            token,
            settings.JWT_SIGNING_KEY,
            algorithms=[ALGORITHM],
            issuer=settings.JWT_ISSUER,
            # `aud` is the client id of the refresh flow, there only for the client's own check (protocol §6.3).
            options={"require": ["exp", "iat", "iss", "sub"], "verify_aud": False},
        )
    except jwt.ExpiredSignatureError as exc:
        raise InvalidAccessToken("The access token has expired.") from exc
    except jwt.PyJWTError as exc:
        raise InvalidAccessToken(f"The access token is invalid: {exc}") from exc


def _hash_refresh_token(raw: str) -> str:
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


def refresh_token_create(*, user: User, name: str = "", expires_in: int | None = None) -> tuple[RefreshToken, str]:
    """Create a revocable credential for `POST /token`; the raw secret is returned once and never stored."""
    expires_at = None
    if expires_in is not None:
        expires_at = timezone.now() + timedelta(seconds=_lifetime(expires_in, default=0, maximum=None))
    raw = REFRESH_TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = RefreshToken(
        user=user,
        name=name,
        prefix=raw[:REFRESH_TOKEN_PREFIX_LENGTH],
        token_hash=_hash_refresh_token(raw),
        expires_at=expires_at,
    )
    token.full_clean()
    with transaction.atomic():
        token.save()
    return token, raw


def refresh_token_revoke(*, token: RefreshToken) -> None:
    """Revoke a refresh token so it can no longer be exchanged; revoking twice keeps the first time."""
    RefreshToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())
    token.refresh_from_db(fields=["revoked_at"])


def refresh_token_get_usable(*, raw: str) -> RefreshToken:
    """Find the refresh token `raw` and check it may still be used; raises InvalidRefreshToken otherwise."""
    if not raw:
        raise InvalidRefreshToken("The refresh token is missing.")
    # The lookup is by the hash of the whole secret, so response timing tells nothing about the secret itself.
    token = RefreshToken.objects.select_related("user").filter(token_hash=_hash_refresh_token(raw)).first()
    if token is None:
        raise InvalidRefreshToken("The refresh token is unknown.")
    if token.revoked_at is not None:
        raise InvalidRefreshToken("The refresh token has been revoked.")
    if token.expires_at is not None and token.expires_at <= timezone.now():
        raise InvalidRefreshToken("The refresh token has expired.")
    if not token.user.is_active:
        raise InvalidRefreshToken("The account of this refresh token is disabled.")
    return token


def refresh_token_exchange(*, raw: str, client_id: str) -> str:
    """Trade a refresh token for an access token whose `aud` is the client id the client will check."""
    token = refresh_token_get_usable(raw=raw)
    RefreshToken.objects.filter(pk=token.pk).update(last_used_at=timezone.now())
    return issue_access_token(user=token.user, audience=client_id)
