"""/reconciliation/: open drift one row per entity, settled by a person (re-apply FlashFX's
version, or mark resolved with a note) with a fresh code, audited; run now; the pages by role."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone
from harness import close_app_client, point_app_at
from staff import make_staff, sign_in

from backoffice import dashboard
from backoffice import reconciliation as service
from backoffice.models import AuditEvent
from mirrors import reconcile
from mirrors.client import flashfx_client
from mirrors.models import DriftItem, DriftReport
from mirrors.registry import registry
from mirrors.selectors import open_drift_count, open_entities
from payments.models import Deposit

pytestmark = pytest.mark.django_db
STALE = 3600  # seconds since the last code: older than STAFF_STEP_UP_MAX_AGE_SECONDS


@pytest.fixture
def app_sandbox(sandbox, settings):
    sandbox.configure(step_delay_seconds=3600, login_interval_seconds=0)  # nothing moves alone
    point_app_at(settings, sandbox.url)
    yield sandbox
    close_app_client()


def a_deposit_flashfx_forgot() -> Deposit:
    """A mirrored deposit FlashFX does not list: reconciliation flags it for a person."""
    return Deposit.objects.create(
        flashfx_id="f" * 24,
        flashfx_status="CONFIRMED",
        currency="AUD",
        amount=Decimal("42.00"),
        flashfx_created_at=timezone.now() - timedelta(hours=1),
    )


def mirrored(flashfx_id: str) -> Deposit:
    """FlashFX's deposit into the mirror, as sync would apply it."""
    registry.get("deposits").apply(flashfx_client().deposit(flashfx_id), observed_at=timezone.now())
    return Deposit.objects.get(flashfx_id=flashfx_id)


def reconcile_now() -> DriftReport:
    return reconcile.reconcile(
        client=flashfx_client(), since=timezone.now() - timedelta(days=1), entities=["deposits"]
    )


def flagged_conflict(app_sandbox) -> tuple[Deposit, DriftItem]:
    """A real deposit whose mirrored amount is wrong, flagged as if the apply rule had refused
    FlashFX's version (what reconciliation leaves for a person)."""
    deposit = mirrored(app_sandbox.receive_deposit("250.00")["id"])
    Deposit.objects.filter(pk=deposit.pk).update(amount=Decimal("205.00"))
    report = DriftReport.objects.create(
        window_start=timezone.now() - timedelta(days=1),
        window_end=timezone.now(),
        entities=["deposits"],
    )
    item = DriftItem.objects.create(
        report=report,
        entity="deposits",
        flashfx_id=deposit.flashfx_id,
        kind=DriftItem.Kind.CONFLICT,
        differences={"amount": ["205.00", "250.00"]},
        resolution=DriftItem.Resolution.FLAGGED,
        note="FlashFX's version not taken (refused)",
    )
    return deposit, item


def test_two_nights_flag_the_same_missing_deposit_once_on_the_page(app_sandbox, client):
    forgotten = a_deposit_flashfx_forgot()
    first = reconcile_now()
    reconcile_now()
    assert DriftItem.objects.filter(flashfx_id=forgotten.flashfx_id).count() == 2
    [row] = open_entities()
    assert row.item.kind == DriftItem.Kind.MISSING_REMOTELY and row.reports == 2
    assert row.since == first.started_at
    assert open_drift_count() == 1

    sign_in(client, make_staff("viewer"))
    page = client.get("/reconciliation/").content.decode()
    assert forgotten.flashfx_id in page and "Missing at FlashFX" in page
    assert (
        "Mark resolved" not in client.get(f"/reconciliation/items/{row.item.pk}/").content.decode()
    )
    # The dashboard's tile counts it as the page lists it.
    assert dashboard.drift_items_open() == 1


def test_compliance_marks_it_resolved_with_a_note_and_it_is_audited(app_sandbox, client):
    forgotten = a_deposit_flashfx_forgot()
    reconcile_now()
    reconcile_now()
    item = DriftItem.objects.filter(flashfx_id=forgotten.flashfx_id).last()
    member = make_staff("compliance")
    sign_in(client, member)

    refused = client.post(f"/reconciliation/items/{item.pk}/resolve/", {"note": "  "}, follow=True)
    assert "the note is required" in refused.content.decode()
    assert open_drift_count() == 1

    note = "FlashFX support: test deposit removed from UAT (ticket 4411)."
    done = client.post(f"/reconciliation/items/{item.pk}/resolve/", {"note": note}, follow=True)
    assert "marked resolved" in done.content.decode()
    assert open_drift_count() == 0
    for settled in DriftItem.objects.filter(flashfx_id=forgotten.flashfx_id):
        assert (settled.settled, settled.settled_by, settled.settled_note) == (
            DriftItem.Settled.MARKED,
            member,
            note,
        )
    [event] = AuditEvent.objects.filter(action=service.SETTLED)
    assert event.actor_id == member.pk and event.after == {"settled": "marked", "note": note}
    assert len(event.before["open_items"]) == 2

    again = client.post(
        f"/reconciliation/items/{item.pk}/resolve/", {"note": "me too"}, follow=True
    )
    assert "Someone settled this item already." in again.content.decode()
    assert AuditEvent.objects.filter(action=service.SETTLED).count() == 1


def test_re_applying_flashfx_version_corrects_the_mirror_after_a_fresh_code(app_sandbox, client):
    deposit, item = flagged_conflict(app_sandbox)
    member = make_staff("admin")

    sign_in(client, member, otp_age=STALE)
    asked = client.post(f"/reconciliation/items/{item.pk}/reapply/", {"note": ""})
    assert asked.status_code == 302 and asked["Location"].startswith("/accounts/step-up/")
    assert Deposit.objects.get(pk=deposit.pk).amount == Decimal("205.00")  # nothing done yet

    sign_in(client, member)
    done = client.post(f"/reconciliation/items/{item.pk}/reapply/", {"note": "seen"}, follow=True)
    assert "re-applied" in done.content.decode()
    assert Deposit.objects.get(pk=deposit.pk).amount == Decimal("250.00")
    item.refresh_from_db()
    assert item.settled == DriftItem.Settled.REAPPLIED and item.settled_by == member
    [event] = AuditEvent.objects.filter(action=service.SETTLED)
    assert event.after["settled"] == "reapplied" and "amount" in event.after["changed"]


def test_there_is_nothing_to_re_apply_for_a_deposit_flashfx_does_not_know(app_sandbox):
    forgotten = a_deposit_flashfx_forgot()
    reconcile_now()
    item = DriftItem.objects.get(flashfx_id=forgotten.flashfx_id)
    with pytest.raises(service.ResolutionError, match="FlashFX has no deposit"):
        service.drift_item_reapply(item=item, by=make_staff("compliance"))
    assert open_drift_count() == 1 and not AuditEvent.objects.filter(action=service.SETTLED)


def test_only_compliance_and_admins_settle_drift(app_sandbox, client):
    _, item = flagged_conflict(app_sandbox)
    for role in ("viewer", "operator", "approver"):
        sign_in(client, make_staff(role))
        assert (
            client.post(f"/reconciliation/items/{item.pk}/resolve/", {"note": "x"}).status_code
            == 403
        )
        assert client.post(f"/reconciliation/items/{item.pk}/reapply/").status_code == 403
    assert open_drift_count() == 1


def test_a_later_reconciliation_that_finds_agreement_closes_the_open_item(app_sandbox):
    made = app_sandbox.receive_deposit("75.00")
    mirrored(made["id"])
    report = DriftReport.objects.create(
        window_start=timezone.now() - timedelta(days=1), window_end=timezone.now()
    )
    DriftItem.objects.create(
        report=report,
        entity="deposits",
        flashfx_id=made["id"],
        kind=DriftItem.Kind.MISSING_REMOTELY,
        resolution=DriftItem.Resolution.FLAGGED,
    )
    assert open_drift_count() == 1
    later = reconcile_now()
    assert open_drift_count() == 0
    closed = DriftItem.objects.get(report=report)
    assert closed.settled == DriftItem.Settled.SUPERSEDED
    assert f"#{later.pk}" in closed.settled_note


def test_an_operator_runs_a_reconciliation_now(
    app_sandbox, client, settings, django_capture_on_commit_callbacks
):
    settings.CELERY_TASK_ALWAYS_EAGER = True
    member = make_staff("operator")
    sign_in(client, member)
    page = client.get("/reconciliation/").content.decode()
    assert "Run reconciliation now" in page
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/reconciliation/run/", {"days": "3"}, follow=True)
    assert "Reconciliation of the last 3 days queued" in response.content.decode()
    report = DriftReport.objects.get()
    assert report.finished_at is not None
    assert (report.window_end - report.window_start).days == 3
    [event] = AuditEvent.objects.filter(action=service.RUN_REQUESTED)
    assert event.actor_id == member.pk and event.details == {"days": 3}

    sign_in(client, make_staff("viewer"))
    assert "Run reconciliation now" not in client.get("/reconciliation/").content.decode()
    assert client.post("/reconciliation/run/", {"days": "3"}).status_code == 403


def test_the_report_and_item_pages_show_what_differs(app_sandbox, client):
    _, item = flagged_conflict(app_sandbox)
    sign_in(client, make_staff("compliance"))
    page = client.get(f"/reconciliation/items/{item.pk}/").content.decode()
    assert '<th scope="row">amount</th><td>205.00</td><td>250.00</td>' in page
    assert "Re-apply FlashFX's version" in page and "Mark resolved" in page
    report = client.get(f"/reconciliation/reports/{item.report_id}/").content.decode()
    assert item.flashfx_id in report and "Open" in report
    assert client.get("/reconciliation/items/999999/").status_code == 404
