"""How a cell is written, once in Python (the iterator path, XLSX) and once in SQL (COPY).

Both spell the same value the same way, byte for byte (tests/payments/test_export_bytes.py):

- text: as stored; a cell starting with = + - @ tab or carriage return gets a leading ' so no
  spreadsheet runs it as a formula (OWASP "CSV injection"); an empty text is an empty cell;
- masked text (account numbers for members without payments.view_account_number): all but
  the last MASK_KEEP characters become *, e.g. ******678;
- money: the Decimal exactly as stored (numeric's own digits: 1250.00, -12.50), never a float,
  never escaped: a number is not text, and a negative amount stays a number (a plain -12.50
  in CSV, a number cell in XLSX); its currency is a column of its own;
- times: in the zone the member chose, YYYY-MM-DD HH:MM:SS (the zone is in the header);
- yes/no for booleans; JSON as PostgreSQL's jsonb prints it.
"""

from __future__ import annotations

import json
from datetime import date, datetime, tzinfo
from typing import Any

from django.db.models import Expression, Func, TextField

TEXT, MASKED, MONEY, NUMBER, DATETIME, DATE, BOOL, JSON, IP = (
    "text",
    "masked",
    "money",
    "number",
    "datetime",
    "date",
    "bool",
    "json",
    "ip",
)
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
MASK_KEEP = 3
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
PG_TIME_FORMAT = "YYYY-MM-DD HH24:MI:SS"


def escape_formula(text: str) -> str:
    return "'" + text if text.startswith(FORMULA_START) else text


def mask(text: str) -> str:
    if len(text) > MASK_KEEP:
        return "*" * (len(text) - MASK_KEEP) + text[-MASK_KEEP:]
    return "*" * len(text)


def _jsonb_sorted(value: Any) -> Any:
    """jsonb keeps object keys shorter first, then bytewise (PostgreSQL's jsonb ordering)."""
    if isinstance(value, dict):
        keys = sorted(value, key=lambda k: (len(k.encode()), k.encode()))
        return {k: _jsonb_sorted(value[k]) for k in keys}
    if isinstance(value, list):
        return [_jsonb_sorted(v) for v in value]
    return value


def as_text(kind: str, value: Any, *, zone: tzinfo) -> str:
    """The cell as the CSV writes it; "" for NULL."""
    if value is None:
        return ""
    if kind == TEXT:
        return escape_formula(str(value))
    if kind == MASKED:
        return mask(str(value))
    if kind == MONEY:
        return format(value, "f")
    if kind == NUMBER:
        return str(value)
    if kind == DATETIME:
        return value.astimezone(zone).strftime(TIME_FORMAT)
    if kind == DATE:
        return value.isoformat()
    if kind == BOOL:
        return "yes" if value else "no"
    if kind == JSON:
        text = json.dumps(_jsonb_sorted(value), ensure_ascii=False, separators=(", ", ": "))
        return escape_formula(text)
    if kind == IP:
        return str(value)
    raise ValueError(f"unknown column kind {kind!r}")


def as_cell(kind: str, value: Any, *, zone: tzinfo) -> Any:
    """The cell as the XLSX writer takes it: Decimal and int stay numbers, times become local
    naive datetimes (written as dates), everything else the text as_text gives."""
    if value is None:
        return None
    if kind == MONEY:
        return value
    if kind == NUMBER:
        return value
    if kind == DATETIME:
        return value.astimezone(zone).replace(tzinfo=None)
    if kind == DATE and isinstance(value, date) and not isinstance(value, datetime):
        return value
    return as_text(kind, value, zone=zone)


class PgCell(Func):
    """A column formatted by PostgreSQL itself for COPY, as as_text() formats it in Python."""

    def __init__(self, expression: Any, *, kind: str, zone_name: str, **extra: Any) -> None:
        super().__init__(expression, output_field=TextField(), **extra)
        self.kind = kind
        self.zone_name = zone_name

    def as_sql(self, compiler: Any, connection: Any, **extra_context: Any) -> tuple[str, list]:
        source: Expression = self.source_expressions[0]
        sql, params = compiler.compile(source)
        s = f"({sql})"
        p = list(params)
        kind = self.kind
        if kind == TEXT:
            t = f"{s}::text"
            return (
                f"CASE WHEN left({t}, 1) IN ('=', '+', '-', '@', chr(9), chr(13)) "
                f"THEN '''' || {t} ELSE NULLIF({t}, '') END",
                p * 3,
            )
        if kind == MASKED:
            t = f"{s}::text"
            return (
                f"CASE WHEN length({t}) > {MASK_KEEP} "
                f"THEN repeat('*', length({t}) - {MASK_KEEP}) || right({t}, {MASK_KEEP}) "
                f"ELSE NULLIF(repeat('*', length({t})), '') END",
                p * 5,
            )
        if kind in (MONEY, NUMBER):
            return f"{s}::text", p
        if kind == DATETIME:
            return f"to_char({s} AT TIME ZONE %s, '{PG_TIME_FORMAT}')", [*p, self.zone_name]
        if kind == DATE:
            return f"to_char({s}, 'YYYY-MM-DD')", p
        if kind == BOOL:
            return f"CASE WHEN {s} THEN 'yes' WHEN NOT {s} THEN 'no' END", p * 2
        if kind == JSON:
            t = f"{s}::text"
            return (
                f"CASE WHEN left({t}, 1) IN ('=', '+', '-', '@', chr(9), chr(13)) "
                f"THEN '''' || {t} ELSE {t} END",
                p * 3,
            )
        if kind == IP:
            return f"host({s})", p
        raise ValueError(f"unknown column kind {kind!r}")
