"""The Django admin of the mirrors and of sync/reconciliation records: people look, never edit.

FlashFX is the source of truth for mirror rows, and sync runs, drift reports and balance checks
are records of what happened; so a member with the admin role, and even a superuser, can list and
open them, and search mirrors by FlashFX id, but cannot add, change or delete one. Everyone else
(other roles, or before the code) does not get into the admin at all.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone
from staff import make_staff, sign_in

from backoffice import roles
from mirrors.models import BalanceCheck, BalanceSnapshot, DriftItem, DriftReport, SyncRun
from parties.models import Recipient, Sender, SubClient
from payments.models import Deposit, Payment, Withdrawal

pytestmark = pytest.mark.django_db

NOW = timezone.now()


def sub_client(n: int) -> SubClient:
    return SubClient.objects.create(
        flashfx_id=f"5c0000000000000000000{n:03d}",
        flashfx_status="ACTIVE",
        client_type="INDIVIDUAL",
        full_name=f"Ada Lovelace {n}",
        flashfx_created_at=NOW,
        raw={"id": f"5c0000000000000000000{n:03d}"},
    )


def sender(n: int) -> Sender:
    return Sender.objects.create(
        flashfx_id=f"5e0000000000000000000{n:03d}",
        first_name="Grace",
        last_name=f"Hopper {n}",
        email=f"grace{n}@example.com",
        flashfx_created_at=NOW,
    )


def recipient(n: int) -> Recipient:
    return Recipient.objects.create(
        flashfx_id=f"7e0000000000000000000{n:03d}",
        account_id_type="BSB",
        currency="AUD",
        display_name=f"Mia Ng {n}",
        bsb="062000",
        account_no=f"1234{n:04d}",
        flashfx_created_at=NOW,
    )


def deposit(n: int) -> Deposit:
    return Deposit.objects.create(
        flashfx_id=f"d00000000000000000000{n:03d}",
        external_id=f"PR.{n}",
        flashfx_status="CONFIRMED",
        amount=Decimal("100.10"),
        currency="AUD",
        total_fee=Decimal("0.00"),
        sender_account_name="Test Payer",
        flashfx_created_at=NOW,
        cleared_at=NOW,
        remote_changed_at=NOW,
    )


def withdrawal(n: int) -> Withdrawal:
    return Withdrawal.objects.create(
        flashfx_id=f"a00000000000000000000{n:03d}",
        flashfx_status="FAILED",
        reject_code="ACCOUNT_CLOSED",
        amount=Decimal("0.30"),
        total_fee=Decimal("1.00"),
        currency="AUD",
        recipient_name="Mia Ng",
        flashfx_created_at=NOW,
        anomaly="refused move FAILED -> CONFIRMED",
    )


def payment(n: int) -> Payment:
    return Payment.objects.create(
        flashfx_id=f"b00000000000000000000{n:03d}",
        flashfx_status="CLOSED",
        from_currency="AUD",
        to_currency="GBP",
        from_amount=Decimal("190.00"),
        to_amount=Decimal("100.00"),
        recipient_name="Oliver Bennett",
        flashfx_created_at=NOW,
    )


def balance_snapshot(n: int) -> BalanceSnapshot:
    return BalanceSnapshot.objects.create(
        currency="AUD", cleared=Decimal("1000.00") + n, pending=Decimal("0.00")
    )


def sync_run(n: int) -> SyncRun:
    return SyncRun.objects.create(
        entity="deposits",
        mode="incremental",
        since=NOW - timedelta(minutes=5),
        until=NOW,
        status=SyncRun.Status.SUCCEEDED,
        windows=1,
        fetched=n,
        created=n,
        finished_at=NOW,
    )


def drift_report(n: int) -> DriftReport:
    report = DriftReport.objects.create(
        window_start=NOW - timedelta(days=7),
        window_end=NOW,
        entities=["deposits"],
        compared=10 + n,
        finished_at=NOW,
    )
    DriftItem.objects.create(
        report=report,
        entity="deposits",
        flashfx_id=f"d0000000000000000000f{n:03d}",
        kind=DriftItem.Kind.CONFLICT,
        differences={"amount": ["99.99", "12.34"]},
        resolution=DriftItem.Resolution.APPLIED,
        note="FlashFX's version re-applied (updated)",
    )
    BalanceCheck.objects.create(
        report=report,
        currency="AUD",
        reported_cleared=Decimal("1234.56"),
        implied_cleared=Decimal("1234.56"),
        reported_pending=Decimal("0.00"),
        implied_pending=Decimal("0.00"),
    )
    return report


def balance_check(n: int) -> BalanceCheck:
    return BalanceCheck.objects.create(
        currency="AUD",
        reported_cleared=Decimal("500.00"),
        implied_cleared=Decimal("498.90") + n,
        reported_pending=Decimal("0.00"),
        implied_pending=Decimal("0.00"),
    )


MIRRORS = {
    SubClient: sub_client,
    Sender: sender,
    Recipient: recipient,
    Deposit: deposit,
    Withdrawal: withdrawal,
    Payment: payment,
}
RECORDS = {
    BalanceSnapshot: balance_snapshot,
    SyncRun: sync_run,
    DriftReport: drift_report,
    BalanceCheck: balance_check,
}
EVERY = {**MIRRORS, **RECORDS}
ids = [m.__name__ for m in EVERY]


def url(model, view: str, *args) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


@pytest.fixture(params=["admin role", "superuser"])
def admin_client(request, client):
    """Signed in and past the code, as a member with the admin role or as a superuser."""
    if request.param == "superuser":
        user = make_staff(None, username="boss", is_superuser=True, is_staff=True)
    else:
        user = make_staff(roles.ADMIN, username="boss")
    sign_in(client, user)
    return client


def columns(row) -> dict:
    return {f.attname: getattr(row, f.attname) for f in type(row)._meta.concrete_fields}


@pytest.mark.parametrize(("model", "make"), EVERY.items(), ids=ids)
def test_an_admin_lists_and_opens_every_row(admin_client, model, make):
    rows = [make(1), make(2)]

    listing = admin_client.get(url(model, "changelist"))
    assert listing.status_code == 200
    assert {o.pk for o in listing.context["cl"].result_list} == {r.pk for r in rows}

    page = admin_client.get(url(model, "change", rows[0].pk))
    assert page.status_code == 200
    assert page.context["original"] == rows[0]
    # Shown, not offered for editing.
    assert page.context["has_change_permission"] is False
    assert b'name="_save"' not in page.content


@pytest.mark.parametrize(("model", "make"), EVERY.items(), ids=ids)
def test_no_one_adds_changes_or_deletes_a_row_through_the_admin(admin_client, model, make):
    row = make(1)
    before = columns(row)

    assert admin_client.get(url(model, "add")).status_code == 403
    assert admin_client.post(url(model, "add"), {}).status_code == 403
    changed = {
        name: "X"
        for name in before
        if name not in ("id", "report_id", "sub_client_id") and isinstance(before[name], str)
    }
    assert admin_client.post(url(model, "change", row.pk), changed).status_code == 403
    assert admin_client.get(url(model, "delete", row.pk)).status_code == 403
    assert admin_client.post(url(model, "delete", row.pk), {"post": "yes"}).status_code == 403
    assert model.objects.count() == 1
    assert columns(model.objects.get(pk=row.pk)) == before


@pytest.mark.parametrize(("model", "make"), MIRRORS.items(), ids=[m.__name__ for m in MIRRORS])
def test_a_mirror_is_found_by_its_flashfx_id(admin_client, model, make):
    wanted, other = make(1), make(2)

    found = admin_client.get(url(model, "changelist"), {"q": wanted.flashfx_id})

    assert found.status_code == 200
    assert [o.pk for o in found.context["cl"].result_list] == [wanted.pk]
    assert wanted.flashfx_id.encode() in found.content
    assert other.flashfx_id.encode() not in found.content


def test_a_drift_report_page_shows_its_items_and_balance_checks(admin_client):
    report = drift_report(1)

    page = admin_client.get(url(DriftReport, "change", report.pk))

    assert page.status_code == 200
    text = page.content.decode()
    item = report.items.get()
    assert item.flashfx_id in text
    assert "99.99" in text and "12.34" in text  # the differences, mirror then FlashFX
    assert "1234.56" in text  # the balance check beside it
    # The inlines offer neither adding, changing nor deleting.
    inlines = page.context["inline_admin_formsets"]
    assert [f.formset.prefix for f in inlines] == ["items", "balance_checks"]
    for inline in inlines:
        assert not (inline.has_add_permission or inline.has_change_permission)
        assert not inline.has_delete_permission
    assert 'name="items-0-DELETE"' not in text


def test_the_admin_needs_a_login(client):
    for model in EVERY:
        path = url(model, "changelist")
        response = client.get(path)
        assert response.status_code == 302
        assert response["Location"] == f"{reverse('login')}?next={path}"


def test_the_admin_needs_the_code_after_the_password(client):
    sign_in(client, make_staff(roles.ADMIN), verified=False)
    for model in EVERY:
        path = url(model, "changelist")
        response = client.get(path)
        assert response.status_code == 302
        assert response["Location"] == f"{reverse('otp-verify')}?next={path}"


@pytest.mark.parametrize("role", [r for r in roles.ROLES if r != roles.ADMIN] + [None])
def test_the_admin_is_refused_to_every_other_role(client, role):
    """Viewers may read these rows on the staff pages; the admin is the admin role's."""
    sign_in(client, make_staff(role))
    row = deposit(1)
    assert client.get(url(Deposit, "changelist")).status_code == 403
    assert client.get(url(Deposit, "change", row.pk)).status_code == 403
    for model in EVERY:
        assert client.get(url(model, "changelist")).status_code == 403
