"""Management commands: scriptable, idempotent, with clear errors."""

import stat
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from accounts.choices import MembershipRole
from accounts.models import EmailAddress, Membership, Organization, RefreshToken, User
from accounts.principals import principals_for
from accounts.tokens import decode_access_token, refresh_token_exchange, refresh_token_revoke
from tests.factories import OrganizationFactory, make_user

pytestmark = pytest.mark.django_db


def run(*args, **options) -> str:
    out = StringIO()
    call_command(*args, stdout=out, **options)
    return out.getvalue()


def test_create_org_prints_the_slug_and_updates_the_name_when_run_again():
    assert run("create_org", "acme", "--name", "Acme") == "acme\n"
    assert run("create_org", "acme", "--name", "Acme Corp") == "acme\n"

    assert Organization.objects.get().name == "Acme Corp"


def test_create_org_refuses_reserved_and_invalid_slugs():
    with pytest.raises(CommandError, match="reserved"):
        run("create_org", "internal")
    with pytest.raises(CommandError, match="lowercase"):
        run("create_org", "Acme")
    assert not Organization.objects.exists()


def test_create_user_with_org_admin_and_groups():
    OrganizationFactory(slug="acme")

    output = run(
        "create_user",
        "alice",
        "--email",
        "Alice@Example.com",
        "--org",
        "acme",
        "--org-admin",
        "--group",
        "analysts",
        "--group",
        "viewers",
    )

    assert output == "alice\n"
    user = User.objects.get(username="alice")
    membership = Membership.objects.get(user=user)
    assert (membership.organization.slug, membership.role) == ("acme", MembershipRole.ADMIN)
    assert EmailAddress.objects.filter(user=user, email="alice@example.com", is_verified=True, is_primary=True).exists()
    assert not user.has_usable_password()
    principals = principals_for(user)
    assert principals.groups == ("acme:analysts", "acme:viewers", "acme:org-admin")
    assert "org:acme" in principals.owner


def test_create_user_again_adds_groups_and_sets_the_role_from_the_flags():
    OrganizationFactory(slug="acme")
    run("create_user", "alice", "--email", "alice@example.com", "--org", "acme", "--org-admin", "--group", "a")

    run(
        "create_user",
        "alice",
        "--email",
        "alice@example.com",
        "--org",
        "acme",
        "--group",
        "b",
        "--password",
        "a-Long-enough-passphrase",
    )

    user = User.objects.get(username="alice")
    assert Membership.objects.get(user=user).role == MembershipRole.MEMBER
    assert principals_for(user).groups == ("acme:a", "acme:b")
    assert user.check_password("a-Long-enough-passphrase")
    assert User.objects.count() == 1


def test_create_user_errors_are_command_errors():
    make_user("bob", email="taken@example.com")

    with pytest.raises(CommandError, match="create_org"):
        run("create_user", "alice", "--email", "alice@example.com", "--org", "nowhere")
    with pytest.raises(CommandError, match="another user"):
        run("create_user", "alice", "--email", "taken@example.com")
    with pytest.raises(CommandError, match="no organization"):
        run("create_user", "alice", "--email", "alice@example.com", "--group", "analysts")
    assert not User.objects.filter(username="alice").exists()


def test_issue_token_prints_only_a_decodable_jwt():
    alice = make_user("alice", org="acme")

    output = run("issue_token", "alice")

    assert output.endswith("\n")
    token = output.strip()
    assert "\n" not in token and token.count(".") == 2
    assert decode_access_token(token)["sub"] == alice.subject


def test_issue_token_lifetime_and_errors():
    make_user("alice")
    inactive = make_user("bob")
    inactive.is_active = False
    inactive.save()

    claims = decode_access_token(run("issue_token", "alice", "--expires-in", "60").strip())

    assert claims["exp"] - claims["iat"] == 60
    with pytest.raises(CommandError, match="positive"):
        run("issue_token", "alice", "--expires-in", "0")
    with pytest.raises(CommandError, match="does not exist"):
        run("issue_token", "nobody")
    with pytest.raises(CommandError, match="inactive"):
        run("issue_token", "bob")


@pytest.fixture
def demo_base_dir(settings, tmp_path, monkeypatch):
    """bootstrap_demo writes its secrets under BASE_DIR/var; keep them in a temporary directory."""
    settings.BASE_DIR = tmp_path
    monkeypatch.delenv("DEMO_PASSWORD", raising=False)
    return tmp_path


def _snippet_value(output: str, name: str) -> str:
    line = next(line for line in output.splitlines() if line.startswith(f"export {name}="))
    return line.split("=", 1)[1]


def test_bootstrap_demo_is_idempotent_and_prints_a_working_snippet(demo_base_dir, settings):
    first = run("bootstrap_demo", "--base-url", "http://tessera.test:8000/")
    second = run("bootstrap_demo", "--base-url", "http://tessera.test:8000")

    admin = User.objects.get(username="admin")
    assert User.objects.count() == 1
    assert admin.is_superuser and admin.is_staff
    assert Organization.objects.get().name == "Demo organization"
    assert Membership.objects.get(user=admin).role == MembershipRole.ADMIN
    password_file = demo_base_dir / "var" / "demo_password"
    password = password_file.read_text().strip()
    assert stat.S_IMODE(password_file.stat().st_mode) == 0o600
    assert admin.check_password(password)
    assert RefreshToken.objects.count() == 1

    for output in (first, second):
        assert "http://tessera.test:8000/admin/" in output
        assert "http://tessera.test:8000/api/docs" in output
        assert f"Password:  {password}" in output
        assert "pip install 'descarteslabs==3.2.2' 'setuptools<81'" in output
        assert _snippet_value(output, "DESCARTESLABS_CATALOG_V2_URL") == (
            f"http://tessera.test:8000/{settings.CATALOG_URL_PREFIX}"
        )
        assert _snippet_value(output, "DESCARTESLABS_RASTER_URL") == "http://tessera.test:8000/raster/v2"
        assert _snippet_value(output, "DESCARTESLABS_IAM_URL") == "http://tessera.test:8000"
        assert "unset CLIENT_ID DESCARTESLABS_CLIENT_ID" in output
        assert "print(list(Product.search().limit(5)))" in output
        claims = decode_access_token(_snippet_value(output, "DESCARTESLABS_TOKEN"))
        assert claims["sub"] == admin.subject
        assert claims["org"] == "demo"
        assert claims["exp"] - claims["iat"] == 24 * 3600

    refresh_token = _snippet_value(second, "DESCARTESLABS_REFRESH_TOKEN")
    assert refresh_token == _snippet_value(first, "DESCARTESLABS_REFRESH_TOKEN")
    access = refresh_token_exchange(raw=refresh_token, client_id=_snippet_value(second, "DESCARTESLABS_CLIENT_ID"))
    assert decode_access_token(access)["aud"] == "tessera-demo"


def test_bootstrap_demo_replaces_a_revoked_refresh_token(demo_base_dir):
    first = _snippet_value(run("bootstrap_demo"), "DESCARTESLABS_REFRESH_TOKEN")
    refresh_token_revoke(token=RefreshToken.objects.get())

    second = _snippet_value(run("bootstrap_demo"), "DESCARTESLABS_REFRESH_TOKEN")

    assert second != first
    assert (demo_base_dir / "var" / "demo_refresh_token").read_text().strip() == second
    assert RefreshToken.objects.filter(revoked_at__isnull=True).count() == 1


def test_bootstrap_demo_takes_the_password_from_the_environment(demo_base_dir, monkeypatch):
    monkeypatch.setenv("DEMO_PASSWORD", "Another-long-demo-passphrase")

    output = run("bootstrap_demo")

    assert "Password:  Another-long-demo-passphrase   (from DEMO_PASSWORD)" in output
    assert User.objects.get(username="admin").check_password("Another-long-demo-passphrase")
    assert not (demo_base_dir / "var" / "demo_password").exists()


def test_bootstrap_demo_refuses_a_base_url_without_scheme(demo_base_dir):
    with pytest.raises(CommandError, match="http"):
        run("bootstrap_demo", "--base-url", "tessera.test")
    assert not User.objects.exists()
