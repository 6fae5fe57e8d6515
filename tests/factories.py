"""factory_boy factories for accounts, plus `make_user`, the one-line way to get a user in an organization."""

from __future__ import annotations

from collections.abc import Iterable

import factory
from django.contrib.auth.hashers import make_password
from factory.django import DjangoModelFactory

from accounts.choices import MembershipRole
from accounts.models import EmailAddress, Group, Membership, Organization, User
from accounts.services import email_address_set_primary, user_create_or_update


class OrganizationFactory(DjangoModelFactory):
    class Meta:
        model = Organization
        django_get_or_create = ("slug",)

    slug = factory.Sequence(lambda n: f"org{n}")
    name = factory.LazyAttribute(lambda o: f"Organization {o.slug}")


class UserFactory(DjangoModelFactory):
    """A user with a verified primary email (pass `verified_email=False` to skip it) and no organization."""

    class Meta:
        model = User
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda o: f"{o.username}@example.com")
    # Unusable, and cheap: API tests authenticate with tokens, never with passwords.
    password = factory.LazyFunction(lambda: make_password(None))

    @factory.post_generation
    def verified_email(self, create, extracted, **kwargs):
        if create and self.email and extracted is not False:
            email_address_set_primary(user=self, email=self.email)


class EmailAddressFactory(DjangoModelFactory):
    """An unverified, non-primary address (verified ones come from UserFactory or the services)."""

    class Meta:
        model = EmailAddress

    user = factory.SubFactory(UserFactory)
    email = factory.Sequence(lambda n: f"address{n}@example.org")
    is_verified = False
    is_primary = False


class MembershipFactory(DjangoModelFactory):
    class Meta:
        model = Membership

    user = factory.SubFactory(UserFactory)
    organization = factory.SubFactory(OrganizationFactory)
    role = MembershipRole.MEMBER


class GroupFactory(DjangoModelFactory):
    class Meta:
        model = Group
        django_get_or_create = ("organization", "name")

    organization = factory.SubFactory(OrganizationFactory)
    name = factory.Sequence(lambda n: f"group{n}")


def make_user(
    username: str,
    *,
    org: str | None = None,
    org_admin: bool = False,
    groups: Iterable[str] = (),
    email: str | None = None,
) -> User:
    """Create (or update) `username`, in organization `org` (created on demand), in `groups` of that organization.

    The email (default `<username>@example.com`) is verified, so it is an `email:` principal.
    """
    organization = OrganizationFactory(slug=org) if org else None
    return user_create_or_update(
        username=username,
        email=email or f"{username}@example.com",
        organization=organization,
        is_org_admin=org_admin,
        groups=groups,
    )
