"""Access tokens (JWT) and refresh tokens: what is signed, what is refused."""

import hashlib
from datetime import timedelta

import jwt
import pytest
from django.conf import settings
from django.utils import timezone

from accounts.models import EmailAddress, RefreshToken
from accounts.tokens import (
    MAX_ACCESS_TOKEN_LIFETIME,
    REFRESH_TOKEN_PREFIX,
    InvalidAccessToken,
    InvalidRefreshToken,
    decode_access_token,
    issue_access_token,
    refresh_token_create,
    refresh_token_exchange,
    refresh_token_revoke,
)
from tests.factories import UserFactory, make_user

pytestmark = pytest.mark.django_db


def _claims(user, **overrides):
    now = int(timezone.now().timestamp())
    claims = {"iss": settings.JWT_ISSUER, "sub": user.subject, "iat": now, "exp": now + 600}
    claims.update(overrides)
    return {key: value for key, value in claims.items() if value is not None}


def test_issued_token_carries_the_claims_the_client_reads():
    user = make_user("alice", org="acme", org_admin=True, groups=["analysts"], email="Alice@Example.com")
    user.first_name, user.last_name = "Alice", "Liddell"
    user.save()

    claims = decode_access_token(issue_access_token(user=user))

    assert claims["sub"] == user.subject
    assert claims["iss"] == settings.JWT_ISSUER
    assert claims["email"] == "alice@example.com"
    assert claims["email_verified"] is True
    assert claims["name"] == "Alice Liddell"
    assert claims["org"] == "acme"
    assert claims["groups"] == ["acme:analysts", "acme:org-admin"]
    assert claims["exp"] - claims["iat"] == settings.JWT_ACCESS_TOKEN_LIFETIME
    assert "aud" not in claims
    assert jwt.get_unverified_header(issue_access_token(user=user))["alg"] == "HS256"


def test_token_of_user_without_organization_has_no_org_claim():
    user = UserFactory(username="loner")

    claims = decode_access_token(issue_access_token(user=user))

    assert "org" not in claims
    assert claims["groups"] == []
    assert claims["name"] == "loner"


def test_email_claim_falls_back_to_the_unverified_account_email():
    user = UserFactory(username="bob", email="Bob@Example.com", verified_email=False)

    claims = decode_access_token(issue_access_token(user=user))

    assert claims["email"] == "bob@example.com"
    assert claims["email_verified"] is False
    assert not EmailAddress.objects.filter(user=user).exists()


def test_user_without_any_email_gets_no_email_claim():
    user = UserFactory(username="robot", email="", verified_email=False)

    claims = decode_access_token(issue_access_token(user=user))

    assert "email" not in claims
    assert claims["email_verified"] is False


def test_audience_is_set_when_given_and_not_verified_on_decode():
    user = make_user("alice", org="acme")

    token = issue_access_token(user=user, audience="some-client", expires_in=120)
    claims = decode_access_token(token)

    assert claims["aud"] == "some-client"
    assert claims["exp"] - claims["iat"] == 120


@pytest.mark.parametrize("expires_in", [0, -5, MAX_ACCESS_TOKEN_LIFETIME + 1])
def test_lifetime_must_be_positive_and_capped(expires_in):
    user = make_user("alice", org="acme")

    with pytest.raises(ValueError, match="expires_in"):
        issue_access_token(user=user, expires_in=expires_in)


def test_expired_token_is_refused():
    user = make_user("alice")
    now = int(timezone.now().timestamp())
    token = jwt.encode(_claims(user, iat=now - 700, exp=now - 100), settings.JWT_SIGNING_KEY, algorithm="HS256")

    with pytest.raises(InvalidAccessToken, match="expired"):
        decode_access_token(token)


def test_token_signed_with_another_key_is_refused():
    user = make_user("alice")
    token = jwt.encode(_claims(user), "another-key-of-sufficient-length-0123456789", algorithm="HS256")

    with pytest.raises(InvalidAccessToken, match="Signature verification failed"):
        decode_access_token(token)


def test_unsigned_token_alg_none_is_refused():
    user = make_user("alice")
    token = jwt.encode(_claims(user), None, algorithm="none")

    with pytest.raises(InvalidAccessToken):
        decode_access_token(token)


def test_other_hmac_algorithm_with_the_right_key_is_refused():
    user = make_user("alice")
    token = jwt.encode(_claims(user), settings.JWT_SIGNING_KEY, algorithm="HS512")

    with pytest.raises(InvalidAccessToken, match="alg value is not allowed"):
        decode_access_token(token)


def test_wrong_issuer_is_refused():
    user = make_user("alice")
    token = jwt.encode(_claims(user, iss="someone-else"), settings.JWT_SIGNING_KEY, algorithm="HS256")

    with pytest.raises(InvalidAccessToken, match="issuer"):
        decode_access_token(token)


@pytest.mark.parametrize("missing", ["exp", "sub", "iss"])
def test_token_missing_a_required_claim_is_refused(missing):
    user = make_user("alice")
    token = jwt.encode(_claims(user, **{missing: None}), settings.JWT_SIGNING_KEY, algorithm="HS256")

    with pytest.raises(InvalidAccessToken, match=missing):
        decode_access_token(token)


def test_garbage_is_refused():
    with pytest.raises(InvalidAccessToken):
        decode_access_token("not-a-jwt")


def test_refresh_token_is_stored_as_a_hash_only():
    user = make_user("alice", org="acme")

    token, raw = refresh_token_create(user=user, name="laptop")

    assert raw.startswith(REFRESH_TOKEN_PREFIX)
    assert len(raw) > 40
    token.refresh_from_db()
    assert token.token_hash == hashlib.sha256(raw.encode()).hexdigest()
    assert raw.startswith(token.prefix)
    assert len(token.prefix) < 16
    stored = [str(value) for value in RefreshToken.objects.filter(pk=token.pk).values().get().values()]
    assert raw not in stored
    assert token.expires_at is None
    assert token.name == "laptop"


def test_refresh_token_expiry_and_invalid_lifetime():
    user = make_user("alice")

    token, _ = refresh_token_create(user=user, expires_in=3600)

    assert timedelta(minutes=59) < token.expires_at - timezone.now() <= timedelta(hours=1)
    with pytest.raises(ValueError):
        refresh_token_create(user=user, expires_in=0)
    assert RefreshToken.objects.count() == 1


def test_exchange_issues_a_token_for_the_client_and_records_use():
    user = make_user("alice", org="acme")
    token, raw = refresh_token_create(user=user)

    access = refresh_token_exchange(raw=raw, client_id="my-client")

    claims = decode_access_token(access)
    assert claims["sub"] == user.subject
    assert claims["aud"] == "my-client"
    token.refresh_from_db()
    assert token.last_used_at is not None


def test_revoked_refresh_token_cannot_be_exchanged_and_revoking_twice_keeps_the_first_time():
    user = make_user("alice")
    token, raw = refresh_token_create(user=user)

    refresh_token_revoke(token=token)
    first = token.revoked_at
    refresh_token_revoke(token=token)

    assert first is not None
    assert token.revoked_at == first
    with pytest.raises(InvalidRefreshToken, match="revoked"):
        refresh_token_exchange(raw=raw, client_id="c")


def test_expired_unknown_and_disabled_refresh_tokens_cannot_be_exchanged():
    user = make_user("alice")
    expired, expired_raw = refresh_token_create(user=user, expires_in=60)
    RefreshToken.objects.filter(pk=expired.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    _, disabled_raw = refresh_token_create(user=make_user("bob"))
    type(user).objects.filter(username="bob").update(is_active=False)

    with pytest.raises(InvalidRefreshToken, match="expired"):
        refresh_token_exchange(raw=expired_raw, client_id="c")
    with pytest.raises(InvalidRefreshToken, match="unknown"):
        refresh_token_exchange(raw=expired_raw + "x", client_id="c")
    with pytest.raises(InvalidRefreshToken, match="disabled"):
        refresh_token_exchange(raw=disabled_raw, client_id="c")
    with pytest.raises(InvalidRefreshToken, match="missing"):
        refresh_token_exchange(raw="", client_id="c")
    expired.refresh_from_db()
    assert expired.last_used_at is None
