"""`POST /token`, the refresh-token grant of protocol §6.1."""

from datetime import timedelta
from urllib.parse import urlencode

import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.models import RefreshToken
from accounts.tokens import decode_access_token, refresh_token_create, refresh_token_revoke
from tests.factories import make_user

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.accounts.urlconf")]

TOKEN_URL = "/token"


@pytest.fixture
def refresh(db):
    """A user's refresh token row and its raw secret."""
    return refresh_token_create(user=make_user("alice", org="acme"))


def _post(client, body, content_type="application/json"):
    return client.post(TOKEN_URL, data=body, content_type=content_type)


def test_url_is_named_token():
    assert reverse("token") == TOKEN_URL


def test_refresh_token_grant_returns_a_token_for_the_client_that_authenticates(refresh, api_client):
    token, raw = refresh
    # Exactly what descarteslabs 3.2.2 sends (protocol §6.1); enforce_csrf_checks proves the view is CSRF-exempt.
    client = Client(enforce_csrf_checks=True)

    response = client.post(
        TOKEN_URL,
        data={
            "client_id": "tessera-demo",
            "grant_type": "refresh_token",
            "refresh_token": raw,
            "scope": "openid email",
        },
        content_type="application/json",
    )

    assert response.status_code == 200
    body = response.json()
    claims = decode_access_token(body["access_token"])
    assert claims["aud"] == "tessera-demo"
    assert claims["sub"] == token.user.subject
    assert body["id_token"] == body["access_token"]
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == settings.JWT_ACCESS_TOKEN_LIFETIME
    assert response["Cache-Control"] == "no-store"
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {body['access_token']}")
    assert api_client.get("/whoami").json()["username"] == "alice"
    token.refresh_from_db()
    assert token.last_used_at is not None


def test_form_encoded_requests_are_accepted(refresh):
    _, raw = refresh

    body = urlencode({"client_id": "curl", "grant_type": "refresh_token", "refresh_token": raw})

    response = _post(Client(), body, content_type="application/x-www-form-urlencoded")

    assert response.status_code == 200
    assert decode_access_token(response.json()["access_token"])["aud"] == "curl"


def test_revoked_refresh_token_is_an_invalid_grant(refresh):
    token, raw = refresh
    refresh_token_revoke(token=token)

    response = _post(Client(), {"client_id": "c", "grant_type": "refresh_token", "refresh_token": raw})

    assert response.status_code == 401
    assert response.json()["error"] == "invalid_grant"
    assert "access_token" not in response.json()


def test_expired_refresh_token_is_an_invalid_grant(refresh):
    token, raw = refresh
    RefreshToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - timedelta(minutes=1))

    response = _post(Client(), {"client_id": "c", "grant_type": "refresh_token", "refresh_token": raw})

    assert response.status_code == 401
    assert response.json() == {"error": "invalid_grant", "error_description": "The refresh token has expired."}


def test_unknown_refresh_token_is_an_invalid_grant(refresh):
    response = _post(Client(), {"client_id": "c", "grant_type": "refresh_token", "refresh_token": "tsr_nope"})

    assert response.status_code == 401
    assert response.json()["error"] == "invalid_grant"


@pytest.mark.parametrize("body", ['{"client_id": ', "\xff\xfe", "[1, 2]", '"just a string"'])
def test_malformed_bodies_are_invalid_requests(body):
    response = _post(Client(), body)

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


@pytest.mark.parametrize(
    ("body", "missing"),
    [
        ({"grant_type": "refresh_token", "refresh_token": "tsr_x"}, "client_id"),
        ({"client_id": "c", "grant_type": "refresh_token"}, "refresh_token"),
        ({"client_id": "c", "refresh_token": "tsr_x"}, "grant_type"),
        ({"client_id": "c", "grant_type": "refresh_token", "refresh_token": 42}, "refresh_token"),
        ({"client_id": "c" * 201, "grant_type": "refresh_token", "refresh_token": "tsr_x"}, "client_id"),
        ({"client_id": "c", "grant_type": "refresh_token", "refresh_token": "tsr_x", "scope": ["a"]}, "scope"),
    ],
)
def test_missing_or_mistyped_parameters_are_invalid_requests(body, missing):
    response = _post(Client(), body)

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"
    assert missing in response.json()["error_description"]


def test_other_grant_types_are_unsupported(refresh):
    _, raw = refresh

    response = _post(Client(), {"client_id": "c", "grant_type": "password", "refresh_token": raw})

    assert response.status_code == 400
    assert response.json()["error"] == "unsupported_grant_type"


@pytest.mark.parametrize("method", ["get", "put", "delete"])
def test_only_post_is_allowed(method):
    response = getattr(Client(), method)(TOKEN_URL)

    assert response.status_code == 405
    assert response["Allow"] == "POST"
