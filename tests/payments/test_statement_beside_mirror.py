"""A day's statement from FlashFX beside the mirror: each line matched, differing, only at
FlashFX or only in our mirror; stored as asked, shown on its page and exported."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone
from export_support import csv_rows, export
from harness import close_app_client, point_app_at
from staff import make_staff, sign_in

from backoffice import reconciliation as service
from backoffice.models import AuditEvent
from backoffice.reconciliation_exports import STATEMENT
from mirrors.client import flashfx_client
from mirrors.models import StatementLine
from mirrors.registry import registry
from mirrors.statement import day_window, statement_beside_mirror, statement_totals
from payments.models import Deposit

pytestmark = pytest.mark.django_db
Match = StatementLine.Match


@pytest.fixture
def app_sandbox(sandbox, settings):
    sandbox.configure(step_delay_seconds=3600, login_interval_seconds=0)  # nothing moves alone
    point_app_at(settings, sandbox.url)
    yield sandbox
    close_app_client()


@pytest.fixture
def zone():
    """A zone whose day holds the next minutes whole (UTC, unless midnight UTC is close)."""
    hour = timezone.now().hour
    return ZoneInfo("UTC") if 1 <= hour <= 22 else ZoneInfo("Asia/Kolkata")


def cleared(sandbox, amount: str, *, mirror: bool = True) -> str:
    made = sandbox.receive_deposit(amount)
    assert sandbox.advance("deposits", made["id"], "CONFIRMED").status_code == 200
    if mirror:
        registry.get("deposits").apply(
            flashfx_client().deposit(made["id"]), observed_at=timezone.now()
        )
    return made["id"]


def a_day_of_money(sandbox, zone) -> dict[str, str]:
    """One matched deposit, one whose mirrored amount is wrong, one FlashFX has and the mirror
    not yet, and one the mirror has that FlashFX does not."""
    ids = {
        "matched": cleared(sandbox, "300.00"),
        "differs": cleared(sandbox, "120.00"),
        "only_flashfx": cleared(sandbox, "55.00", mirror=False),
    }
    Deposit.objects.filter(flashfx_id=ids["differs"]).update(amount=Decimal("100.00"))
    now = timezone.now()
    Deposit.objects.create(
        flashfx_id="e" * 24,
        flashfx_status="CONFIRMED",
        currency="AUD",
        amount=Decimal("9.99"),
        flashfx_created_at=now,
        cleared_at=now,
    )
    ids["only_mirror"] = "e" * 24
    return ids


def by_key(rows: list[StatementLine]) -> dict[tuple[str, str], StatementLine]:
    return {(r.transaction_id, r.type): r for r in rows}


def test_each_line_is_put_beside_the_mirror(app_sandbox, zone):
    ids = a_day_of_money(app_sandbox, zone)
    today = timezone.now().astimezone(zone).date()
    rows = statement_beside_mirror(client=flashfx_client(), day=today, currency="AUD", zone=zone)
    lines = by_key(rows)

    matched = lines[(ids["matched"], "DEPOSIT")]
    assert (matched.match, matched.credit, matched.mirror_amount) == (
        Match.MATCHED,
        Decimal("300.00"),
        Decimal("300.00"),
    )
    assert matched.entity == "deposits" and matched.created_at is not None
    differs = lines[(ids["differs"], "DEPOSIT")]
    assert (differs.match, differs.credit, differs.mirror_amount) == (
        Match.DIFFERS,
        Decimal("120.00"),
        Decimal("100.00"),
    )
    only_flashfx = lines[(ids["only_flashfx"], "DEPOSIT")]
    assert only_flashfx.match == Match.ONLY_FLASHFX and only_flashfx.mirror_amount is None
    only_mirror = lines[(ids["only_mirror"], "DEPOSIT")]
    assert (only_mirror.match, only_mirror.credit, only_mirror.mirror_amount) == (
        Match.ONLY_MIRROR,
        None,
        Decimal("9.99"),
    )
    assert rows[-1] == only_mirror  # FlashFX's lines first, in its order
    # Fees the sandbox charged are lines too, and the mirror knows them from totalFee.
    for row in rows:
        if row.type == "DEPOSIT_FEE" and row.transaction_id == ids["matched"]:
            assert row.match == Match.MATCHED

    totals = statement_totals(rows)
    assert totals.lines == len(rows)
    assert totals.difference == totals.net - totals.mirror
    # Stored as asked: asking again replaces the day's copy, never adds to it.
    statement_beside_mirror(client=flashfx_client(), day=today, currency="AUD", zone=zone)
    assert StatementLine.objects.filter(day=today, currency="AUD").count() == len(rows)


def test_the_day_is_the_members_day(zone):
    start, end = day_window(timezone.now().date(), ZoneInfo("Australia/Sydney"))
    assert start.tzinfo is not None and end - start == timedelta(days=1)
    assert start.astimezone(ZoneInfo("Australia/Sydney")).hour == 0


def test_an_operator_asks_flashfx_and_exports_what_the_page_shows(app_sandbox, client, settings):
    settings.TIME_ZONE = "UTC"
    zone = ZoneInfo("UTC")
    ids = a_day_of_money(app_sandbox, zone)
    today = timezone.now().astimezone(zone).date()
    member = make_staff("operator")
    sign_in(client, member)

    page = client.get(f"/reconciliation/statement/?day={today}&currency=AUD").content.decode()
    assert "Not asked yet for this day." in page
    response = client.post(
        "/reconciliation/statement/fetch/", {"day": today.isoformat(), "currency": "aud"}
    )
    assert response.status_code == 302
    page = client.get(response["Location"]).content.decode()
    assert ids["differs"] in page and "Amounts differ" in page and "Only in our mirror" in page
    [event] = AuditEvent.objects.filter(action=service.STATEMENT_FETCHED)
    assert event.actor_id == member.pk and event.details["lines"]["differs"] >= 1

    shown = [c.key for c in STATEMENT.columns if c.default]  # the chooser's ticks
    exported = export(
        client, "statement", filters=f"day={today}&currency=AUD", columns=shown, zone="UTC"
    )
    assert exported.status_code == 200
    rows = csv_rows(exported)
    header = rows[0]
    assert header[:4] == ["Day", "Currency", "Time (UTC)", "Type"]
    records = [dict(zip(header, row, strict=True)) for row in rows[1:]]
    assert len(records) == StatementLine.objects.filter(day=today).count()
    differs = next(
        r for r in records if r["FlashFX id"] == ids["differs"] and r["Type"] == "DEPOSIT"
    )
    assert (differs["Credit"], differs["Mirror amount"], differs["Match"]) == (
        "120.00",
        "100.00",
        "differs",
    )

    no_day = export(client, "statement", filters="currency=AUD", columns=shown)
    assert no_day.status_code == 302  # back to the page, which says why
    assert AuditEvent.objects.filter(action="data.exported").count() == 1


def test_a_viewer_reads_the_statement_but_does_not_ask_flashfx(app_sandbox, client):
    sign_in(client, make_staff("viewer"))
    today = timezone.localdate()
    page = client.get(f"/reconciliation/statement/?day={today}&currency=AUD").content.decode()
    assert "Get the statement from FlashFX" not in page
    response = client.post(
        "/reconciliation/statement/fetch/", {"day": today.isoformat(), "currency": "AUD"}
    )
    assert response.status_code == 403


def test_a_day_that_has_not_begun_has_no_statement(app_sandbox):
    tomorrow = timezone.localdate() + timedelta(days=2)
    with pytest.raises(service.ResolutionError, match="has not begun"):
        service.statement_fetch(day=tomorrow, currency="AUD", by=make_staff("operator"))
