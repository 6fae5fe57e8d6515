"""Security properties of the web UI: headers, CSP without inline scripts, CSRF, login rate limiting, and
`manage.py check --deploy` under production settings."""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse

from tests.factories import make_user

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = ROOT / "templates"


def _directives(header: str) -> dict[str, list[str]]:
    out = {}
    for part in header.split(";"):
        words = part.split()
        if words:
            out[words[0]] = words[1:]
    return out


@pytest.mark.django_db
def test_pages_send_csp_without_inline_scripts_and_deny_framing():
    user = make_user("alice", org="acme", org_admin=True)
    client = Client()
    client.force_login(user)
    for url in (
        reverse("accounts:login"),
        reverse("dashboard"),
        reverse("products:product_list"),
        reverse("uploads:image_upload_add"),
    ):
        response = client.get(url)
        assert response.status_code in (200, 302), url
        csp = _directives(response["Content-Security-Policy"])
        assert csp["script-src"] == ["'self'"], url
        assert "'unsafe-inline'" not in response["Content-Security-Policy"]
        assert "'unsafe-eval'" not in response["Content-Security-Policy"]
        assert csp["frame-ancestors"] == ["'none'"] and csp["object-src"] == ["'none'"]
        assert response["X-Frame-Options"] == "DENY"
        assert response["X-Content-Type-Options"] == "nosniff"


def test_templates_and_scripts_contain_no_inline_code():
    """CSP forbids inline scripts; the templates must not rely on any (they would silently stop working)."""
    inline_script = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.IGNORECASE)
    handler = re.compile(r"\son[a-z]+\s*=", re.IGNORECASE)
    inline_style = re.compile(r"\sstyle\s*=", re.IGNORECASE)
    for path in TEMPLATES.rglob("*.html"):
        text = path.read_text(encoding="utf-8")
        assert not inline_script.search(text), f"inline <script> in {path}"
        assert not handler.search(text), f"event handler attribute in {path}"
        assert "javascript:" not in text, f"javascript: URL in {path}"
        assert not inline_style.search(text), f"style attribute in {path} (CSP style-src 'self')"


def test_map_library_is_served_locally_with_its_license():
    leaflet = ROOT / "catalogsite" / "static" / "vendor" / "leaflet-1.9.4"
    assert (leaflet / "leaflet.js").read_text(encoding="utf-8").startswith("/* @preserve\n * Leaflet 1.9.4")
    assert "BSD 2-Clause" in (leaflet / "LICENSE").read_text(encoding="utf-8")
    for path in TEMPLATES.rglob("*.html"):
        assert "unpkg.com" not in path.read_text(encoding="utf-8") and "cdn" not in path.name


@pytest.mark.django_db
def test_forms_need_csrf_but_token_and_resumable_endpoints_stay_exempt():
    user = make_user("alice", org="acme")
    client = Client(enforce_csrf_checks=True)
    assert client.post(reverse("accounts:login"), {"username": "alice", "password": "x"}).status_code == 403
    client.force_login(user)
    assert client.post(reverse("products:product_add"), {"id": "p"}).status_code == 403
    # The API accepts the session cookie only with the CSRF header (the upload page sends it).
    api = f"/{settings.CATALOG_URL_PREFIX}/products"
    body = json.dumps({"data": {"type": "product", "id": "p", "attributes": {"name": "P"}}})
    refused = client.post(api, body, content_type="application/vnd.api+json")
    assert refused.status_code == 403 and "CSRF" in refused.content.decode()
    client.get(reverse("products:product_list"))
    token = client.cookies["csrftoken"].value
    accepted = client.post(api, body, content_type="application/vnd.api+json", HTTP_X_CSRFTOKEN=token)
    assert accepted.status_code == 201, accepted.content
    # /token and the resumable upload URL are for clients without cookies: no CSRF check there.
    anonymous = Client(enforce_csrf_checks=True)
    token_answer = anonymous.post(
        "/token",
        json.dumps({"grant_type": "refresh_token", "client_id": "c", "refresh_token": "tsr_unknown"}),
        content_type="application/json",
    )
    assert token_answer.status_code == 401 and token_answer.json()["error"] == "invalid_grant"
    put = anonymous.generic(
        "PUT",
        f"/{settings.CATALOG_URL_PREFIX}/uploads_v2/nope/files/0?token=bad",
        b"xx",
        content_type="application/octet-stream",
    )
    assert put.status_code == 403 and "CSRF" not in put.content.decode()
    assert put["Content-Type"].startswith("application/vnd.api+json")


@pytest.mark.django_db
def test_login_is_rate_limited_with_a_finite_cooloff():
    from accounts.services import user_create_or_update

    user_create_or_update(username="alice", email="alice@example.org", password="Right-password-2024")
    client = Client()
    url = reverse("accounts:login")
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        response = client.post(url, {"username": "alice", "password": "wrong"})
        assert response.status_code == 200
    locked = client.post(url, {"username": "alice", "password": "wrong"})
    assert locked.status_code == 429
    assert b"Too many failed logins" in locked.content
    # Even the right password is refused while locked...
    assert client.post(url, {"username": "alice", "password": "Right-password-2024"}).status_code == 429
    # ...but only for that username from that address, and only for the cool-off period.
    assert settings.AXES_COOLOFF_TIME.total_seconds() > 0
    other = Client(REMOTE_ADDR="10.1.2.3")
    assert other.post(url, {"username": "alice", "password": "Right-password-2024"}).status_code == 302


@pytest.mark.django_db
def test_not_found_is_html_for_pages_and_json_for_the_api():
    user = make_user("alice", org="acme")
    client = Client()
    client.force_login(user)
    browser = {"HTTP_ACCEPT": "text/html,application/xhtml+xml,*/*;q=0.8"}
    page = client.get("/products/acme:nothing/", **browser)
    assert page.status_code == 404 and page["Content-Type"].startswith("text/html")
    assert b"Not found" in page.content
    assert client.get("/no/such/page/", **browser)["Content-Type"].startswith("text/html")
    api = client.get(f"/{settings.CATALOG_URL_PREFIX}/nothing-here", **browser)
    assert api.status_code == 404 and "json" in api["Content-Type"]
    # A script without an Accept header (curl, requests) gets the JSON error anywhere.
    assert "json" in client.get("/no/such/page/")["Content-Type"]


def test_check_deploy_is_clean_under_production_settings(tmp_path):
    """`manage.py check --deploy --fail-level WARNING` with the environment of a production instance."""
    # Nothing of the test process's own set-up: the browser tests lift Django's async guard for themselves.
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("TESSERA_TESTING", "DEBUG", "DJANGO_ALLOW_ASYNC_UNSAFE")
    }
    env.update(
        {
            "DEBUG": "false",
            "SECRET_KEY": secrets.token_urlsafe(50),
            "ALLOWED_HOSTS": "catalog.example.org",
            "CSRF_TRUSTED_ORIGINS": "https://catalog.example.org",
            "SECURE_COOKIES": "true",
            "SECURE_PROXY_SSL_HEADER": "true",
            "DATABASE_URL": os.environ.get("DATABASE_URL", "postgis://postgres@127.0.0.1:5432/tessera"),
            "STATIC_ROOT": str(tmp_path / "static"),
        }
    )
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout
