"""The ACL principals a user holds, computed from live database rows (never from token claims).

Protocol §7.1: a user reads/writes through `user:<sha1(sub)>`, `email:<verified email>`, `org:<org>`,
`group:<org>:<group>` and `access-id:<group>`; owners are matched only with `user:<ns>`, `org:<org>`
for organization admins, and `access-id:<id>` for members of `<id>:resource-admin`.
"""

from __future__ import annotations

import functools
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


@functools.cache
def _names() -> dict[str, str]:
    """Table and column names of the membership statements, read from the models."""
    from .models import EmailAddress, Group, Membership, Organization, User

    members = Group.members.through._meta
    return {
        "user": User._meta.db_table,
        "uid": User._meta.pk.column,
        "subject": User._meta.get_field("subject").column,
        "slug": Organization._meta.get_field("slug").column,
        "oid": Organization._meta.pk.column,
        "org": Organization._meta.db_table,
        "role": Membership._meta.get_field("role").column,
        "membership": Membership._meta.db_table,
        "mem_user": Membership._meta.get_field("user").column,
        "mem_org": Membership._meta.get_field("organization").column,
        "gname": Group._meta.get_field("name").column,
        "gid": Group._meta.pk.column,
        "g_org": Group._meta.get_field("organization").column,
        "group": Group._meta.db_table,
        "members": members.db_table,
        "m_group": members.get_field("group").column,
        "m_user": members.get_field("user").column,
        "email": EmailAddress._meta.get_field("email").column,
        "verified": EmailAddress._meta.get_field("is_verified").column,
        "e_user": EmailAddress._meta.get_field("user").column,
        "emails": EmailAddress._meta.db_table,
    }


# Organization, role, group names and verified emails of the user whose id is the SQL expression {who}.
_MEMBERSHIP_COLUMNS = (
    "o.{slug}, m.{role}, "
    "ARRAY(SELECT go.{slug} || ':' || g.{gname} FROM {members} gm "
    "JOIN {group} g ON g.{gid} = gm.{m_group} JOIN {org} go ON go.{oid} = g.{g_org} WHERE gm.{m_user} = {who}), "
    "ARRAY(SELECT DISTINCT lower(e.{email}) FROM {emails} e WHERE e.{e_user} = {who} AND e.{verified})"
)
# The joins that give those columns their `o` and `m`, for the user whose id is {who}.
_MEMBERSHIP_JOINS = "LEFT JOIN {membership} m ON m.{mem_user} = {who} LEFT JOIN {org} o ON o.{oid} = m.{mem_org}"


@functools.cache
def _membership_sql() -> str:
    """Membership, group names and verified emails of one user in ONE statement, built from the models' tables.

    This runs on every authenticated request. Written as SQL because the equivalent ORM annotate (two
    ArrayAggs over two joins) cost ~2 ms of query compilation per request for a statement PostgreSQL runs in
    0.2 ms; measured with bench/raster.py, where it was a visible part of a tile's time.
    """
    names = _names()
    return (
        f"SELECT {_MEMBERSHIP_COLUMNS.format(**names, who='%s')} "
        f"FROM (SELECT 1) AS one {_MEMBERSHIP_JOINS.format(**names, who='%s')}"
    )


@functools.cache
def _user_sql() -> tuple[str, tuple[str, ...]]:
    """The user with `subject` and its membership columns in one statement (bearer-token authentication)."""
    from .models import User

    names = _names()
    fields = tuple(field.attname for field in User._meta.concrete_fields)
    columns = ", ".join(f"u.{User._meta.get_field(name).column}" for name in fields)
    who = f"u.{names['uid']}"
    sql = (
        f"SELECT {columns}, {_MEMBERSHIP_COLUMNS.format(**names, who=who)} FROM {names['user']} u "
        f"{_MEMBERSHIP_JOINS.format(**names, who=who)} WHERE u.{names['subject']} = %s"
    )
    return sql, fields


def _membership_row(user_id: int) -> tuple[str | None, str | None, list[str], list[str]]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(_membership_sql(), [user_id, user_id, user_id])
        organization, role, group_names, emails = cursor.fetchone()
    return organization, role, list(group_names or []), list(emails or [])


def user_for_subject(subject: str):
    """The user of a token's `sub` with its principals already computed: one statement instead of a user
    look-up followed by `principals_for` (bearer requests run it once each). None if there is no such user."""
    from django.db import connection

    from .models import User

    sql, fields = _user_sql()
    with connection.cursor() as cursor:
        cursor.execute(sql, [subject])
        row = cursor.fetchone()
    if row is None:
        return None
    user = User.from_db(connection.alias, fields, row[: len(fields)])
    organization, role, group_names, emails = row[len(fields) :]
    if user.is_active:
        setattr(user, _CACHE_ATTRIBUTE, _principals(user, organization, role, list(group_names), list(emails)))
    return user


def principals_for(user) -> Principals:
    """Compute (once per user object) the principals of `user` from its membership, groups and emails."""
    if user is None or isinstance(user, AnonymousUser) or not getattr(user, "is_authenticated", False):
        return ANONYMOUS
    if not user.is_active:
        return ANONYMOUS
    cached = getattr(user, _CACHE_ATTRIBUTE, None)
    if cached is not None:
        return cached

    principals = _principals(user, *_membership_row(user.pk))
    setattr(user, _CACHE_ATTRIBUTE, principals)
    return principals


def _principals(
    user, organization: str | None, role: str | None, group_names: list[str], emails: list[str]
) -> Principals:
    namespace = user.namespace
    is_org_admin = bool(organization and role == MembershipRole.ADMIN)
    group_names = sorted(group_names or [])
    emails = list(emails or [])

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

    return Principals(
        namespace=namespace,
        organization=organization,
        is_org_admin=is_org_admin,
        readable=frozenset(readable | owner),
        owner=frozenset(owner),
        groups=tuple(groups),
        is_superuser=user.is_superuser,
    )


def forget_principals(user) -> None:
    """Drop the cached principals (after membership changes within one request)."""
    if hasattr(user, _CACHE_ATTRIBUTE):
        delattr(user, _CACHE_ATTRIBUTE)
