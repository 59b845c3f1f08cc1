"""Queries a hot endpoint runs on every request, compiled to SQL once per process instead of on
every call: Django spends ten times longer turning a QuerySet into SQL than SQLite spends
running it, and most of a status GET went there.

The SQL is still Django's own: the QuerySet is built once with a placeholder for each parameter,
compiled for the database at hand, and its parameter positions remembered; each call runs that
SQL with the real values through Django's cursor (so query logging, `assertNumQueries` and
tracing see it), and converts each column as the QuerySet would have (datetimes, JSON). Only
`values_list()` QuerySets whose parameters are compared for equality are accepted: the
placeholders must reach the SQL unchanged, which is checked when compiling."""

import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any, TypeVar

from django.db import DEFAULT_DB_ALIAS, connections
from django.db.models import Model, QuerySet
from django.db.models.base import ModelState
from django.db.models.query_utils import DeferredAttribute
from django.db.models.signals import post_init, pre_init

M = TypeVar("M", bound=Model)


@dataclass(frozen=True)
class _Compiled:
    sql: str  # with named placeholders, %(p0)s, %(p1)s ...
    # Per SQL parameter: the name of the call's value to put there, or None to keep `constants`'.
    slots: tuple[str | None, ...]
    constants: tuple[Any, ...]
    converters: tuple[tuple[int, tuple[Callable[..., Any], ...], Any], ...]  # (column, functions, expression)


class PreparedQuery:
    """`build(**placeholders)` returns a `values_list()` QuerySet filtered on those values;
    `rows(**values)` runs it with real ones and returns its rows, converted.

        by_tracking_id = PreparedQuery(
            lambda tenant_id, tracking_id: Submission.objects.filter(
                tenant_id=tenant_id, tracking_id=tracking_id
            ).values_list("pk", "stage"),
            params=("tenant_id", "tracking_id"),
        )
        by_tracking_id.rows(tenant_id="tenant_a", tracking_id="trk_...")"""

    def __init__(self, build: Callable[..., QuerySet[Any, Any]], *, params: Sequence[str]) -> None:
        self._build = build
        self._params = tuple(params)
        self._compiled: dict[str, _Compiled] = {}
        self._lock = threading.Lock()

    def rows(self, *, using: str = DEFAULT_DB_ALIAS, **values: Any) -> list[tuple[Any, ...]]:
        if values.keys() != set(self._params):
            raise TypeError(f"expected the values of {sorted(self._params)}, got {sorted(values)}")
        compiled = self._compiled.get(using) or self._compile(using)
        params = {
            f"p{n}": values[slot] if slot is not None else constant
            for n, (slot, constant) in enumerate(zip(compiled.slots, compiled.constants, strict=True))
        }
        connection = connections[using]
        with connection.cursor() as cursor:
            cursor.execute(compiled.sql, params)
            fetched = cursor.fetchall()
        if not compiled.converters:
            return [tuple(row) for row in fetched]
        converted = []
        for row in fetched:
            row = list(row)
            for column, functions, expression in compiled.converters:
                value = row[column]
                for function in functions:
                    value = function(value, expression, connection)
                row[column] = value
            converted.append(tuple(row))
        return converted

    def sql(self, using: str = DEFAULT_DB_ALIAS) -> str:
        """The compiled SQL, with %(p0)s, %(p1)s ... for its parameters (for tests and EXPLAIN)."""
        return (self._compiled.get(using) or self._compile(using)).sql

    def _compile(self, using: str) -> _Compiled:
        with self._lock:
            if using in self._compiled:
                return self._compiled[using]
            placeholders = {name: f"\x00prepared:{name}\x00" for name in self._params}
            queryset = self._build(**placeholders)
            compiler = queryset.query.get_compiler(using=using)
            sql, params = compiler.as_sql()
            by_placeholder = {placeholder: name for name, placeholder in placeholders.items()}
            slots = tuple(by_placeholder.get(p) if isinstance(p, str) else None for p in params)
            missing = set(self._params) - set(slots)
            if missing:
                raise ValueError(f"parameters {sorted(missing)} do not reach the SQL unchanged: {sql}")
            fields = [column[0] for column in compiler.select[: compiler.col_count]]
            converters = tuple(
                (column, tuple(functions), expression)
                for column, (functions, expression) in sorted(compiler.get_converters(fields).items())
            )
            compiled = _Compiled(
                sql=_named(sql, len(params)), slots=slots, constants=tuple(params), converters=converters
            )
            self._compiled[using] = compiled
            return compiled


_PLACEHOLDER = re.compile(r"%%|%s")


def _named(sql: str, count: int) -> str:
    """Django's "format" placeholders (%s; %% a percent sign) as "pyformat" ones (%(p0)s ...),
    which every backend takes with a dict of values. On SQLite, Django turns format placeholders
    into SQLite's with a regular expression over the whole statement, on every call: longer than
    SQLite takes to run it. Named ones it fills in with Python's % instead."""
    numbers = iter(range(count + 1))
    named = _PLACEHOLDER.sub(lambda m: "%%" if m[0] == "%%" else f"%(p{next(numbers)})s", sql)
    if next(numbers) != count:
        raise ValueError(f"{count} parameters, other placeholders: {sql}")
    return named


def model_from_row(
    model: type[M], values: Sequence[Any], *, attnames: Sequence[str] | None = None, using: str = DEFAULT_DB_ALIAS
) -> M:
    """What `model.from_db(using, attnames, values)` returns, `attnames` naming the columns of
    the row (None: all the model's concrete columns, in their order; the others are deferred,
    as with `.only()`), made the way unpickling makes an instance (Django's own
    `model_unpickle`): without running `__init__`, two to three times faster than `from_db`
    (2.5 µs against 4.5, or 8 with deferred columns, for a file's row). Models whose instances
    need `__init__` (a pre_init or post_init receiver, a field with its own descriptor, such as
    a file field) get `from_db` itself."""
    plain = _plain_attnames(model)
    names = plain if attnames is None else attnames
    if names is None or len(values) != len(names):
        raise ValueError(f"{model.__name__}: {len(values)} values for the columns {names}")
    if plain is None or pre_init.has_listeners(model) or post_init.has_listeners(model):
        return model.from_db(using, list(names), values)
    instance = model.__new__(model)
    state = ModelState()
    state.adding = False
    state.db = using
    instance.__dict__.update(zip(names, values, strict=True))
    instance._state = state
    return instance


@cache
def _plain_attnames(model: type[Model]) -> tuple[str, ...] | None:
    """The concrete fields' attribute names, or None if a field's descriptor is more than a
    plain attribute (then only `__init__` sets it right)."""
    fields = model._meta.concrete_fields
    if any(not isinstance(getattr(model, f.attname, None), DeferredAttribute) for f in fields):
        return None
    return tuple(f.attname for f in fields)
