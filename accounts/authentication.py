"""DRF authentication with the bearer JWTs of `accounts.tokens` (protocol §6.2).

Only the `sub` claim is used, to find the user; what the user may do is computed from live database rows by
`accounts.principals.principals_for`, so removing a membership takes effect before the token expires.
"""

from __future__ import annotations

from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.exceptions import AuthenticationFailed

from .principals import user_for_subject
from .tokens import InvalidAccessToken, decode_access_token

KEYWORD = b"bearer"


class JWTAuthentication(BaseAuthentication):
    """Authenticates `Authorization: Bearer <jwt>`; `request.auth` holds the verified claims."""

    def authenticate(self, request):
        parts = get_authorization_header(request).split()
        if not parts or parts[0].lower() != KEYWORD:
            return None
        if len(parts) == 1:
            raise AuthenticationFailed("Invalid Authorization header: no token after 'Bearer'.")
        if len(parts) > 2:
            raise AuthenticationFailed("Invalid Authorization header: the token must not contain spaces.")
        try:
            token = parts[1].decode("ascii")
        except UnicodeDecodeError as exc:
            raise AuthenticationFailed("Invalid Authorization header: the token must be ASCII.") from exc
        try:
            claims = decode_access_token(token)
        except InvalidAccessToken as exc:
            raise AuthenticationFailed(str(exc)) from exc

        user = user_for_subject(claims["sub"])  # the user row and its principals in one statement
        if user is None:
            raise AuthenticationFailed("The user of this access token no longer exists.")
        if not user.is_active:
            raise AuthenticationFailed("The account of this access token is disabled.")
        return user, claims

    def authenticate_header(self, request):
        # A WWW-Authenticate value makes DRF answer 401 (not 403) to unauthenticated requests.
        return 'Bearer realm="tessera"'
