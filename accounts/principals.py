"""The ACL principals a user holds, computed from live database rows (never from token claims).

Protocol §7.1: a user reads/writes through `user:<sha1(sub)>`, `email:<verified email>`, `org:<org>`,
`group:<org>:<group>` and `access-id:<group>`; owners are matched only with `user:<ns>`, `org:<org>`
for organization admins, and `access-id:<id>` for members of `<id>:resource-admin`.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth.models import AnonymousUser

from .choices import MembershipRole

RESOURCE_ADMIN_SUFFIX = ":resource-admin"
_CACHE_ATTRIBUTE = "_tessera_principals"


@dataclass(frozen=True)
class Principals:
    """What a user may be matched as. `readable` applies to readers/writers; `owner` to owners."""

    namespace: str
    organization: str | None
    is_org_admin: bool
    readable: frozenset[str]
    owner: frozenset[str]
    groups: tuple[str, ...]
    is_superuser: bool = False

    @property
    def is_anonymous(self) -> bool:
        return not self.namespace


ANONYMOUS = Principals(
    namespace="", organization=None, is_org_admin=False, readable=frozenset(), owner=frozenset(), groups=()
)


def principals_for(user) -> Principals:
    """Compute (once per user object) the principals of `user` from its membership, groups and emails."""
    if user is None or isinstance(user, AnonymousUser) or not getattr(user, "is_authenticated", False):
        return ANONYMOUS
    if not user.is_active:
        return ANONYMOUS
    cached = getattr(user, _CACHE_ATTRIBUTE, None)
    if cached is not None:
        return cached

    from django.contrib.postgres.aggregates import ArrayAgg
    from django.db.models import F, Q, Value
    from django.db.models.functions import Concat, Lower

    from .models import User

    # One query for membership, groups and verified emails: this runs on every authenticated request.
    rows = list(
        User.objects.filter(pk=user.pk)
        .order_by()
        .values("membership__organization__slug", "membership__role")
        .annotate(
            group_names=ArrayAgg(
                Concat(F("catalog_groups__organization__slug"), Value(":"), F("catalog_groups__name")),
                filter=Q(catalog_groups__isnull=False),
                distinct=True,
                default=Value([]),
            ),
            emails=ArrayAgg(
                Lower("email_addresses__email"),
                filter=Q(email_addresses__is_verified=True),
                distinct=True,
                default=Value([]),
            ),
        )[:1]
    )
    row = rows[0] if rows else {}
    namespace = user.namespace
    organization = row.get("membership__organization__slug")
    is_org_admin = bool(organization and row.get("membership__role") == MembershipRole.ADMIN)
    group_names = sorted(row.get("group_names") or [])
    emails = list(row.get("emails") or [])

    readable = {f"user:{namespace}"}
    readable.update(f"email:{e}" for e in emails)
    if organization:
        readable.add(f"org:{organization}")
    for name in group_names:
        readable.add(f"group:{name}")
        readable.add(f"access-id:{name}")
    owner = {f"user:{namespace}"}
    if is_org_admin and organization:
        owner.add(f"org:{organization}")
    for name in group_names:
        if name.endswith(RESOURCE_ADMIN_SUFFIX):
            owner.add(f"access-id:{name[: -len(RESOURCE_ADMIN_SUFFIX)]}")
    groups = list(group_names)
    if is_org_admin and organization:
        # The token's groups carry `<org>:org-admin`, which the client turns into a `group:` subject; match it.
        groups.append(f"{organization}:org-admin")
        readable.add(f"group:{organization}:org-admin")

    principals = Principals(
        namespace=namespace,
        organization=organization,
        is_org_admin=is_org_admin,
        readable=frozenset(readable | owner),
        owner=frozenset(owner),
        groups=tuple(groups),
        is_superuser=user.is_superuser,
    )
    setattr(user, _CACHE_ATTRIBUTE, principals)
    return principals


def forget_principals(user) -> None:
    """Drop the cached principals (after membership changes within one request)."""
    if hasattr(user, _CACHE_ATTRIBUTE):
        delattr(user, _CACHE_ATTRIBUTE)
