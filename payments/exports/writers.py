"""CSV and XLSX, streamed in constant memory.

CSV on PostgreSQL: the rows' query is built by the ORM (the list's own selector), compiled with
its parameters, and run as `COPY (query) TO STDOUT (FORMAT csv)` through psycopg's
cursor.copy(); each column is formatted by PostgreSQL itself (formatting.PgCell: escaping,
masking, the zone), so no row passes through Python. Elsewhere (SQLite), a server-side
iterator and csv.writer, formatting each row in Python the same way: the same bytes.

XLSX: XlsxWriter with constant_memory, which writes each row to a temporary file as it comes and
keeps nothing behind it (bench/exports.py: peak RSS growth at 1M rows), capped below Excel's
1,048,576 rows by EXPORT_XLSX_MAX_ROWS (a larger export is offered as CSV). XlsxWriter rather
than openpyxl's write_only: about 1.75x the rows per second here on the same rows, the same flat
memory. Numbers stay numbers: money cells hold the Decimal (a number format with the column's
decimals), times are real date cells in the member's zone.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator, Sequence
from datetime import tzinfo
from decimal import Decimal
from typing import IO, Any

import xlsxwriter
from django.db import connection
from django.db.models import QuerySet

from .formatting import DATE, DATETIME, MONEY, NUMBER, PgCell, as_cell, as_text
from .registry import Column

BOM = "\ufeff"  # Excel reads the file as UTF-8 only with it
ITERATOR_CHUNK = 2000
EXCEL_DIGITS = 15  # Excel keeps 15 significant digits: a longer amount is written as text


def header(columns: Sequence[Column], *, zone_name: str) -> list[str]:
    """The labels; a time column says its zone, e.g. "Received (Australia/Sydney)"."""
    return [f"{c.label} ({zone_name})" if c.kind == DATETIME else c.label for c in columns]


class _Lines(list):
    """csv.writer's target: one write per row. The writer runs with lineterminator "\r\n",
    so that it quotes a field holding a lone carriage return (with "\n" it would not, and such
    a row breaks readers); each line ends in "\n" here, as PostgreSQL's COPY ends them."""

    def write(self, line: str) -> None:
        self.append(line[:-2] + "\n")


def csv_writer() -> tuple[Any, _Lines]:
    lines = _Lines()
    return csv.writer(lines, lineterminator="\r\n"), lines


def _csv_line(values: list[str]) -> str:
    writer, lines = csv_writer()
    writer.writerow(values)
    return lines[0]


def _selected(qs: QuerySet, columns: Sequence[Column], wrap: Callable[[Column, Any], Any]) -> Any:
    names = {f"export_{i}": wrap(c, c.expression()) for i, c in enumerate(columns)}
    return qs.annotate(**names).values_list(*names)


def raw_rows(qs: QuerySet, columns: Sequence[Column]) -> Iterator[tuple]:
    """The stored values, a chunk at a time (a server-side cursor where the database has one)."""
    return _selected(qs, columns, lambda c, e: e).iterator(chunk_size=ITERATOR_CHUNK)


class RowCounter:
    """Counts the rows of a CSV stream as it passes: a newline ends a row unless it is inside
    quotes (an even number of quote characters before it; "" inside a field keeps parity)."""

    def __init__(self) -> None:
        self.rows = 0
        self._odd = False

    def feed(self, chunk: bytes) -> None:
        if b'"' not in chunk and not self._odd:
            self.rows += chunk.count(b"\n")
            return
        *ends, _tail = chunk.split(b"\n")
        for piece in ends:
            if piece.count(b'"') % 2:
                self._odd = not self._odd
            if not self._odd:
                self.rows += 1
        if _tail.count(b'"') % 2:
            self._odd = not self._odd


def csv_chunks(
    qs: QuerySet,
    columns: Sequence[Column],
    *,
    zone: tzinfo,
    zone_name: str,
    unmasked: bool,
    counter: RowCounter | None = None,
    use_copy: bool | None = None,
    copy_connection: Any = None,
) -> Iterator[bytes]:
    """The file, a chunk at a time: BOM and header, then the rows (COPY on PostgreSQL, on
    `copy_connection` when given: a job reports progress on Django's meanwhile)."""
    yield (BOM + _csv_line(header(columns, zone_name=zone_name))).encode()
    kinds = [c.kind_for(unmasked=unmasked) for c in columns]
    if use_copy is None:
        use_copy = connection.vendor == "postgresql"
    if use_copy:
        query = _selected(
            qs,
            columns,
            lambda c, e: PgCell(e, kind=c.kind_for(unmasked=unmasked), zone_name=zone_name),
        )
        sql, params = query.query.sql_with_params()
        if copy_connection is None:  # the request's own connection: nothing else uses it now
            connection.ensure_connection()
            copy_connection = connection.connection
        statement = f"COPY ({sql}) TO STDOUT (FORMAT csv)"
        with copy_connection.cursor() as cursor, cursor.copy(statement, params) as copy:
            for data in copy:
                chunk = bytes(data)
                if counter is not None:
                    counter.feed(chunk)
                yield chunk
        return
    writer, lines = csv_writer()
    n = 0
    for n, row in enumerate(raw_rows(qs, columns), start=1):
        writer.writerow([as_text(k, v, zone=zone) for k, v in zip(kinds, row, strict=True)])
        if n % 500 == 0:
            yield "".join(lines).encode()
            lines.clear()
            if counter is not None:
                counter.rows = n
    if counter is not None:
        counter.rows = n
    yield "".join(lines).encode()


def write_xlsx(
    out: IO[bytes] | str,
    qs: QuerySet,
    columns: Sequence[Column],
    *,
    zone: tzinfo,
    zone_name: str,
    unmasked: bool,
    title: str,
    progress: Callable[[int], None] | None = None,
    every: int = 5000,
) -> int:
    """Write the workbook to `out` (a path or a binary file); the number of rows written."""
    workbook = xlsxwriter.Workbook(
        out,
        {
            "constant_memory": True,
            "strings_to_formulas": False,
            "strings_to_urls": False,
            "strings_to_numbers": False,
        },
    )
    sheet = workbook.add_worksheet(title[:31])
    bold = workbook.add_format({"bold": True})
    time_format = workbook.add_format({"num_format": "yyyy-mm-dd hh:mm:ss"})
    date_format = workbook.add_format({"num_format": "yyyy-mm-dd"})
    money_formats = {
        c.decimals: workbook.add_format({"num_format": "0." + "0" * c.decimals})
        for c in columns
        if c.kind == MONEY
    }
    kinds = [c.kind_for(unmasked=unmasked) for c in columns]
    cell_formats = [
        money_formats.get(c.decimals)
        if k == MONEY
        else time_format
        if k == DATETIME
        else date_format
        if k == DATE
        else None
        for c, k in zip(columns, kinds, strict=True)
    ]
    for col, label in enumerate(header(columns, zone_name=zone_name)):
        sheet.write_string(0, col, label, bold)
    written = 0
    for written, row in enumerate(raw_rows(qs, columns), start=1):  # noqa: B007
        for col, (kind, value) in enumerate(zip(kinds, row, strict=True)):
            cell = as_cell(kind, value, zone=zone)
            if cell is None:
                continue
            if kind in (MONEY, NUMBER):
                if isinstance(cell, Decimal) and len(cell.as_tuple().digits) > EXCEL_DIGITS:
                    sheet.write_string(written, col, format(cell, "f"))
                else:
                    sheet.write_number(written, col, cell, cell_formats[col])
            elif kind in (DATETIME, DATE):
                sheet.write_datetime(written, col, cell, cell_formats[col])
            else:
                sheet.write_string(written, col, cell)
        if progress is not None and written % every == 0:
            progress(written)
    workbook.close()
    return written
