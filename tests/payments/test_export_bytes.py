"""What an export writes, byte for byte: headers naming the zone, Decimal amounts exactly (and
negative ones as numbers), times in the member's zone, formula escaping, masked account numbers,
and the very rows the page shows under the same filters; every export is in the audit trail."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import openpyxl
import pytest
from django.db import connection
from export_support import DEPOSIT_DEFAULT, body, csv_rows, export, member
from queue_support import make_deposit
from staff import make_staff

from backoffice import audit
from backoffice.models import AuditEvent
from parties.models import Recipient
from payments.exports import lists
from payments.exports.writers import csv_chunks

pytestmark = pytest.mark.django_db

NOON_UTC = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)  # 12:00 in Sydney (AEDT, +11)


def test_a_deposit_export_is_exactly_these_bytes():
    make_deposit(
        flashfx_id="DEP1",
        amount=Decimal("-12.50"),
        sender_account_name='=HYPERLINK("http://evil.example","click")',
        sender_account_no="12345678",
        external_reference="-2+3",
        flashfx_created_at=NOON_UTC,
    )
    make_deposit(
        flashfx_id="DEP2",
        amount=Decimal("1250.00"),
        sender_account_name="Smith, Jones & Co",
        sender_account_no="987",
        external_reference="@SUM(A1)",
        flashfx_created_at=datetime(2026, 7, 1, 2, 30, tzinfo=UTC),  # AEST in July: +10
    )
    response = export(member("operator"), "deposits", columns=DEPOSIT_DEFAULT)
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="deposits-')
    assert "no-store" in response["Cache-Control"]
    assert body(response).decode("utf-8") == (
        "\ufeffFlashFX id,Received (Australia/Sydney),Amount,Currency,FlashFX status,Review,"
        "Payer name,Payer BSB,Payer account,Reference,Sub-client,Assignee,Third party\n"
        "DEP1,2026-11-02 12:00:00,-12.50,AUD,CONFIRMED,new,"
        '"\'=HYPERLINK(""http://evil.example"",""click"")",062000,12345678,\'-2+3,,,no\n'
        'DEP2,2026-07-01 12:30:00,1250.00,AUD,CONFIRMED,new,"Smith, Jones & Co",062000,987,'
        "'@SUM(A1),,,no\n"
    )


def test_account_numbers_are_masked_for_a_role_without_the_permission():
    make_deposit(sender_account_no="12345678")
    make_deposit(sender_account_no="987")
    approver = member("approver")
    rows = csv_rows(export(approver, "deposits", columns=["flashfx_id", "payer_account"]))
    assert [r[1] for r in rows[1:]] == ["***", "*****678"]  # newest first
    operator = member("operator")
    rows = csv_rows(export(operator, "deposits", columns=["flashfx_id", "payer_account"]))
    assert [r[1] for r in rows[1:]] == ["987", "12345678"]
    compliance = member("compliance")
    rows = csv_rows(export(compliance, "deposits", columns=["flashfx_id", "payer_account"]))
    assert [r[1] for r in rows[1:]] == ["987", "12345678"]


def test_tab_and_carriage_return_starts_are_escaped_too():
    make_deposit(sender_account_name="\tcmd", external_reference="\r=1+1", amount=Decimal("5"))
    rows = csv_rows(
        export(member("operator"), "deposits", columns=["payer", "reference", "amount"])
    )
    assert rows[1] == ["'\tcmd", "'\r=1+1", "5.00"]


def test_the_zone_chosen_is_used_and_named():
    make_deposit(flashfx_created_at=NOON_UTC)
    rows = csv_rows(
        export(member("operator"), "deposits", columns=["received"], zone="Australia/Perth")
    )
    assert rows == [["Received (Australia/Perth)"], ["2026-11-02 09:00:00"]]
    rows = csv_rows(export(member("operator", "o2"), "deposits", columns=["received"], zone="UTC"))
    assert rows == [["Received (UTC)"], ["2026-11-02 01:00:00"]]


def test_an_unknown_zone_or_column_is_refused_with_a_clear_message():
    client = member("operator")
    response = export(client, "deposits", columns=["received"], zone="Mars/Olympus")
    assert response.status_code == 302 and response["Location"] == "/deposits/"
    assert (
        "&#x27;Mars/Olympus&#x27; is not a time zone" in client.get("/deposits/").content.decode()
    )
    response = export(client, "deposits", columns=["nope"])
    assert "Deposits have no column &#x27;nope&#x27;" in client.get("/deposits/").content.decode()
    response = export(client, "deposits", columns=[])
    assert "Choose at least one column." in client.get("/deposits/").content.decode()
    assert not AuditEvent.objects.filter(action=audit.EXPORTED).exists()


QUEUE_FILTERS = [
    "",
    "status=REVIEWING",
    "amount_min=150&amount_max=400",
    "received_from=2026-11-03&received_to=2026-11-04",
    "q=Wattle",
    "sort=largest",
    "sort=oldest&status=CONFIRMED",
    "assignee=nobody&review=new",
]


@pytest.mark.parametrize("filters", QUEUE_FILTERS)
def test_a_deposit_export_holds_the_rows_the_queue_shows_in_its_order(filters):
    for n in range(12):
        make_deposit(
            flashfx_status="REVIEWING" if n % 3 == 0 else "CONFIRMED",
            amount=Decimal(100 + 50 * n),
            sender_account_name="Wattle Holdings" if n % 4 == 0 else f"Payer {n}",
            flashfx_created_at=datetime(2026, 11, 1 + n // 3, 10, n, tzinfo=UTC),
        )
    client = member("operator")
    page = client.get(f"/deposits/?{filters}")
    shown = [d.flashfx_id for d in page.context["page"].deposits]
    rows = csv_rows(export(client, "deposits", filters=filters, columns=["flashfx_id"]))
    assert [r[0] for r in rows[1:]] == shown
    assert len(shown) > 0 or filters  # the unfiltered queue is never empty here


def test_an_invalid_filter_is_refused_not_ignored():
    make_deposit()
    client = member("operator")
    response = export(client, "deposits", filters="amount_min=abc", columns=["flashfx_id"])
    assert response.status_code == 302 and response["Location"] == "/deposits/?amount_min=abc"
    assert "The filters are not valid: Amount from" in client.get("/deposits/").content.decode()


def test_every_export_is_an_audit_event_with_list_filters_rows_and_format():
    for _ in range(3):
        make_deposit(flashfx_status="REVIEWING")
    make_deposit()
    client = member("approver", "ada")
    export(
        client, "deposits", filters="status=REVIEWING", columns=["flashfx_id"], file_format="xlsx"
    )
    event = AuditEvent.objects.get(action=audit.EXPORTED)
    assert event.actor == "ada"
    assert event.details == {
        "list": "deposits",
        "filters": {"status": "REVIEWING"},
        "rows": 3,
        "format": "xlsx",
        "columns": ["flashfx_id"],
        "zone": "Australia/Sydney",
        "masked": True,
        "job": None,
    }


def test_xlsx_keeps_numbers_as_numbers_times_as_local_times_and_escapes_text():
    make_deposit(
        flashfx_id="DEP9",
        amount=Decimal("-12.50"),
        sender_account_name="+61 400 000 000",
        sender_account_no="12345678",
        flashfx_created_at=NOON_UTC,
    )
    response = export(
        member("approver"),
        "deposits",
        columns=["flashfx_id", "amount", "currency", "received", "payer", "payer_account"],
        file_format="xlsx",
    )
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/vnd.openxmlformats")
    import io

    sheet = openpyxl.load_workbook(io.BytesIO(body(response))).active
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0] == (
        "FlashFX id",
        "Amount",
        "Currency",
        "Received (Australia/Sydney)",
        "Payer name",
        "Payer account",
    )
    assert rows[1] == (
        "DEP9",
        -12.5,
        "AUD",
        datetime(2026, 11, 2, 12, 0),  # noqa: DTZ001 (Excel's times are naive: local)
        "'+61 400 000 000",
        "*****678",
    )
    assert sheet["B2"].data_type == "n" and sheet["B2"].number_format == "0.00"


def test_xlsx_is_refused_above_its_cap_and_offered_as_csv(settings):
    settings.EXPORT_XLSX_MAX_ROWS = 2
    for _ in range(3):
        make_deposit()
    client = member("operator")
    response = export(client, "deposits", columns=["flashfx_id"], file_format="xlsx")
    assert response.status_code == 302
    assert (
        "3 rows: more than an XLSX export holds (2 rows"
        in client.get("/deposits/").content.decode()
    )
    assert len(csv_rows(export(client, "deposits", columns=["flashfx_id"]))) == 4


def test_recipients_export_is_the_searched_list_with_accounts_masked_for_approvers():
    for n, name in enumerate(["Mia Ng", "Noah Li", "Mia Chen"]):
        Recipient.objects.create(
            flashfx_id=f"REC{n}",
            display_name=name,
            account_id_type="BSB",
            currency="AUD",
            bsb="062000",
            account_no=f"1234567{n}",
            flashfx_created_at=datetime(2026, 11, 1, n, tzinfo=UTC),
        )
    client = member("approver")
    page = client.get("/parties/recipients/?q=Mia")
    shown = [r.flashfx_id for r in page.context["page"].rows]
    rows = csv_rows(
        export(client, "recipients", filters="q=Mia", columns=["flashfx_id", "name", "account"])
    )
    assert rows == [
        ["FlashFX id", "Name", "Account"],
        ["REC2", "Mia Chen", "*****672"],
        ["REC0", "Mia Ng", "*****670"],
    ]
    assert [r[0] for r in rows[1:]] == shown


def test_the_audit_trail_exports_with_its_filters_for_compliance():
    audit.record(audit.SETTINGS_CHANGED, details={"b": 1, "aa": "=x"})
    audit.record(audit.OTP_RESET)
    client = member("compliance", "cora")
    rows = csv_rows(
        export(client, "audit", filters="action=settings.changed", columns=["action", "details"])
    )
    assert rows == [["Action", "Details"], ["settings.changed", '{"b": 1, "aa": "=x"}']]


def test_a_member_without_export_or_the_list_gets_no_export():
    make_deposit()
    assert export(member("viewer"), "deposits", columns=["flashfx_id"]).status_code == 403
    # approvers export, but not the audit trail they cannot read
    assert export(member("approver"), "audit", columns=["action"]).status_code == 403
    assert export(member("operator"), "nothing", columns=["x"]).status_code == 404


TRICKY = [
    'He said "hi", then left',
    "two\nlines",
    "cr\r\nlf",
    "",
    " leading and trailing ",
    "ünïcødé ✓",
    "=1+2",
    "-5",
]


@pytest.mark.skipif(connection.vendor != "postgresql", reason="COPY is PostgreSQL's")
@pytest.mark.parametrize("unmasked", [True, False])
def test_copy_on_postgresql_writes_the_same_bytes_as_the_iterator(unmasked):
    for n, text in enumerate(TRICKY):
        make_deposit(
            sender_account_name=text,
            external_reference=text[::-1],
            sender_account_no=text,
            amount=Decimal(f"{(-1) ** n * (n * 1000 + 0.05):.2f}"),
            total_fee=None if n % 2 else Decimal("0.10"),
            cleared_at=None if n % 3 else NOON_UTC,
            third_party=bool(n % 2),
        )
    entry = lists.DEPOSITS
    qs = entry.rows({}, make_staff("operator", "copy-reader"))
    zone = ZoneInfo("Australia/Sydney")
    kwargs = {"zone": zone, "zone_name": "Australia/Sydney", "unmasked": unmasked}
    via_copy = b"".join(csv_chunks(qs, entry.columns, use_copy=True, **kwargs))
    via_iterator = b"".join(csv_chunks(qs, entry.columns, use_copy=False, **kwargs))
    assert via_copy.count(b"\n") >= len(TRICKY) + 1
    assert via_copy == via_iterator
