"""Who is who: users, organizations (the product-id namespaces), memberships, groups and tokens.

Authorization never trusts token claims; it reads these rows (see `accounts.principals`).
"""

from __future__ import annotations

import hashlib
import uuid

from django.contrib.auth.models import AbstractUser
from django.core.validators import RegexValidator
from django.db import models
from django.db.models.functions import Lower

from .choices import MembershipRole

slug_validator = RegexValidator(
    r"^[a-z0-9][a-z0-9_.-]*$", "Use lowercase letters, digits, '-', '_' and '.', starting with a letter or digit."
)
group_name_validator = RegexValidator(
    r"^[a-z0-9][a-z0-9_.-]*$", "Use lowercase letters, digits, '-', '_' and '.', starting with a letter or digit."
)


def _new_subject() -> str:
    return f"tessera|{uuid.uuid4().hex}"


class User(AbstractUser):
    """A person or program. `subject` is the stable JWT `sub`; its sha1 is the user's namespace (protocol §6.3)."""

    subject = models.CharField(max_length=200, unique=True, default=_new_subject, editable=False)

    @property
    def namespace(self) -> str:
        return hashlib.sha1(self.subject.encode("utf-8")).hexdigest()

    @property
    def organization(self) -> Organization | None:
        membership = getattr(self, "membership", None)
        return membership.organization if membership else None


class Organization(models.Model):
    """A tenant. Its slug is the namespace that prefixes product ids and the `org:<slug>` ACL principal."""

    slug = models.CharField(max_length=100, unique=True, validators=[slug_validator])
    name = models.CharField(max_length=200, blank=True)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["slug"]

    def __str__(self) -> str:
        return self.slug


class Membership(models.Model):
    """A user's membership in their organization.

    One organization per user: the protocol's token carries a single `org` claim and product ids are
    prefixed with that one namespace, so a second membership would have no way to be used.
    """

    user = models.OneToOneField(User, on_delete=models.CASCADE, related_name="membership")
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=20, choices=MembershipRole.choices, default=MembershipRole.MEMBER)
    created = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.user} in {self.organization} ({self.role})"

    @property
    def is_admin(self) -> bool:
        return self.role == MembershipRole.ADMIN


class Group(models.Model):
    """A named group of users inside an organization; its principal is `group:<org>:<name>`."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="groups")
    name = models.CharField(max_length=100, validators=[group_name_validator])
    members = models.ManyToManyField(User, related_name="catalog_groups", blank=True)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["organization", "name"], name="group_unique_name_per_org")]
        ordering = ["organization__slug", "name"]

    def __str__(self) -> str:
        return self.qualified_name

    @property
    def qualified_name(self) -> str:
        return f"{self.organization.slug}:{self.name}"


class EmailAddress(models.Model):
    """An email of a user. Only verified addresses become `email:` principals (security notes §0.2)."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="email_addresses")
    email = models.EmailField(max_length=254)
    is_verified = models.BooleanField(default=False)
    is_primary = models.BooleanField(default=False)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(Lower("email"), name="emailaddress_unique_lower_email")]

    def __str__(self) -> str:
        return self.email


class RefreshToken(models.Model):
    """A long-lived, revocable credential exchanged at `POST /token` for short-lived JWTs.

    Only a sha256 of the secret is stored; the secret is shown once at creation.
    """

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="refresh_tokens")
    name = models.CharField(max_length=200, blank=True)
    prefix = models.CharField(max_length=16, db_index=True)
    token_hash = models.CharField(max_length=64, unique=True)
    created = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created"]

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.user})"
