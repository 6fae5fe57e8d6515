"""Bearer-token authentication: only `sub` is trusted, everything else comes from the database."""

import jwt
import pytest
from django.conf import settings
from django.utils import timezone
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.test import APIRequestFactory

from accounts.authentication import JWTAuthentication
from accounts.models import Membership
from accounts.principals import principals_for
from accounts.tokens import decode_access_token
from tests.factories import make_user

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.accounts.urlconf")]


def _authenticate(header: str | None):
    factory = APIRequestFactory()
    request = factory.get("/whoami", HTTP_AUTHORIZATION=header) if header is not None else factory.get("/whoami")
    return JWTAuthentication().authenticate(request)


def test_valid_token_authenticates_its_user(token_for):
    alice = make_user("alice", org="acme")

    user, claims = _authenticate(f"Bearer {token_for(alice)}")

    assert user == alice
    assert claims["sub"] == alice.subject


def test_other_schemes_and_missing_header_are_left_to_other_authenticators():
    assert _authenticate(None) is None
    assert _authenticate("Basic YWxpY2U6c2VjcmV0") is None


@pytest.mark.parametrize(
    ("header", "message"),
    [("Bearer", "no token"), ("Bearer a b", "spaces"), ("Bearer not-a-jwt", "invalid")],
)
def test_malformed_bearer_headers_fail(header, message):
    with pytest.raises(AuthenticationFailed, match=message):
        _authenticate(header)


def test_api_answers_401_with_a_bearer_challenge_without_credentials(api_client):
    response = api_client.get("/whoami")

    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="tessera"'


def test_api_accepts_a_valid_token(auth_client):
    alice = make_user("alice", org="acme")

    response = auth_client(alice).get("/whoami")

    assert response.status_code == 200
    assert response.json()["username"] == "alice"
    assert "org:acme" in response.json()["readable"]


def test_token_of_a_deleted_user_is_refused(auth_client):
    alice = make_user("alice", org="acme")
    client = auth_client(alice)
    alice.delete()

    response = client.get("/whoami")

    assert response.status_code == 401
    assert "no longer exists" in response.content.decode()


def test_token_of_an_inactive_user_is_refused(auth_client):
    alice = make_user("alice", org="acme")
    client = auth_client(alice)
    alice.is_active = False
    alice.save()

    response = client.get("/whoami")

    assert response.status_code == 401
    assert "disabled" in response.content.decode()


def test_removing_a_membership_takes_effect_before_the_token_expires(auth_client, token_for):
    alice = make_user("alice", org="acme", org_admin=True)
    token = token_for(alice)
    client = auth_client(alice)
    assert "org:acme" in client.get("/whoami").json()["owner"]

    Membership.objects.filter(user=alice).delete()

    # The token still claims the organization, but authorization reads the database.
    assert decode_access_token(token)["org"] == "acme"
    user, _ = _authenticate(f"Bearer {token}")
    assert "org:acme" not in principals_for(user).readable
    body = client.get("/whoami").json()
    assert "org:acme" not in body["readable"]
    assert "org:acme" not in body["owner"]


def test_claims_other_than_sub_grant_nothing(api_client):
    alice = make_user("alice", org="acme")
    make_user("mallory-victim", org="victims")
    now = int(timezone.now().timestamp())
    # Correctly signed (so only a leaked key could produce it), yet the extra claims must still be ignored.
    token = jwt.encode(
        {
            "iss": settings.JWT_ISSUER,
            "sub": alice.subject,
            "iat": now,
            "exp": now + 60,
            "org": "victims",
            "groups": ["victims:org-admin", "internal:platform-admin"],
            "email": "mallory-victim@example.com",
        },
        settings.JWT_SIGNING_KEY,
        algorithm="HS256",
    )
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")

    body = api_client.get("/whoami").json()

    assert "org:victims" not in body["readable"]
    assert "org:victims" not in body["owner"]
    assert "email:mallory-victim@example.com" not in body["readable"]
    assert "org:acme" in body["readable"]
