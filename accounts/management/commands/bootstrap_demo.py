"""`manage.py bootstrap_demo [--base-url URL]`: a demo organization, an admin, and a client ready to paste.

Re-running it changes nothing but the printed access token: the password and the refresh token are kept in
`var/` (mode 600) and reused, so what it printed before keeps working.
"""

from __future__ import annotations

import os
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.utils.crypto import get_random_string

from accounts.services import organization_create, user_create_or_update
from accounts.snippets import CLIENT_INSTALL, access_token_exports, client_url_exports, refresh_token_exports
from accounts.tokens import InvalidRefreshToken, issue_access_token, refresh_token_create, refresh_token_get_usable

DEMO_ORGANIZATION_SLUG = "demo"
DEMO_ORGANIZATION_NAME = "Demo organization"
ADMIN_USERNAME = "admin"
ADMIN_EMAIL = "admin@example.com"
# The client id the descarteslabs client sends with its refresh token; it only becomes the tokens' `aud`.
DEMO_CLIENT_ID = "tessera-demo"
REFRESH_TOKEN_NAME = "descarteslabs client (bootstrap_demo)"
PASSWORD_FILE = "demo_password"
REFRESH_TOKEN_FILE = "demo_refresh_token"
SNIPPET_TOKEN_LIFETIME = 24 * 3600
PASSWORD_ALPHABET = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"


def _read_secret(path: Path) -> str | None:
    try:
        secret = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    return secret or None


def _write_secret(path: Path, secret: str) -> None:
    """Write a secret readable by its owner only (created with mode 600, never briefly wider)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        os.fchmod(handle.fileno(), 0o600)
        handle.write(secret + "\n")


def _demo_refresh_token(*, path: Path, user) -> str:
    """Reuse the refresh token an earlier run kept while it still works, else create and keep a new one."""
    raw = _read_secret(path)
    if raw is not None:
        try:
            if refresh_token_get_usable(raw=raw).user_id == user.pk:
                return raw
        except InvalidRefreshToken:
            pass  # revoked, expired or from another database: replaced below
    _, raw = refresh_token_create(user=user, name=REFRESH_TOKEN_NAME)
    _write_secret(path, raw)
    return raw


class Command(BaseCommand):
    help = (
        f"Create the '{DEMO_ORGANIZATION_SLUG}' organization and a superuser '{ADMIN_USERNAME}' administering it "
        "(password from DEMO_PASSWORD, else generated once into var/demo_password), then print how to log in "
        "and how to point the descarteslabs 3.2.2 client at this server. Safe to run again."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--base-url",
            default="http://127.0.0.1:8000",
            help="where this server is reached (default http://127.0.0.1:8000)",
        )

    def handle(self, *args, base_url, **options):
        base_url = base_url.rstrip("/")
        if not base_url.startswith(("http://", "https://")):
            raise CommandError(f"--base-url must start with http:// or https://, got {base_url!r}.")
        var_dir = Path(settings.BASE_DIR) / "var"
        password_path = var_dir / PASSWORD_FILE

        password = os.environ.get("DEMO_PASSWORD") or _read_secret(password_path)
        if password is None:
            password = get_random_string(20, PASSWORD_ALPHABET)
            _write_secret(password_path, password)
        password_source = "from DEMO_PASSWORD" if os.environ.get("DEMO_PASSWORD") else f"kept in {password_path}"

        try:
            organization = organization_create(slug=DEMO_ORGANIZATION_SLUG, name=DEMO_ORGANIZATION_NAME)
            admin = user_create_or_update(
                username=ADMIN_USERNAME,
                email=ADMIN_EMAIL,
                organization=organization,
                is_org_admin=True,
                password=password,
                is_staff=True,
                is_superuser=True,
            )
        except ValidationError as exc:
            raise CommandError(f"Cannot set up the demo: {'; '.join(exc.messages)}") from exc

        refresh_token_path = var_dir / REFRESH_TOKEN_FILE
        refresh_token = _demo_refresh_token(path=refresh_token_path, user=admin)

        access_token = issue_access_token(user=admin, expires_in=SNIPPET_TOKEN_LIFETIME)
        self.stdout.write(
            self._instructions(
                base_url=base_url,
                password=password,
                password_source=password_source,
                access_token=access_token,
                refresh_token=refresh_token,
                refresh_token_path=refresh_token_path,
            )
        )

    def _instructions(
        self,
        *,
        base_url: str,
        password: str,
        password_source: str,
        access_token: str,
        refresh_token: str,
        refresh_token_path: Path,
    ) -> str:
        client_lines = "\n".join(
            [CLIENT_INSTALL, *client_url_exports(base_url=base_url), *access_token_exports(access_token=access_token)]
        )
        refresh_lines = "\n".join(refresh_token_exports(client_id=DEMO_CLIENT_ID, refresh_token=refresh_token))
        return f"""\
Tessera demo is ready.

  Web UI:    {base_url}/
  Admin:     {base_url}/admin/
  Username:  {ADMIN_USERNAME}
  Password:  {password}   ({password_source})
  API docs:  {base_url}/api/docs

Point the descarteslabs client at this server (the token is valid for 24 hours):

{client_lines}

python - <<'EOF'
from descarteslabs.catalog import Product
print(list(Product.search().limit(5)))
EOF

Or, instead of DESCARTESLABS_TOKEN, let the client fetch fresh tokens itself with a refresh token
(kept in {refresh_token_path}; revoke it in the admin under Refresh tokens):

{refresh_lines}
"""
