"""Account services: the rules every interface (commands, admin, factories) relies on."""

import pytest
from django.core.exceptions import ValidationError

from accounts.choices import MembershipRole
from accounts.models import EmailAddress, Group, Membership, Organization, User
from accounts.principals import principals_for
from accounts.services import (
    email_address_set_primary,
    group_add_member,
    membership_set,
    organization_create,
    user_create_or_update,
)
from tests.factories import OrganizationFactory, UserFactory, make_user

pytestmark = pytest.mark.django_db


def test_organization_create_is_idempotent_and_renames_only_when_asked():
    first = organization_create(slug="acme", name="Acme")
    again = organization_create(slug="acme")
    renamed = organization_create(slug="acme", name="Acme Corp")

    assert first.pk == again.pk == renamed.pk
    assert again.name == "Acme"
    assert Organization.objects.get(slug="acme").name == "Acme Corp"


@pytest.mark.parametrize(
    "slug", ["internal", "descarteslabs", "0123456789abcdef0123456789abcdef01234567", "Acme", "-acme", "ac:me", ""]
)
def test_organization_slugs_that_would_be_ambiguous_are_refused(slug):
    with pytest.raises(ValidationError):
        organization_create(slug=slug)
    assert not Organization.objects.exists()


def test_user_create_records_a_verified_primary_email_and_an_unusable_password():
    user = user_create_or_update(username="alice", email=" Alice@Example.COM ")

    address = EmailAddress.objects.get(user=user)
    assert (address.email, address.is_verified, address.is_primary) == ("alice@example.com", True, True)
    assert user.email == "alice@example.com"
    assert not user.has_usable_password()


def test_user_update_keeps_the_password_and_changes_the_primary_email():
    user = user_create_or_update(username="alice", email="alice@example.com", password="a-Long-enough-passphrase")

    user = user_create_or_update(username="alice", email="alice@new.example")

    assert user.check_password("a-Long-enough-passphrase")
    assert set(EmailAddress.objects.filter(user=user).values_list("email", "is_primary")) == {
        ("alice@example.com", False),
        ("alice@new.example", True),
    }
    assert User.objects.count() == 1


def test_weak_password_is_refused():
    with pytest.raises(ValidationError):
        user_create_or_update(username="alice", email="alice@example.com", password="password")
    assert not User.objects.exists()


def test_email_of_another_user_is_refused():
    make_user("alice", email="shared@example.com")

    with pytest.raises(ValidationError, match="another user"):
        user_create_or_update(username="bob", email="Shared@Example.com")
    assert not User.objects.filter(username="bob").exists()


def test_org_admin_and_groups_without_any_organization_roll_back_everything():
    with pytest.raises(ValidationError, match="no organization"):
        user_create_or_update(username="alice", email="alice@example.com", groups=["analysts"])

    assert not User.objects.exists()
    assert not EmailAddress.objects.exists()


def test_without_organization_the_membership_is_kept_and_can_be_promoted_and_extended():
    make_user("alice", org="acme", groups=["analysts"])

    user = user_create_or_update(username="alice", email="alice@example.com", is_org_admin=True, groups=["viewers"])

    membership = Membership.objects.get(user=user)
    assert (membership.organization.slug, membership.role) == ("acme", MembershipRole.ADMIN)
    assert principals_for(user).groups == ("acme:analysts", "acme:viewers", "acme:org-admin")


def test_moving_to_another_organization_leaves_the_old_organizations_groups():
    user = make_user("alice", org="acme", groups=["analysts"])
    other = OrganizationFactory(slug="globex")

    membership_set(user=user, organization=other)

    assert Membership.objects.get(user=user).organization == other
    assert not Group.objects.filter(members=user).exists()
    assert not any(p.startswith("group:acme") for p in principals_for(user).readable)


def test_group_add_member_needs_an_organization_and_refuses_reserved_names():
    loner = UserFactory(username="loner")
    member = make_user("alice", org="acme")

    with pytest.raises(ValidationError, match="no organization"):
        group_add_member(group_name="analysts", user=loner)
    with pytest.raises(ValidationError):
        group_add_member(group_name="org-admin", user=member)
    with pytest.raises(ValidationError):
        group_add_member(group_name="acme:analysts", user=member)
    assert not Group.objects.exists()


def test_group_add_member_creates_the_group_once():
    alice = make_user("alice", org="acme")
    bob = make_user("bob", org="acme")

    first = group_add_member(group_name="analysts", user=alice)
    second = group_add_member(group_name="analysts", user=bob)

    assert first.pk == second.pk
    assert set(first.members.values_list("username", flat=True)) == {"alice", "bob"}


def test_email_address_set_primary_verifies_an_existing_unverified_address():
    user = UserFactory(username="alice", verified_email=False)
    EmailAddress.objects.create(user=user, email="alice@example.com", is_verified=False)

    email_address_set_primary(user=user, email="ALICE@example.com")

    address = EmailAddress.objects.get(user=user)
    assert address.is_verified and address.is_primary
    assert "email:alice@example.com" in principals_for(user).readable


def test_make_user_is_idempotent_and_creates_the_organization_on_demand():
    first = make_user("alice", org="acme", org_admin=True, groups=["analysts"])
    second = make_user("alice", org="acme", org_admin=True, groups=["analysts"])

    assert first.pk == second.pk
    assert Organization.objects.filter(slug="acme").count() == 1
    assert principals_for(second).groups == ("acme:analysts", "acme:org-admin")
