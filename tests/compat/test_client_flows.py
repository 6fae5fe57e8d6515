"""The unmodified `descarteslabs==3.2.2` client against a live Tessera server.

Each test creates its users, then runs one or more flow scripts (`flows/<name>.py`) as separate
processes configured by environment variables only. Flows assert the protocol's behaviour
(/work/shared/spec/catalog-v2-protocol.md) and the user guide's flows; a failure shows the flow's output
and the server's side of the exchange.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid

import pytest

from tests.factories import make_user

PAGE_SIZE = 5  # small, so the pagination checks cross several pages cheaply

pytestmark = [
    pytest.mark.django_db(transaction=True),
    # WhiteNoise (in the live server's middleware) warns when collectstatic never ran; irrelevant to the API.
    pytest.mark.filterwarnings("ignore:No directory at:UserWarning"),
]


@pytest.fixture
def small_pages(settings):
    settings.CATALOG_PAGE_SIZE = PAGE_SIZE
    return PAGE_SIZE


def test_products(run_flow, small_pages):
    alice = make_user("alice", org="compat-org1")
    run_flow("products", alice, COMPAT_ORG="compat-org1", COMPAT_PAGE_SIZE=small_pages).assert_ok()


def test_bands(run_flow, small_pages):
    alice = make_user("alice", org="compat-org1")
    run_flow("bands", alice, COMPAT_ORG="compat-org1").assert_ok()


def test_images(run_flow, small_pages):
    alice = make_user("alice", org="compat-org1")
    run_flow("images", alice, COMPAT_ORG="compat-org1", COMPAT_PAGE_SIZE=small_pages).assert_ok()


def test_sharing(run_flow):
    """Owner A (org1) shares with org2, a group of org3 and later B's email; C (org3) sees nothing."""
    alice = make_user("alice", org="compat-org1", email="alice@example.com")
    adam = make_user("adam", org="compat-org1", org_admin=True)
    mallory = make_user("mallory", org="compat-org1")
    bob = make_user("bob", org="compat-org2", email="bob@example.com")
    carol = make_user("carol", org="compat-org3", email="carol@example.com")
    gina = make_user("gina", org="compat-org3", groups=["analysts"])
    shared = {
        "COMPAT_OWNER_ORG": "compat-org1",
        "COMPAT_READER_ORG": "compat-org2",
        "COMPAT_READER_GROUP": "compat-org3:analysts",
        "COMPAT_WRITER_EMAIL": "bob@example.com",
        "COMPAT_PRODUCT_LOCAL_ID": f"compat-shared-{uuid.uuid4().hex[:12]}",
    }

    def step(name, user):
        run_flow("sharing", user, COMPAT_STEP=name, **shared).assert_ok()

    step("owner-create", alice)
    step("reader", bob)
    step("outsider", carol)
    step("group-reader", gina)
    step("org-member", mallory)
    step("org-admin", adam)
    step("owner-grant-writer", alice)
    step("writer", bob)
    step("outsider", carol)
    step("owner-finish", alice)
    step("revoked", bob)
    step("owner-cleanup", alice)


def test_products_without_organization(run_flow, small_pages):
    """A user outside any organization: ids are prefixed with sha1(sub), like Product.namespace_id()."""
    dave = make_user("dave")
    namespace = hashlib.sha1(dave.subject.encode()).hexdigest()
    run_flow(
        "products",
        dave,
        COMPAT_ORG=namespace,
        COMPAT_PAGE_SIZE=small_pages,
        COMPAT_SECTIONS="get_or_create,update,delete",
    ).assert_ok()


def test_pagination_links_follow_the_host(run_flow, small_pages, compat_server):
    """links.next must start with the client's base URL: reach the server as `localhost` this time.

    (The flows turn the client's "Continuation URL ... does not match" warning into an error.)
    """
    alice = make_user("alice", org="compat-org1")
    run_flow(
        "products",
        alice,
        COMPAT_ORG="compat-org1",
        COMPAT_PAGE_SIZE=small_pages,
        DESCARTESLABS_CATALOG_V2_URL=compat_server.catalog_url.replace("//127.0.0.1:", "//localhost:", 1),
        COMPAT_SECTIONS="pagination,more_filters",
    ).assert_ok()


def test_delete_related_objects(run_flow, dramatiq_worker):
    alice = make_user("alice", org="compat-org1")
    run_flow("delete", alice, COMPAT_ORG="compat-org1").assert_ok()


def test_errors(run_flow):
    alice = make_user("alice", org="compat-org1")
    run_flow("errors", alice, COMPAT_ORG="compat-org1").assert_ok()


def test_unacceptable_tokens_are_401(run_flow, settings, token_for):
    """Tokens the client accepts (JWT-shaped, unexpired) but the server must not: forged, or of a disabled user."""
    import jwt

    alice = make_user("alice", org="compat-org1")
    forged = jwt.encode(
        {
            "iss": settings.JWT_ISSUER,
            "sub": alice.subject,
            "org": "compat-org1",
            "iat": int(time.time()),
            "exp": int(time.time()) + 3600,
            "email": "alice@example.com",
            "groups": [],
        },
        "not-the-signing-key",
        algorithm="HS256",
    )
    run_flow("unauthorized", None, DESCARTESLABS_TOKEN=forged).assert_ok()

    bob = make_user("bob", org="compat-org1")
    bob_token = token_for(bob)
    bob.is_active = False
    bob.save(update_fields=["is_active"])
    run_flow("unauthorized", None, DESCARTESLABS_TOKEN=bob_token).assert_ok()


def test_refresh_token(run_flow, exchange_log):
    """No access token in the environment: the client exchanges a refresh token at POST /token first."""
    from accounts.tokens import refresh_token_create

    alice = make_user("alice", org="compat-org1")
    _, secret = refresh_token_create(user=alice, name="compat")
    run_flow(
        "refresh_token",
        None,
        DESCARTESLABS_CLIENT_ID="tessera-compat",
        DESCARTESLABS_REFRESH_TOKEN=secret,
        COMPAT_ORG="compat-org1",
        COMPAT_CLIENT_ID="tessera-compat",
    ).assert_ok()
    token_requests = [e for e in exchange_log.exchanges if (e.method, e.path) == ("POST", "/token")]
    assert [e.status for e in token_requests] == [200], "the client should have refreshed once at POST /token"
    sent = json.loads(token_requests[0].request_body)
    assert sent["grant_type"] == "refresh_token" and sent["client_id"] == "tessera-compat", sent
