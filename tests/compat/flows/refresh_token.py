"""The refresh-token login: no access token in the environment, only a client id and a refresh token.

The client POSTs {iam_url}/token with the refresh token, gets a JWT whose `aud` is the client id, and uses
it for the catalog. Inputs: COMPAT_ORG, COMPAT_CLIENT_ID.
"""

from __future__ import annotations

import os

from _flowlib import env, note, run, step, unique
from descarteslabs.auth import Auth
from descarteslabs.catalog import Product
from descarteslabs.catalog import properties as p


def main() -> None:
    org = env("COMPAT_ORG")
    client_id = env("COMPAT_CLIENT_ID")
    assert "DESCARTESLABS_TOKEN" not in os.environ, "this flow must start without an access token"
    assert os.environ.get("DESCARTESLABS_REFRESH_TOKEN"), "DESCARTESLABS_REFRESH_TOKEN is not set"

    step("the client exchanges the refresh token for an access token")
    auth = Auth.get_default_auth()
    token = auth.token
    assert token and token.count(".") == 2, f"expected a JWT from POST /token, got {token!r}"
    payload = auth.payload
    assert payload.get("aud") == client_id, f"token aud {payload.get('aud')!r}, expected {client_id!r}"
    assert payload.get("org") == org, f"token org {payload.get('org')!r}, expected {org!r}"
    assert "exp" in payload and "sub" in payload, f"token claims {sorted(payload)}"
    note(f"claims: {sorted(payload)}")

    step("the catalog accepts the refreshed token: list, create and find a product")
    before = list(Product.search().limit(10))
    note(f"{len(before)} products visible before")
    product = Product(id=unique("compat-refresh"), name="Created after a refresh", tags=["compat-refresh"])
    product.save()
    assert product.id.startswith(f"{org}:"), f"product id {product.id!r} is not prefixed with {org!r}"
    found = [found.id for found in Product.search().filter(p.tags == "compat-refresh")]
    assert found == [product.id], f"search after refresh: {found}"
    product.delete()


if __name__ == "__main__":
    run(main)
