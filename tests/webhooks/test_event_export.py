"""The webhook event list exports what the page shows under the same filters (through the export
engine, docs/exports.md): metadata and outcome, never the raw body."""

from __future__ import annotations

import hashlib
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from django.contrib.messages import get_messages

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "payments"))
from export_support import csv_rows, export, member  # noqa: E402

from backoffice.models import AuditEvent  # noqa: E402
from webhooks.exports import WEBHOOK_EVENTS  # noqa: E402
from webhooks.models import InboundEvent  # noqa: E402

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
COLUMNS = [c.key for c in WEBHOOK_EVENTS.columns if c.default]


def event(n: int, *, status: str, at: datetime = T0) -> InboundEvent:
    body = f'{{"event":"deposit_cleared","id":"dep{n}","accountNo":"12345678"}}'.encode()
    return InboundEvent.objects.create(
        accepted=True,
        status=status,
        request_id=f"req-{n}",
        event="deposit_cleared",
        entity_id=f"dep{n}",
        body=body,
        body_sha256=hashlib.sha256(body).hexdigest(),
        body_size=len(body),
        received_at=at,
        outcome='=HYPERLINK("x")' if n == 2 else "applied",
    )


def test_the_dead_events_the_page_shows_are_the_rows_exported_without_their_bodies():
    event(1, status="processed", at=T0 - timedelta(minutes=2))
    event(2, status="dead", at=T0 - timedelta(minutes=1))
    event(3, status="dead")
    response = export(
        member("compliance"), "webhook-events", filters="status=dead", columns=COLUMNS
    )
    assert response.status_code == 200, response.content[:300]
    rows = csv_rows(response)
    header, data = rows[0], rows[1:]
    assert header[:3] == ["Event", "Received (Australia/Sydney)", "Status"]
    assert [r[header.index("Request id")] for r in data] == ["req-3", "req-2"]  # newest first
    assert data[0][1] == "2026-11-30 23:00:00"  # 12:00 UTC in Sydney (AEDT)
    assert data[1][header.index("Outcome")] == '\'=HYPERLINK("x")'  # escaped
    flat = "".join(",".join(r) for r in rows)
    assert "12345678" not in flat and "accountNo" not in flat
    audit = AuditEvent.objects.filter(action="data.exported").get()
    assert audit.details["list"] == "webhook-events" and audit.details["rows"] == 2


def test_invalid_filters_are_refused_with_a_message_and_nothing_exported():
    event(1, status="dead")
    response = export(
        member("compliance"),
        "webhook-events",
        filters="received_from=2026-12-02&received_to=2026-12-01",
        columns=COLUMNS,
    )
    assert response.status_code == 302  # back to the page, which says why
    assert "not valid" in str(list(get_messages(response.wsgi_request))[0])
    assert not AuditEvent.objects.filter(action="data.exported").exists()
