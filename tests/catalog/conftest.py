"""Fixtures for the Catalog v2 API tests (plain helpers are in `helpers.py`)."""

from __future__ import annotations

import pytest

from tests.catalog.helpers import Api, make_product
from tests.factories import make_user


@pytest.fixture
def api(api_client, auth_client):
    """`api(user) -> Api` authenticated as `user` with a bearer token; `api(None)` is anonymous."""

    def make(user=None) -> Api:
        return Api(auth_client(user) if user is not None else api_client)

    return make


@pytest.fixture
def alice(db):
    """A plain member of organization `acme`."""
    return make_user("alice", org="acme")


@pytest.fixture
def alice_api(api, alice) -> Api:
    return api(alice)


@pytest.fixture
def alice_product(alice):
    """`acme:p`, owned by alice and the acme admins (the default ACL of a product alice creates)."""
    return make_product("acme:p", owners=[f"user:{alice.namespace}", "org:acme"], name="P")
