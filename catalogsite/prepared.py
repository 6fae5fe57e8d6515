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
The statements run on psycopg's own cursors (so that `fetch_together` can pipeline them): they do not pass
through Django's cursor wrappers and so do not appear in `connection.queries` or CaptureQueriesContext.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
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


@dataclass(frozen=True)
class _Slot:
    """Where a parameter of the compiled statement takes the caller's "readable"/"owner" array or an argument."""

    name: str


@dataclass(frozen=True)
class _Compiled:
    sql: str
    template: list[Any]  # parameters: constants, and a _Slot where a principal array or an argument goes
    attnames: list[str]  # the model fields the SELECT lists, in order
    converters: dict  # Django's from_db converters per column (JSON, geometry, …)
    compiler: Any


class PreparedLookup:
    """A restricted look-up of `model` whose SQL is compiled once per process and database alias."""

    def __init__(self, model: type[models.Model], action: str, build: Callable[..., models.QuerySet]):
        self.model = model
        self.action = action
        self.build = build
        self._compiled: dict[str, _Compiled] = {}
        self._lock = threading.Lock()

    def __call__(self, user, *, using: str = "default", **values: Any) -> list[models.Model]:
        return fetch_together([(self, user, values)], using=using)[0]

    def _statement(self, user, using: str, values: dict[str, Any]) -> tuple[_Compiled, list[Any]] | None:
        """The compiled statement and its parameters for `user`; None where restrict() must be used."""
        principals = principals_for(user)
        if principals.is_superuser or principals.is_anonymous:
            return None
        compiled = self._template(using, sorted(values))
        readable, owner = sorted(principals.readable), sorted(principals.owner)
        params = []
        for param in compiled.template:
            if isinstance(param, _Slot):
                name = param.name
                params.append(readable if name == "readable" else owner if name == "owner" else values[name])
            else:
                params.append(param)
        return compiled, params

    def _instances(self, compiled: _Compiled, rows: list[tuple], using: str) -> list[models.Model]:
        if compiled.converters:
            rows = compiled.compiler.apply_converters(rows, compiled.converters)
        return [self.model.from_db(using, compiled.attnames, row) for row in rows]

    def _template(self, using: str, names: Sequence[str]) -> _Compiled:
        key = f"{using}:{','.join(names)}"
        compiled = self._compiled.get(key)
        if compiled is not None:
            return compiled
        markers = {name: f"{_MARK}{name}" for name in names}
        restricted = self.model.objects.using(using).filter(access_q(_MARKER_PRINCIPALS, self.action))
        queryset = self.build(restricted, **markers)
        compiler = queryset.query.get_compiler(using, connections[using])
        sql, raw_params = compiler.as_sql()
        # The SELECT lists the model's concrete fields (no annotations, no joins): rows become instances directly.
        columns = [col for col, _, _ in compiler.select]
        fields = [col.target for col in columns]
        if any(getattr(col, "alias", None) != self.model._meta.db_table for col in columns) or (
            self.model._meta.pk not in fields
        ):
            raise ValueError(f"{self.model.__name__} look-up must select the model's own columns only.")
        by_marker = {f"{_MARK}readable": "readable", f"{_MARK}owner": "owner"}
        by_marker.update({marker: name for name, marker in markers.items()})
        template: list[Any] = []
        for param in raw_params:
            name = self._marker_name(param, by_marker)
            template.append(_Slot(name) if name else param)
        missing = set(names) - {p.name for p in template if isinstance(p, _Slot)}
        if missing:
            raise ValueError(f"{self.model.__name__} look-up does not use {sorted(missing)} as parameters.")
        compiled = _Compiled(
            sql=sql,
            template=template,
            attnames=[field.attname for field in fields],
            converters=compiler.get_converters(columns),
            compiler=compiler,
        )
        with self._lock:
            self._compiled[key] = compiled
        return compiled

    @staticmethod
    def _marker_name(param: Any, by_marker: dict[str, str]) -> str | None:
        if isinstance(param, str):
            return by_marker.get(param)
        if isinstance(param, list) and len(param) == 1 and isinstance(param[0], str):
            return by_marker.get(param[0])  # a principals array or a list argument given as [marker]
        return None


def fetch_together(
    calls: Sequence[tuple[PreparedLookup, Any, dict[str, Any]]], *, using: str = "default"
) -> list[list[models.Model]]:
    """Run several prepared look-ups `(lookup, user, arguments)` in ONE round trip to PostgreSQL.

    The statements go out together in psycopg's pipeline mode and their results come back together: a map tile
    needs its image and that image's bands, and on a loaded 2-core machine each round trip costs 0.5-1 ms.
    Statements do not see each other's results, so later ones must not depend on earlier ones' rows (the bands
    of a tile are selected by the image id, not by the image's product id read back first).
    """
    statements = [(lookup, lookup._statement(user, using, values)) for lookup, user, values in calls]
    connection = connections[using]
    connection.close_if_health_check_failed()  # what Django's own cursor() does before the first query
    connection.ensure_connection()
    results: list[list[tuple] | None] = [None] * len(calls)
    pending = [(index, statement) for index, (_, statement) in enumerate(statements) if statement is not None]
    if pending:
        with connection.wrap_database_errors:
            pg = connection.connection
            with pg.pipeline() if len(pending) > 1 else contextlib.nullcontext():  # nested pipelines are fine
                cursors = []
                for _, (compiled, params) in pending:
                    cursor = pg.cursor()
                    cursor.execute(compiled.sql, params)
                    cursors.append(cursor)
            for (index, _), cursor in zip(pending, cursors, strict=True):
                results[index] = cursor.fetchall()
                cursor.close()
    out = []
    for (lookup, statement), rows, (_, user, values) in zip(statements, results, calls, strict=True):
        if statement is None:
            queryset = lookup.build(lookup.model.objects.using(using).restrict(user, lookup.action), **values)
            out.append(list(queryset))
        else:
            out.append(lookup._instances(statement[0], rows, using))
    return out
