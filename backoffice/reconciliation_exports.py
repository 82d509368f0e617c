"""A day's statement beside the mirror (/reconciliation/statement/) as an export (docs/exports.md):
the day and currency on screen are its filters; the rows are the stored copy the page shows, in
its order (mirrors/statement.py). Registered from BackofficeConfig.ready()."""

from __future__ import annotations

from typing import Any

from django.http import QueryDict

from mirrors.models import StatementLine
from payments.exports.formatting import DATE, DATETIME, MONEY, TEXT
from payments.exports.registry import Column, ExportError, ExportList, register

from .reconciliation_views import STATEMENT_PERMISSION, StatementForm


def _chosen(query: QueryDict) -> dict[str, Any]:
    form = StatementForm(query)
    if not form.is_valid():
        raise ExportError("Choose the day and the currency of the statement first.")
    return {"day": form.cleaned_data["day"].isoformat(), "currency": form.cleaned_data["currency"]}


def _filters(query: QueryDict, user: Any) -> dict[str, Any]:
    return _chosen(query)


def _rows(filters: dict[str, Any], user: Any) -> Any:
    query = QueryDict(mutable=True)
    query.update(filters)
    chosen = _chosen(query)
    return StatementLine.objects.filter(day=chosen["day"], currency=chosen["currency"]).order_by(
        "position"
    )


STATEMENT = register(
    ExportList(
        name="statement",
        title="Statement",
        permission=STATEMENT_PERMISSION,
        url_name="reconciliation-statement",
        filters=_filters,
        rows=_rows,
        columns=(
            Column("day", "Day", "day", DATE),
            Column("currency", "Currency", "currency", TEXT),
            Column("time", "Time", "created_at", DATETIME),
            Column("type", "Type", "type", TEXT),
            Column("description", "Description", "description", TEXT),
            Column("flashfx_id", "FlashFX id", "transaction_id", TEXT),
            Column("debit", "Debit", "debit", MONEY),
            Column("credit", "Credit", "credit", MONEY),
            Column("balance", "Balance", "balance", MONEY),
            Column("mirror", "Mirror amount", "mirror_amount", MONEY),
            Column("match", "Match", "match", TEXT),
            Column("entity", "Mirror", "entity", TEXT, default=False),
            Column("line_id", "FlashFX line id", "line_id", TEXT, default=False),
            Column("fetched_at", "Asked FlashFX at", "fetched_at", DATETIME, default=False),
        ),
    )
)
