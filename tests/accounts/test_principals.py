"""Principals are computed from database rows (protocol §7.1, security notes §0.2)."""

import pytest
from django.contrib.auth.models import AnonymousUser

from accounts.models import Membership, User
from accounts.principals import ANONYMOUS, forget_principals, principals_for, user_for_subject
from tests.factories import EmailAddressFactory, UserFactory, make_user

pytestmark = pytest.mark.django_db


def test_member_reads_as_user_email_and_org_but_owns_only_as_user():
    alice = make_user("alice", org="acme")

    principals = principals_for(alice)

    assert principals.readable == {f"user:{alice.namespace}", "email:alice@example.com", "org:acme"}
    assert principals.owner == {f"user:{alice.namespace}"}
    assert principals.organization == "acme"
    assert principals.is_org_admin is False
    assert principals.groups == ()


def test_org_admin_owns_as_org_and_gets_the_org_admin_group():
    boss = make_user("boss", org="acme", org_admin=True)

    principals = principals_for(boss)

    assert principals.owner == {f"user:{boss.namespace}", "org:acme"}
    assert "org:acme" in principals.readable
    assert principals.groups == ("acme:org-admin",)
    assert principals.is_org_admin is True


def test_unverified_email_is_not_a_principal():
    user = make_user("carol", org="acme")
    EmailAddressFactory(user=user, email="Carol.Private@Example.org", is_verified=False)
    EmailAddressFactory(user=user, email="Carol.Work@Example.org", is_verified=True)
    forget_principals(user)

    readable = principals_for(user).readable

    assert "email:carol.private@example.org" not in readable
    assert "email:carol.work@example.org" in readable


def test_groups_give_group_and_access_id_principals_and_resource_admin_owns_the_access_id():
    user = make_user("dave", org="acme", groups=["analysts", "resource-admin"])

    principals = principals_for(user)

    assert {"group:acme:analysts", "access-id:acme:analysts"} <= principals.readable
    assert "access-id:acme" in principals.owner
    assert "access-id:acme:analysts" not in principals.owner
    assert principals.groups == ("acme:analysts", "acme:resource-admin")


def test_user_without_organization_has_no_org_principal():
    user = UserFactory(username="loner")

    principals = principals_for(user)

    assert principals.organization is None
    assert not any(p.startswith("org:") for p in principals.readable)
    assert principals.readable == {f"user:{user.namespace}", "email:loner@example.com"}


def test_anonymous_and_inactive_users_hold_no_principals():
    inactive = make_user("gone", org="acme")
    inactive.is_active = False

    assert principals_for(AnonymousUser()) is ANONYMOUS
    assert principals_for(inactive) is ANONYMOUS
    assert principals_for(None).readable == frozenset()


def test_principals_follow_the_database_after_forget():
    user = make_user("erin", org="acme", org_admin=True)
    assert "org:acme" in principals_for(user).owner

    Membership.objects.filter(user=user).delete()
    forget_principals(user)

    assert "org:acme" not in principals_for(user).readable
    assert principals_for(user).owner == {f"user:{user.namespace}"}


def test_user_for_subject_loads_the_user_and_its_principals_in_one_statement(django_assert_num_queries):
    people = [
        make_user("solo"),
        make_user("member", org="acme", groups=["team", "resource-admin"]),
        make_user("boss", org="acme", org_admin=True),
    ]
    for person in people:
        with django_assert_num_queries(1):
            loaded = user_for_subject(person.subject)
            principals = principals_for(loaded)  # already computed: no second statement
        assert loaded.pk == person.pk and loaded.username == person.username and loaded.subject == person.subject
        assert principals == principals_for(User.objects.get(pk=person.pk))
    assert user_for_subject("no-such-subject") is None
    people[0].is_active = False
    people[0].save()
    assert principals_for(user_for_subject(people[0].subject)).is_anonymous
