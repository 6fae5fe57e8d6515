"""Restricted look-ups compiled to SQL once per process, for paths that run on every map tile.

Building a restricted queryset's SQL costs Django ~0.6 ms per statement (the access rule's OR of array tests,
every column of a wide model), more than PostgreSQL needs to run it. A `PreparedLookup` builds its queryset
once with marker values in place of the caller's principals and of the look-up's arguments, compiles it, and
afterwards only swaps the real values into the parameter list. The filter is the same `access_q` rule that
`restrict()` applies (one parameter per principal array, see catalogsite.permissions), so there is still one
access rule; superusers and anonymous users, whose filters have another shape, go through `restrict()`.

    visible_image = PreparedLookup(Image, Action.VIEW, lambda qs, image_id: qs.filter(pk=image_id))
    images = visible_image(user, image_id="org:product:scene")   # a list of model instances

Arguments are scalars (compared by equality) or lists/tuples, which the build function must use as ONE
array parameter — `any_of(field, values)` below — never `__in`, whose SQL has one placeholder per element.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any

from django.db import connections, models
from django.db.models import Q
from django.db.models.expressions import RawSQL

from accounts.principals import Principals, principals_for

from .permissions import access_q

_MARK = "\x00tessera-prepared:"
_MARKER_PRINCIPALS = Principals(
    namespace=f"{_MARK}namespace",
    organization=None,
    is_org_admin=False,
    readable=frozenset({f"{_MARK}readable"}),
    owner=frozenset({f"{_MARK}owner"}),
    groups=(),
)


def any_of(field: str, values: Any, sql_type: str = "text") -> Q:
    """`field IN (SELECT unnest(%s::text[]))` with the values as one array parameter (unlike `field__in`,
    whose SQL has one placeholder per value and so changes with their number)."""
    values = [values] if isinstance(values, str) else list(values)  # a str is PreparedLookup's marker
    return Q(**{f"{field}__in": RawSQL(f"SELECT unnest(%s::{sql_type}[])", [values])})


class PreparedLookup:
    """A restricted look-up of `model` whose SQL is compiled once per process and database alias."""

    def __init__(self, model: type[models.Model], action: str, build: Callable[..., models.QuerySet]):
        self.model = model
        self.action = action
        self.build = build
        self._compiled: dict[str, tuple[str, list[Any]]] = {}
        self._lock = threading.Lock()

    def __call__(self, user, *, using: str = "default", **values: Any) -> list[models.Model]:
        principals = principals_for(user)
        if principals.is_superuser or principals.is_anonymous:
            return list(self.build(self.model.objects.using(using).restrict(user, self.action), **values))
        sql, template = self._template(using, sorted(values))
        readable, owner = sorted(principals.readable), sorted(principals.owner)
        params = []
        for param in template:
            if isinstance(param, tuple) and param[0] == _MARK:
                name = param[1]
                params.append(readable if name == "readable" else owner if name == "owner" else values[name])
            else:
                params.append(param)
        return list(self.model.objects.using(using).raw(sql, params))

    def _template(self, using: str, names: Sequence[str]) -> tuple[str, list[Any]]:
        key = f"{using}:{','.join(names)}"
        compiled = self._compiled.get(key)
        if compiled is not None:
            return compiled
        markers = {name: f"{_MARK}{name}" for name in names}
        restricted = self.model.objects.using(using).filter(access_q(_MARKER_PRINCIPALS, self.action))
        queryset = self.build(restricted, **markers)
        sql, raw_params = queryset.query.get_compiler(using, connections[using]).as_sql()
        by_marker = {f"{_MARK}readable": "readable", f"{_MARK}owner": "owner"}
        by_marker.update({marker: name for name, marker in markers.items()})
        template: list[Any] = []
        for param in raw_params:
            name = self._marker_name(param, by_marker)
            template.append((_MARK, name) if name else param)
        missing = set(names) - {p[1] for p in template if isinstance(p, tuple) and p and p[0] == _MARK}
        if missing:
            raise ValueError(f"{self.model.__name__} look-up does not use {sorted(missing)} as parameters.")
        with self._lock:
            self._compiled[key] = (sql, template)
        return sql, template

    @staticmethod
    def _marker_name(param: Any, by_marker: dict[str, str]) -> str | None:
        if isinstance(param, str):
            return by_marker.get(param)
        if isinstance(param, list) and len(param) == 1 and isinstance(param[0], str):
            return by_marker.get(param[0])  # a principals array or a list argument given as [marker]
        return None
