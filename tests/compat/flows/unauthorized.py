"""A well-formed but unacceptable access token (forged signature, or a deactivated user): 401.

The client cannot tell (it never verifies signatures), so it sends the token and must get
`UnauthorizedError`, for reads and writes alike. Inputs: none besides DESCARTESLABS_TOKEN.
"""

from __future__ import annotations

from _flowlib import raises, run, step, unique
from descarteslabs.catalog import Product
from descarteslabs.exceptions import UnauthorizedError


def main() -> None:
    step("every request with the token is refused with 401")
    with raises(UnauthorizedError, "search"):
        Product.search().count()
    with raises(UnauthorizedError, "get"):
        Product.get("compat-org1:anything")
    with raises(UnauthorizedError, "create"):
        Product(id=unique("compat-unauthorized"), name="Should not exist").save()


if __name__ == "__main__":
    run(main)
