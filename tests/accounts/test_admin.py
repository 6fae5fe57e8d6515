"""The accounts admin: pages work, tokens are created and revoked through the services, staff stay in their org."""

import re

import pytest
from django.contrib import admin
from django.test import Client, RequestFactory

from accounts.admin import GroupAdminForm, UserAdmin
from accounts.models import EmailAddress, Group, Membership, Organization, RefreshToken, User
from accounts.tokens import decode_access_token, refresh_token_create, refresh_token_exchange
from tests.factories import GroupFactory, OrganizationFactory, make_user

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.accounts.urlconf")]

MODELS = ["user", "organization", "membership", "group", "emailaddress", "refreshtoken"]


@pytest.fixture
def superuser_client():
    admin_user = make_user("root", org="acme", org_admin=True)
    User.objects.filter(pk=admin_user.pk).update(is_staff=True, is_superuser=True)
    client = Client()
    client.force_login(User.objects.get(pk=admin_user.pk))
    return client


def _staff_request(user):
    request = RequestFactory().get("/admin/")
    request.user = user
    return request


@pytest.mark.parametrize("model", MODELS)
def test_changelist_and_add_pages_render(superuser_client, model):
    refresh_token_create(user=make_user("alice", org="acme", groups=["analysts"]))

    assert superuser_client.get(f"/admin/accounts/{model}/").status_code == 200
    assert superuser_client.get(f"/admin/accounts/{model}/add/").status_code == 200


def test_user_change_page_shows_subject_and_namespace(superuser_client):
    alice = make_user("alice", org="acme")

    page = superuser_client.get(f"/admin/accounts/user/{alice.pk}/change/").content.decode()

    assert alice.subject in page
    assert alice.namespace in page


def test_refresh_token_added_in_the_admin_is_shown_once_and_works(superuser_client):
    alice = make_user("alice", org="acme")

    response = superuser_client.post(
        "/admin/accounts/refreshtoken/add/",
        {"user": alice.pk, "name": "notebook", "expires_at_0": "", "expires_at_1": ""},
        follow=True,
    )

    assert response.status_code == 200
    raw = re.search(r"tsr_[A-Za-z0-9_-]+", response.content.decode()).group(0)
    token = RefreshToken.objects.get()
    assert (token.user, token.name) == (alice, "notebook")
    assert raw.startswith(token.prefix)
    assert decode_access_token(refresh_token_exchange(raw=raw, client_id="c"))["sub"] == alice.subject
    later = superuser_client.get(f"/admin/accounts/refreshtoken/{token.pk}/change/").content.decode()
    assert raw not in later


def test_revoke_action_revokes_the_selected_tokens_only(superuser_client):
    alice = make_user("alice", org="acme")
    chosen, _ = refresh_token_create(user=alice)
    kept, _ = refresh_token_create(user=alice)

    response = superuser_client.post(
        "/admin/accounts/refreshtoken/", {"action": "revoke_selected", "_selected_action": [chosen.pk]}
    )

    assert response.status_code == 302
    chosen.refresh_from_db()
    kept.refresh_from_db()
    assert chosen.revoked_at is not None
    assert kept.revoked_at is None


def test_membership_saved_in_the_admin_goes_through_the_service(superuser_client):
    alice = make_user("alice", org="acme", groups=["analysts"])
    globex = OrganizationFactory(slug="globex")
    membership = Membership.objects.get(user=alice)

    response = superuser_client.post(
        f"/admin/accounts/membership/{membership.pk}/change/", {"organization": globex.pk, "role": "member"}
    )

    assert response.status_code == 302
    assert Membership.objects.get(user=alice).organization == globex
    assert not Group.objects.filter(members=alice).exists()


def test_organization_admin_refuses_reserved_slugs(superuser_client):
    response = superuser_client.post(
        "/admin/accounts/organization/add/",
        {"slug": "internal", "name": "", "memberships-TOTAL_FORMS": "0", "memberships-INITIAL_FORMS": "0"},
    )

    assert response.status_code == 200
    assert "reserved" in response.content.decode()
    assert not Organization.objects.filter(slug="internal").exists()


def test_group_form_refuses_members_of_other_organizations():
    acme = OrganizationFactory(slug="acme")
    insider = make_user("alice", org="acme")
    outsider = make_user("mallory", org="globex")

    form = GroupAdminForm(data={"organization": acme.pk, "name": "analysts", "members": [insider.pk, outsider.pk]})

    assert not form.is_valid()
    assert "mallory" in str(form.errors["members"])
    assert "alice" not in str(form.errors["members"])


def test_group_form_refuses_the_reserved_org_admin_name():
    acme = OrganizationFactory(slug="acme")

    form = GroupAdminForm(data={"organization": acme.pk, "name": "org-admin", "members": []})

    assert not form.is_valid()
    assert "reserved" in str(form.errors)


@pytest.mark.parametrize(
    ("model", "visible"),
    [
        (Organization, {"acme"}),
        (Membership, {"alice", "staffer"}),
        (Group, {"acme:analysts"}),
        (EmailAddress, {"alice@example.com", "staffer@example.com"}),
        (RefreshToken, {"alice"}),
    ],
)
def test_non_superuser_staff_see_only_their_organization(model, visible):
    staffer = make_user("staffer", org="acme", org_admin=True)
    staffer.is_staff = True
    staffer.save()
    make_user("alice", org="acme", groups=["analysts"])
    make_user("mallory", org="globex", groups=["analysts"])
    for username in ("alice", "mallory"):
        refresh_token_create(user=User.objects.get(username=username))
    label = {Membership: lambda m: m.user.username, RefreshToken: lambda t: t.user.username}.get(model, str)

    rows = admin.site._registry[model].get_queryset(_staff_request(staffer))

    assert {label(row) for row in rows} == visible


def test_non_superuser_staff_cannot_see_superusers_or_grant_admin_rights():
    staffer = make_user("staffer", org="acme", org_admin=True)
    staffer.is_staff = True
    staffer.save()
    root = make_user("root", org="acme")
    User.objects.filter(pk=root.pk).update(is_superuser=True, is_staff=True)
    make_user("alice", org="acme")
    user_admin = admin.site._registry[User]
    request = _staff_request(staffer)

    usernames = set(user_admin.get_queryset(request).values_list("username", flat=True))
    readonly = user_admin.get_readonly_fields(request, staffer)

    assert usernames == {"staffer", "alice"}
    assert {"is_staff", "is_superuser", "groups", "user_permissions"} <= set(readonly)
    assert isinstance(user_admin, UserAdmin)


def test_staff_without_organization_see_nothing():
    staffer = make_user("staffer")
    staffer.is_staff = True
    staffer.save()
    GroupFactory(organization=OrganizationFactory(slug="acme"), name="analysts")

    request = _staff_request(staffer)

    assert not admin.site._registry[Group].get_queryset(request).exists()
    assert not admin.site._registry[Organization].get_queryset(request).exists()


def test_non_superuser_staff_choices_are_limited_to_their_organization():
    staffer = make_user("staffer", org="acme", org_admin=True)
    staffer.is_staff = True
    staffer.save()
    make_user("alice", org="acme")
    make_user("mallory", org="globex")
    request = _staff_request(staffer)

    group_form = admin.site._registry[Group].get_form(request)()
    token_form = admin.site._registry[RefreshToken].get_form(request)()

    assert set(group_form.fields["organization"].queryset.values_list("slug", flat=True)) == {"acme"}
    assert set(group_form.fields["members"].queryset.values_list("username", flat=True)) == {"staffer", "alice"}
    assert list(token_form.fields["user"].queryset) == [staffer]
