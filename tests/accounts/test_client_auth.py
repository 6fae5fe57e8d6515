"""The unmodified descarteslabs 3.2.2 client gets its tokens from `POST /token` and reads our claims as we do."""

import pytest
from descarteslabs.auth import Auth
from descarteslabs.exceptions import UnauthorizedError
from django.urls import resolve

from accounts.principals import principals_for
from accounts.tokens import decode_access_token, refresh_token_create, refresh_token_revoke
from tests.factories import make_user

CLIENT_ID = "tessera-test-client"


def _client_auth(live_server, raw_refresh_token: str) -> Auth:
    # token_info_path=None: no reading or writing of ~/.descarteslabs caches.
    return Auth(domain=live_server.url, client_id=CLIENT_ID, refresh_token=raw_refresh_token, token_info_path=None)


def test_site_urlconf_serves_the_token_endpoint_at_the_root():
    assert resolve("/token", urlconf="catalogsite.urls").url_name == "token"


@pytest.mark.urls("tests.accounts.urlconf")
def test_client_refreshes_and_derives_the_same_principals(live_server, transactional_db):
    alice = make_user("alice", org="acme", groups=["analysts"])
    _, raw = refresh_token_create(user=alice)
    principals = principals_for(alice)

    auth = _client_auth(live_server, raw)
    token = auth.token

    assert decode_access_token(token)["aud"] == CLIENT_ID
    assert auth.namespace == alice.namespace
    assert auth.payload["org"] == "acme"
    assert set(auth.all_owner_acl_subjects) == principals.owner
    # The server also matches `access-id:` reader entries, which the client leaves out of its own list.
    assert set(auth.all_acl_subjects) == {p for p in principals.readable if not p.startswith("access-id:")}


@pytest.mark.urls("tests.accounts.urlconf")
def test_client_sees_org_admins_and_resource_admins_as_owners_like_the_server(live_server, transactional_db):
    boss = make_user("boss", org="acme", org_admin=True, groups=["resource-admin"])
    _, raw = refresh_token_create(user=boss)

    auth = _client_auth(live_server, raw)

    assert (
        set(auth.all_owner_acl_subjects)
        == principals_for(boss).owner
        == {
            f"user:{boss.namespace}",
            "org:acme",
            "access-id:acme",
        }
    )


@pytest.mark.urls("tests.accounts.urlconf")
def test_client_reports_a_revoked_refresh_token(live_server, transactional_db):
    token, raw = refresh_token_create(user=make_user("alice", org="acme"))
    refresh_token_revoke(token=token)

    with pytest.raises(UnauthorizedError, match="invalid_grant"):
        _ = _client_auth(live_server, raw).token
