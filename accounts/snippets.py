"""The shell lines that point the descarteslabs client at this server (protocol §6.4).

`manage.py bootstrap_demo` prints them for the demo admin and the web UI's API access page shows them for a
new personal refresh token, so both give exactly the same, tested instructions.
"""

from __future__ import annotations

import shlex

from django.conf import settings

CLIENT_INSTALL = "pip install 'descarteslabs==3.2.2' 'setuptools<81'"


def client_url_exports(*, base_url: str) -> list[str]:
    """Where the client finds the catalog, the raster service and the token endpoint."""
    base_url = base_url.rstrip("/")
    quote = shlex.quote
    return [
        f"export DESCARTESLABS_CATALOG_V2_URL={quote(f'{base_url}/{settings.CATALOG_URL_PREFIX}')}",
        f"export DESCARTESLABS_RASTER_URL={quote(base_url + '/raster/v2')}",
        f"export DESCARTESLABS_IAM_URL={quote(base_url)}",
    ]


def access_token_exports(*, access_token: str) -> list[str]:
    """Use a ready access token; a configured client id would make the client drop it (protocol §6.3)."""
    return [f"export DESCARTESLABS_TOKEN={access_token}", "unset CLIENT_ID DESCARTESLABS_CLIENT_ID"]


def refresh_token_exports(*, client_id: str, refresh_token: str) -> list[str]:
    """Let the client fetch fresh access tokens itself at `POST /token` with a refresh token."""
    return [
        "unset DESCARTESLABS_TOKEN CLIENT_ID CLIENT_SECRET DESCARTESLABS_CLIENT_SECRET",
        f"export DESCARTESLABS_CLIENT_ID={shlex.quote(client_id)}",
        f"export DESCARTESLABS_REFRESH_TOKEN={shlex.quote(refresh_token)}",
    ]


def client_environment_snippet(*, base_url: str, client_id: str, refresh_token: str) -> str:
    """Everything a user pastes into a shell to use the client with a personal refresh token."""
    lines = [
        CLIENT_INSTALL,
        *client_url_exports(base_url=base_url),
        *refresh_token_exports(client_id=client_id, refresh_token=refresh_token),
    ]
    return "\n".join(lines) + "\n"
