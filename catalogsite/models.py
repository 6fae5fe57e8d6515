"""Shared base for catalog objects: timestamps, tags, extra properties and the ACL columns."""

from __future__ import annotations

from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.indexes import GinIndex
from django.db import models

from accounts.principals import principals_for

from .permissions import access_q


class CatalogQuerySet(models.QuerySet):
    def restrict(self, user, action: str = "view") -> CatalogQuerySet:
        """Only the rows `user` may perform `action` on (the access chokepoint)."""
        q = access_q(principals_for(user), action)
        return self if q is None else self.filter(q)


class CatalogObject(models.Model):
    """Columns every catalog object has (protocol §4.1), with ACLs stored as GIN-indexed arrays."""

    created = models.DateTimeField(auto_now_add=True, db_index=True)
    modified = models.DateTimeField(auto_now=True, db_index=True)
    tags = ArrayField(models.CharField(max_length=1000), default=list, blank=True)
    extra_properties = models.JSONField(default=dict, blank=True)
    owners = ArrayField(models.CharField(max_length=300), default=list, blank=True)
    readers = ArrayField(models.CharField(max_length=300), default=list, blank=True)
    writers = ArrayField(models.CharField(max_length=300), default=list, blank=True)

    objects = CatalogQuerySet.as_manager()

    class Meta:
        abstract = True

    @classmethod
    def acl_indexes(cls, prefix: str) -> list[GinIndex]:
        return [
            GinIndex(fields=["owners"], name=f"{prefix}_owners_gin"),
            GinIndex(fields=["readers"], name=f"{prefix}_readers_gin"),
            GinIndex(fields=["writers"], name=f"{prefix}_writers_gin"),
            GinIndex(fields=["tags"], name=f"{prefix}_tags_gin"),
        ]
