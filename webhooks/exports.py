"""The webhook event list (/webhooks/events/) as an export (payments/exports, docs/exports.md):
the page's own filters and selector, the metadata and outcome of each request. Never the raw
body or headers: they hold payers' names and account numbers, and are shown one event at a time
to those who may see them (webhooks.view_raw_body)."""

from __future__ import annotations

from typing import Any

from django.http import QueryDict

from payments.exports.formatting import DATETIME, IP, NUMBER, TEXT
from payments.exports.registry import Column, ExportError, ExportList, register

from .forms import FILTER_KEYS, event_filters_from_query
from .selectors import inbound_events_filtered


def _filters(query: QueryDict, user: Any) -> dict[str, Any]:
    if event_filters_from_query(query) is None:
        raise ExportError("The filters are not valid: correct them on the page first.")
    return {k: query.get(k, "").strip() for k in FILTER_KEYS if query.get(k, "").strip()}


def _rows(filters: dict[str, Any], user: Any) -> Any:
    query = QueryDict(mutable=True)
    query.update(filters)
    parsed = event_filters_from_query(query)
    if parsed is None:
        raise ExportError("The filters are not valid: correct them on the page first.")
    return inbound_events_filtered(parsed)


WEBHOOK_EVENTS = register(
    ExportList(
        name="webhook-events",
        title="Webhook events",
        permission="webhooks.view_inboundevent",
        url_name="webhooks:events",
        filters=_filters,
        rows=_rows,
        columns=(
            Column("id", "Event", "id", NUMBER),
            Column("received_at", "Received", "received_at", DATETIME),
            Column("status", "Status", "status", TEXT),
            Column("reason", "Reason", "reason", TEXT),
            Column("event", "Type", "event", TEXT),
            Column("entity_id", "Entity", "entity_id", TEXT),
            Column("request_id", "Request id", "request_id", TEXT),
            Column("scheduled_at", "Sent by FlashFX", "event_scheduled_at", DATETIME),
            Column("attempts", "Attempts", "attempts", NUMBER),
            Column("processed_at", "Processed", "processed_at", DATETIME),
            Column("outcome", "Outcome", "outcome", TEXT),
            Column("size", "Body bytes", "body_size", NUMBER),
            Column("address", "From address", "remote_addr", IP),
            Column("error", "Last error", "last_error", TEXT, default=False),
        ),
    )
)
