"""New rows in bulk, for the apply rule's sync windows: one multi-row INSERT per batch.

`bulk_create` prepares each value through the SQL compiler (pre_save, get_db_prep_save,
a placeholder each), which costs more than the database itself when a sync window brings a
thousand new deposits of twenty columns (docs/measurements.md). Here each column's adapter is
chosen once per statement, from the same Django field methods, with a shorter path for the
values our typed client produces (str, aware datetime, Decimal, int, bool, None); anything
else goes through the field's own get_db_prep_save. Tests compare what this writes with what
`bulk_create` writes, column by column, on SQLite and PostgreSQL.

No signals are sent (bulk_create sends none either).
"""

from __future__ import annotations

import functools
import sqlite3
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import connection, models
from django.db.models.fields import NOT_PROVIDED

Adapter = Callable[[Any], Any]

MAX_ROWS_PER_STATEMENT = 500


def _adapter(field: models.Field) -> Adapter:
    """The field's value as the driver takes it: Django's own conversion, shortened for the
    types it leaves as they are (and NULL, which every one of them leaves as it is)."""
    kind = field.get_internal_type()

    def generic(value: Any) -> Any:
        return field.get_db_prep_save(value, connection)

    def passing(*types: type) -> Adapter:
        return lambda value: value if value is None or type(value) in types else generic(value)

    if kind in ("CharField", "TextField"):
        return passing(str)
    if kind in ("IntegerField", "BigIntegerField", "PositiveIntegerField", "SmallIntegerField"):
        return passing(int)
    if kind == "BooleanField":
        return passing(bool)
    if kind == "ForeignKey" and field.target_field.get_internal_type() in (  # type: ignore[attr-defined]
        "AutoField",
        "BigAutoField",
        "IntegerField",
        "BigIntegerField",
    ):
        return passing(int)
    if kind == "DecimalField":
        adapt_decimal = connection.ops.adapt_decimalfield_value
        digits, places = field.max_digits, field.decimal_places  # type: ignore[attr-defined]
        return lambda value: (
            adapt_decimal(value, digits, places)
            if type(value) is Decimal
            else (None if value is None else generic(value))
        )
    if kind == "DateTimeField":
        return _datetime_adapter(generic)
    return generic


def _datetime_adapter(generic: Adapter) -> Adapter:
    if connection.vendor == "sqlite" and settings.USE_TZ:
        # SQLite's adapt_datetimefield_value, for an aware datetime: naive in the
        # connection's zone, as text.
        zone = connection.timezone

        def adapt(value: Any) -> Any:
            if type(value) is datetime and value.tzinfo is not None:
                return str(value.astimezone(zone).replace(tzinfo=None))
            return None if value is None else generic(value)

        return adapt
    ops_adapt = connection.ops.adapt_datetimefield_value
    return lambda value: (
        ops_adapt(value)
        if type(value) is datetime and value.tzinfo is not None
        else (None if value is None else generic(value))
    )


def _column(model: type[models.Model], name: str) -> models.Field:
    field = model._meta.get_field(name)
    if not isinstance(field, models.Field) or not field.concrete:
        raise TypeError(f"{model.__name__}.{name} is not a column")
    return field


def _max_parameters() -> int:
    if connection.vendor == "sqlite":
        connection.ensure_connection()
        return connection.connection.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
    return 65535  # PostgreSQL's bind parameters per statement


def insert_values(
    model: type[models.Model],
    columns: Sequence[str],
    rows: Iterable[Sequence[Any]],
    *,
    returning: Sequence[str] = (),
) -> list[tuple]:
    """INSERT `rows` (values in the order of `columns`, attribute names) into `model`'s table;
    the `returning` columns of each inserted row, if asked."""
    opts = model._meta
    fields = [_column(model, name) for name in columns]
    adapters = [_adapter(f) for f in fields]
    quote = connection.ops.quote_name
    if connection.vendor == "postgresql" and not returning:
        _copy(opts.db_table, fields, adapters, rows)
        return []
    head = (
        f"INSERT INTO {quote(opts.db_table)} ({', '.join(quote(f.column) for f in fields)}) VALUES "  # noqa: S608 - names from the model's own meta
    )
    tail = (
        " RETURNING " + ", ".join(quote(_column(model, name).column) for name in returning)
        if returning
        else ""
    )
    style = _placeholder_style()
    per_statement = max(1, min(MAX_ROWS_PER_STATEMENT, _max_parameters() // len(fields)))
    out: list[tuple] = []
    batch: list[Any] = []
    count = 0

    def flush() -> None:
        nonlocal batch, count
        if not count:
            return
        with bound_cursor() if style != "qmark" else _sqlite_cursor() as cursor:
            cursor.execute(head + _values(count, len(fields), style) + tail, batch)
            if returning:
                out.extend(map(tuple, cursor.fetchall()))
        batch, count = [], 0

    for row in rows:
        batch.extend(adapt(value) for adapt, value in zip(adapters, row, strict=True))
        count += 1
        if count == per_statement:
            flush()
    flush()
    return out


def _placeholder_style() -> str:
    if connection.vendor == "postgresql":
        return "numbered"  # bound_cursor
    if connection.vendor == "sqlite" and not connection.queries_logged:
        return "qmark"  # _sqlite_cursor
    return "format"  # Django's own cursor


def _sqlite_cursor() -> Any:
    """sqlite3's own cursor, wrapped as Django wraps its own (errors, execute wrappers), for
    statements written with sqlite3's "?": Django's SQLite cursor turns each %s into "?" by a
    regular expression over the statement, thousands of them for a window of new rows.
    (With queries logged, Django's own cursor and %s: its log formats the statement with %.)"""
    connection.ensure_connection()
    return connection.make_cursor(connection.connection.cursor())


@functools.lru_cache(maxsize=32)
def _values(rows: int, columns: int, style: str) -> str:
    """The VALUES list's placeholders: %s for Django's cursors, ? for sqlite3's, $1... for
    psycopg's raw one."""
    if style != "numbered":
        mark = "?" if style == "qmark" else "%s"
        return ", ".join(["(" + ", ".join([mark] * columns) + ")"] * rows)
    return ", ".join(
        "(" + placeholders(columns, start=row * columns + 1) + ")" for row in range(rows)
    )


def _copy(
    table: str,
    fields: Sequence[models.Field],
    adapters: Sequence[Adapter],
    rows: Iterable[Sequence[Any]],
) -> None:
    """PostgreSQL's COPY ... FROM STDIN, in its binary format: no statement to parse, no
    timestamp or numeric text to read back, the rows streamed as they come. Each column's
    type is the one Django declared for it. In the connection's transaction; errors raised as
    django.db's. (Not in Django's query log: COPY does not go through its cursor's execute.)"""
    quote = connection.ops.quote_name
    columns = ", ".join(quote(f.column) for f in fields)
    statement = f"COPY {quote(table)} ({columns}) FROM STDIN (FORMAT BINARY)"
    connection.ensure_connection()
    types = [_pg_type(f) for f in fields]
    with (
        connection.wrap_database_errors,
        connection.connection.cursor() as cursor,
        cursor.copy(statement) as copy,
    ):
        copy.set_types(types)
        for row in rows:
            copy.write_row([adapt(value) for adapt, value in zip(adapters, row, strict=True)])


def _pg_type(field: models.Field) -> str:
    """The column's type as psycopg names it: Django's declaration without its modifiers
    ("varchar(24)" -> "varchar", "numeric(18, 2)" -> "numeric")."""
    declared = field.db_type(connection) or ""
    return declared.split("(")[0].strip()


def placeholders(count: int, *, start: int = 1) -> str:
    """`count` placeholders for a statement run by `bound_cursor()`: $1... on PostgreSQL."""
    if connection.vendor != "postgresql":
        return ", ".join(["%s"] * count)
    return ", ".join(f"${n}" for n in range(start, start + count))


def bound_cursor() -> Any:
    """A cursor that sends the values beside the statement, on PostgreSQL; Django's own
    elsewhere. Its statements take `placeholders()`.

    Django's psycopg cursors bind on the client: psycopg finds the %s placeholders by a regular
    expression in Python (cached only for statements under 4 KiB: a thousand rows of twenty
    columns cost several times the insert itself; bulk_create pays it too), and quotes each
    value into the text, so PostgreSQL parses and plans every statement afresh. psycopg's
    RawCursor takes PostgreSQL's own $1 placeholders, sends the values apart, and prepares a
    statement run often on the connection (webhooks/receiving.py's INSERT). Opened on the same
    connection, so in the same transaction, and wrapped as Django wraps its own cursors
    (errors raised as django.db's, queries logged).
    """
    if connection.vendor != "postgresql":
        return connection.cursor()
    import psycopg

    connection.ensure_connection()
    raw: Any = psycopg.RawCursor(connection.connection)
    if connection.queries_logged:
        return connection.make_debug_cursor(raw)
    return connection.make_cursor(raw)


def _insertable(model: type[models.Model]) -> list[models.Field]:
    opts = model._meta
    fields = [f for f in opts.concrete_fields if f is not opts.pk and not f.generated]
    if not isinstance(opts.pk, models.AutoField | models.BigAutoField | models.SmallAutoField):
        raise TypeError(f"{model.__name__}: create_many wants an auto-increment primary key")
    if any(
        getattr(f, "db_default", NOT_PROVIDED) is not NOT_PROVIDED for f in opts.concrete_fields
    ):
        raise TypeError(f"{model.__name__}: create_many does not write database defaults")
    return fields


def _reads_value(field: models.Field) -> Callable[[models.Model], Any]:
    """How an INSERT reads the field from the instance: pre_save where it computes something
    (auto_now, auto_now_add, file fields...), else the attribute."""
    plain = type(field).pre_save is models.Field.pre_save or (
        isinstance(field, models.DateField) and not (field.auto_now or field.auto_now_add)
    )
    if plain:
        attname = field.attname
        return lambda obj: getattr(obj, attname)
    return lambda obj: field.pre_save(obj, True)


def create_many(model: type[models.Model], objs: Sequence[models.Model], *, key: str) -> None:
    """Insert new instances of `model` and give each its primary key, like bulk_create.

    `key` names a unique column the instances already carry (e.g. flashfx_id): each new
    primary key comes back beside it, so nothing rests on the order RETURNING yields rows in.
    """
    if not objs:
        return
    if any(obj.pk is not None for obj in objs):
        raise ValueError("create_many inserts new rows: an instance has a primary key already")
    fields = _insertable(model)
    readers = [_reads_value(f) for f in fields]
    key_of = {getattr(obj, key): obj for obj in objs}
    if len(key_of) != len(objs):
        raise ValueError(f"create_many: two instances share a {key}")
    columns = [f.attname for f in fields]
    alias = connection.alias
    if connection.vendor == "postgresql":
        # Keys drawn from the table's own sequence first, then the rows copied in with them:
        # COPY returns nothing, and costs the server a fraction of a long INSERT.
        pk = model._meta.pk
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)",
                [connection.ops.quote_name(model._meta.db_table), pk.column, len(objs)],
            )
            keys = [row[0] for row in cursor.fetchall()]
        insert_values(
            model,
            [pk.attname, *columns],
            (
                [new_key, *(read(obj) for read in readers)]
                for obj, new_key in zip(objs, keys, strict=True)
            ),
        )
        # Given only once written: a failed COPY leaves the instances without keys, as
        # bulk_create does.
        for obj, new_key in zip(objs, keys, strict=True):
            obj.pk = new_key
        for obj in objs:
            obj._state.adding = False
            obj._state.db = alias
        return
    returned = insert_values(
        model,
        columns,
        ([read(obj) for read in readers] for obj in objs),
        returning=(key, model._meta.pk.attname),
    )
    by_key = dict(returned)
    if len(by_key) != len(objs):
        raise RuntimeError(f"create_many: {len(objs)} rows sent, {len(by_key)} came back")
    for obj_key, obj in key_of.items():
        obj.pk = by_key[obj_key]
        obj._state.adding = False
        obj._state.db = alias
