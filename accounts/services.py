"""Write operations on organizations, users, memberships, groups and email addresses.

The management commands, the admin and the test factories all go through these, so the rules below (reserved
namespaces, one organization per user, verified addresses only from trusted paths) hold on every path.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from django.contrib.auth import password_validation
from django.core.exceptions import ValidationError
from django.db import transaction

from .choices import MembershipRole
from .models import EmailAddress, Group, Membership, Organization, User
from .principals import forget_principals

# The client gives these prefixes meaning in JWT `groups` (`internal:platform-admin`, and the pre-3.2.2
# `descarteslabs:` spelling, protocol §0.2), so no organization may be called that.
RESERVED_ORGANIZATION_SLUGS = frozenset({"internal", "descarteslabs"})
# `<org>:org-admin` in the `groups` claim makes the client treat the holder as an owner of `org:<org>`;
# only the membership role may produce it.
RESERVED_GROUP_NAMES = frozenset({"org-admin"})
# A user's namespace is sha1(sub) in hex; an organization with such a slug would share product ids with that user.
_USER_NAMESPACE_PATTERN = re.compile(r"[0-9a-f]{40}")


def validate_organization_slug(slug: str) -> None:
    """Keep organization namespaces apart from user namespaces and from the client's special group prefixes."""
    if slug in RESERVED_ORGANIZATION_SLUGS:
        raise ValidationError({"slug": f"{slug!r} is reserved; choose another organization slug."})
    if _USER_NAMESPACE_PATTERN.fullmatch(slug):
        raise ValidationError({"slug": "40 hexadecimal characters look like a user namespace; choose another slug."})


def validate_group_name(name: str) -> None:
    """Refuse group names whose qualified form the client reads as a role."""
    if name in RESERVED_GROUP_NAMES:
        raise ValidationError({"name": f"{name!r} is reserved: make the user an organization admin instead."})


def organization_create(*, slug: str, name: str = "") -> Organization:
    """Create the organization `slug`, or rename it if it exists (when `name` is given), so scripts can re-run."""
    validate_organization_slug(slug)
    Organization(slug=slug, name=name).full_clean(validate_unique=False, validate_constraints=False)
    with transaction.atomic():
        organization, created = Organization.objects.select_for_update().get_or_create(
            slug=slug, defaults={"name": name}
        )
        if not created and name and organization.name != name:
            organization.name = name
            organization.save(update_fields=["name"])
    return organization


def email_address_set_primary(*, user: User, email: str) -> EmailAddress:
    """Record `email` as the user's verified primary address; only for trusted paths (commands, admin)."""
    email = email.strip().lower()
    with transaction.atomic():
        address = EmailAddress.objects.select_for_update().filter(email__iexact=email).first()
        if address is not None and address.user_id != user.pk:
            raise ValidationError({"email": f"{email} already belongs to another user."})
        if address is None:
            address = EmailAddress(user=user, email=email)
        address.is_verified = True
        address.is_primary = True
        address.full_clean()
        EmailAddress.objects.filter(user=user, is_primary=True).exclude(pk=address.pk).update(is_primary=False)
        address.save()
    forget_principals(user)
    return address


def membership_set(*, user: User, organization: Organization, role: str = MembershipRole.MEMBER) -> Membership:
    """Put `user` in `organization` with `role`, leaving any previous organization and its groups."""
    Membership(user=user, organization=organization, role=role).full_clean(
        validate_unique=False, validate_constraints=False
    )
    with transaction.atomic():
        membership, _ = Membership.objects.update_or_create(
            user=user, defaults={"organization": organization, "role": role}
        )
        # Groups belong to one organization: leaving it must also end the access its groups granted.
        Group.members.through.objects.filter(user=user).exclude(group__organization=organization).delete()
    forget_principals(user)
    return membership


def group_create(*, organization: Organization, name: str) -> Group:
    """Create the group `name` in `organization`, or return the existing one."""
    validate_group_name(name)
    Group(organization=organization, name=name).full_clean(validate_unique=False, validate_constraints=False)
    group, _ = Group.objects.get_or_create(organization=organization, name=name)
    return group


def group_add_member(*, group_name: str, user: User) -> Group:
    """Add `user` to the group `group_name` of their own organization, creating the group if needed."""
    membership = Membership.objects.filter(user=user).select_related("organization").first()
    if membership is None:
        raise ValidationError(f"{user.username} belongs to no organization, so cannot join group {group_name!r}.")
    with transaction.atomic():
        group = group_create(organization=membership.organization, name=group_name)
        group.members.add(user)
    forget_principals(user)
    return group


def user_create_or_update(
    *,
    username: str,
    email: str,
    organization: Organization | None = None,
    is_org_admin: bool = False,
    groups: Iterable[str] = (),
    password: str | None = None,
    is_staff: bool | None = None,
    is_superuser: bool | None = None,
) -> User:
    """Create or update an account the way an administrator describes it, so provisioning scripts can re-run.

    `email` becomes the verified primary address. With `organization` the membership is set (role from
    `is_org_admin`); without it the membership is kept, `is_org_admin=True` promotes and `groups` are joined in
    the current organization. Without `password` a new user gets an unusable one and an existing one keeps theirs.
    `is_staff`/`is_superuser` left at None are not changed.
    """
    groups = list(groups)
    with transaction.atomic():
        user = User.objects.select_for_update().filter(username=username).first()
        created = user is None
        if user is None:
            user = User(username=username)
        user.email = email.strip().lower()
        if is_staff is not None:
            user.is_staff = is_staff
        if is_superuser is not None:
            user.is_superuser = is_superuser
        if password is not None:
            password_validation.validate_password(password, user)
            user.set_password(password)
        elif created:
            user.set_unusable_password()
        user.full_clean()
        user.save()
        email_address_set_primary(user=user, email=user.email)

        if organization is not None:
            membership_set(
                user=user,
                organization=organization,
                role=MembershipRole.ADMIN if is_org_admin else MembershipRole.MEMBER,
            )
        elif is_org_admin or groups:
            membership = Membership.objects.filter(user=user).select_related("organization").first()
            if membership is None:
                raise ValidationError(f"{username} belongs to no organization; give one for org-admin or groups.")
            if is_org_admin:
                membership_set(user=user, organization=membership.organization, role=MembershipRole.ADMIN)
        for group_name in groups:
            group_add_member(group_name=group_name, user=user)
    forget_principals(user)
    return user


def membership_change_role(*, membership: Membership, role: str) -> Membership:
    """Make a member an organization admin or a plain member; an organization always keeps one admin.

    Used by the organization page of the web UI, where org admins manage their own organization.
    """
    if role not in MembershipRole.values:
        raise ValidationError({"role": f"Unknown role {role!r}; use one of {MembershipRole.values}."})
    with transaction.atomic():
        admins = list(
            Membership.objects.select_for_update().filter(
                organization=membership.organization, role=MembershipRole.ADMIN
            )
        )
        if role != MembershipRole.ADMIN and [m.pk for m in admins] == [membership.pk]:
            raise ValidationError(
                f"{membership.user.username} is the only admin of {membership.organization}; "
                "make someone else an admin first."
            )
        Membership.objects.filter(pk=membership.pk).update(role=role)
        membership.role = role
    forget_principals(membership.user)
    return membership


def group_set_members(*, group: Group, users: Iterable[User]) -> Group:
    """Replace the members of `group`; every user must belong to the group's organization (fails loudly)."""
    users = list(users)
    strangers = [
        u.username for u in users if not Membership.objects.filter(user=u, organization=group.organization).exists()
    ]
    if strangers:
        raise ValidationError(
            f"{', '.join(strangers)} not in organization {group.organization}; only its members can join its groups."
        )
    with transaction.atomic():
        group.members.set(users)
    for user in users:
        forget_principals(user)
    return group


def group_delete(*, group: Group) -> None:
    """Delete a group: every `group:<org>:<name>` grant stops matching anyone at once."""
    group.delete()
