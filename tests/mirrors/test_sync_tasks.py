"""The Celery tasks behind beat: `mirrors.tasks.sync_flashfx` and `reconcile_flashfx`.

Run with `.apply()`, in this process, against the real sandbox through the back-office's own
client. What `.apply()` does with a bound task's `self.retry()` (Celery 5): it raises `Retry`,
which `apply()` catches and answers by running the task again at once (countdown ignored),
with `request.retries` one higher; once `max_retries` is exceeded, `retry()` re-raises the
original exception and the result is FAILURE with that exception. So "asked for a retry" shows
as `max_retries + 1` attempts ending on the FlashFX error; an error not worth retrying shows as
one attempt.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from app_flashfx import GBP_RECIPIENT, MODELS, mirror_state, mirrored_ids, populate, remote_ids
from celery import states
from celery.schedules import crontab
from celery.signals import beat_init
from harness import close_app_client, point_app_at, point_app_at_nothing

from backoffice.celery import app
from flashfx.errors import FlashFXAuthError, FlashFXUnavailable
from mirrors.client import flashfx_client
from mirrors.models import BalanceCheck, DriftItem, DriftReport, SyncRun
from mirrors.registry import registry
from mirrors.tasks import reconcile_flashfx, sync_flashfx
from payments.models import Deposit

PATH = {  # documented forward moves, to walk a row to its final status
    "deposits": ["INITIALISED", "CONFIRMED"],
    "payments": ["INITIALISING", "OPEN", "CURRENCY_CONVERTED", "CLOSED"],
}

# The read-ahead thread of a sync reads the token store on its own database connection.
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def app_sandbox(sandbox, settings):
    """The sandbox, with the back-office's own client pointed at it."""
    point_app_at(settings, sandbox.url)
    yield sandbox
    close_app_client()


@pytest.fixture
def flashfx_down(settings):
    point_app_at_nothing(settings)
    yield
    close_app_client()


def test_sync_flashfx_mirrors_everything_and_a_second_run_changes_nothing(app_sandbox):
    populate(app_sandbox)

    first = sync_flashfx.apply()

    assert first.state == states.SUCCESS, first.traceback
    assert mirrored_ids() == remote_ids()
    assert first.result == {name: len(ids) for name, ids in mirrored_ids().items()}
    before = mirror_state()

    second = sync_flashfx.apply()

    assert second.state == states.SUCCESS, second.traceback
    assert second.result == dict.fromkeys(registry.names(), 0)
    assert mirror_state() == before
    modes = list(SyncRun.objects.order_by("started_at", "pk").values_list("mode", flat=True))
    assert modes == ["full"] * len(MODELS) + ["incremental"] * len(MODELS)


def test_beat_starting_syncs_at_once(app_sandbox, settings):
    """Not an interval after start: the signal beat sends as it starts runs one sync."""
    populate(app_sandbox)
    settings.CELERY_TASK_ALWAYS_EAGER = True
    try:
        beat_init.send(sender=None)
    finally:
        settings.CELERY_TASK_ALWAYS_EAGER = False
    assert mirrored_ids() == remote_ids()


def test_sync_flashfx_for_some_entities_and_then_a_change(app_sandbox):
    app_sandbox.fund("50.00")
    first = sync_flashfx.apply(kwargs={"entities": ["deposits"]})
    assert first.result == {"deposits": 1}

    app_sandbox.configure(step_delay_seconds=3600)  # the new deposit stays INITIALISED
    new = app_sandbox.receive_deposit("5.00")
    second = sync_flashfx.apply(kwargs={"entities": ["deposits"]})
    assert second.result == {"deposits": 1}
    assert Deposit.objects.get(flashfx_id=new["id"]).flashfx_status == "INITIALISED"

    assert app_sandbox.advance("deposits", new["id"], "CONFIRMED").status_code == 200
    third = sync_flashfx.apply(kwargs={"entities": ["deposits"]})
    assert third.result == {"deposits": 1}  # within the overlap of the last window
    assert Deposit.objects.get(flashfx_id=new["id"]).flashfx_status == "CONFIRMED"
    assert set(SyncRun.objects.values_list("entity", flat=True)) == {"deposits"}


@pytest.mark.parametrize(
    ("kind", "entity", "final"),
    [("deposits", "deposits", "CONFIRMED"), ("payments", "payments", "CLOSED")],
)
def test_sync_flashfx_sees_a_row_leave_a_non_final_status_after_its_window_has_passed(
    app_sandbox, settings, kind, entity, final
):
    """A deposit clears (or a payment closes) after a sync saw it open: its createdAt is now
    behind the incremental window, and FlashFX no longer lists it under the open statuses."""
    settings.FLASHFX_SYNC_OVERLAP_SECONDS = 0  # as if the window had moved on since
    app_sandbox.fund("500.00")
    app_sandbox.configure(step_delay_seconds=3600)  # nothing moves unless we move it
    if kind == "deposits":
        row_id = app_sandbox.receive_deposit("5.00")["id"]
    else:
        row_id = (
            flashfx_client()
            .create_payment(
                {
                    "fromCurrency": "AUD",
                    "toCurrency": "GBP",
                    "size": Decimal("10"),
                    "recipient": GBP_RECIPIENT,
                }
            )
            .id
        )
    sync_flashfx.apply(kwargs={"entities": [entity]})
    model = MODELS[entity]
    first_status = model.objects.get(flashfx_id=row_id).flashfx_status
    assert first_status not in model.FINAL

    for status in PATH[kind][PATH[kind].index(first_status) + 1 :]:
        assert app_sandbox.advance(kind, row_id, status).status_code == 200, status
    result = sync_flashfx.apply(kwargs={"entities": [entity]})

    assert result.result == {entity: 1}
    assert model.objects.get(flashfx_id=row_id).flashfx_status == final


def test_reconcile_flashfx_records_a_drift_report_with_the_balance_proof(app_sandbox):
    populate(app_sandbox)
    sync_flashfx.apply()
    planted = Deposit.objects.get(amount=Decimal("12.34"))
    Deposit.objects.filter(pk=planted.pk).update(flashfx_status="REFUNDED")

    result = reconcile_flashfx.apply(kwargs={"days": 30})

    assert result.state == states.SUCCESS, result.traceback
    report = DriftReport.objects.get(pk=result.result)
    assert report.finished_at is not None and report.error == ""
    assert report.window_end - report.window_start == pytest.approx(
        timedelta(days=30), abs=timedelta(minutes=1)
    )
    item = report.items.get()
    assert (item.kind, item.flashfx_id, item.resolution) == (
        DriftItem.Kind.CONFLICT,
        planted.flashfx_id,
        DriftItem.Resolution.APPLIED,
    )
    assert item.differences == {"flashfx_status": ["REFUNDED", "CONFIRMED"]}
    assert Deposit.objects.get(pk=planted.pk).flashfx_status == "CONFIRMED"
    aud = BalanceCheck.objects.get(report=report, currency="AUD")
    assert aud.balanced
    assert aud.reported_cleared == app_sandbox.balance("AUD")[0]


def test_reconcile_flashfx_defaults_to_flashfx_reconcile_days(app_sandbox, settings):
    settings.FLASHFX_RECONCILE_DAYS = 2
    result = reconcile_flashfx.apply()
    assert result.state == states.SUCCESS, result.traceback
    report = DriftReport.objects.get(pk=result.result)
    assert report.window_end - report.window_start == pytest.approx(
        timedelta(days=2), abs=timedelta(minutes=1)
    )


@pytest.mark.usefixtures("flashfx_down")
def test_sync_flashfx_asks_for_a_retry_while_flashfx_is_unavailable():
    result = sync_flashfx.apply()

    assert result.state == states.FAILURE
    assert isinstance(result.result, FlashFXUnavailable)
    # One failed attempt, then one per retry: each stopped at the first entity.
    attempts = SyncRun.objects.filter(status=SyncRun.Status.FAILED)
    assert attempts.count() == sync_flashfx.max_retries + 1
    assert set(attempts.values_list("entity", flat=True)) == {registry.names()[0]}
    assert not SyncRun.objects.exclude(status=SyncRun.Status.FAILED).exists()


@pytest.mark.usefixtures("flashfx_down")
def test_reconcile_flashfx_asks_for_a_retry_while_flashfx_is_unavailable():
    result = reconcile_flashfx.apply(kwargs={"days": 1})

    assert result.state == states.FAILURE
    assert isinstance(result.result, FlashFXUnavailable)
    reports = DriftReport.objects.all()
    assert reports.count() == reconcile_flashfx.max_retries + 1
    assert all(r.error.startswith("FlashFXUnavailable: ") for r in reports)


def test_sync_flashfx_does_not_retry_what_a_retry_cannot_fix(app_sandbox, settings):
    """Refused credentials are not an outage: one attempt, and the error for a person."""
    flashfx_client().logout()  # no token left in the shared store to carry on with
    settings.FLASHFX_PASSWORD = "not-the-password"
    close_app_client()

    result = sync_flashfx.apply()

    assert result.state == states.FAILURE
    assert isinstance(result.result, FlashFXAuthError)
    assert SyncRun.objects.filter(status=SyncRun.Status.FAILED).count() == 1


def test_both_tasks_are_registered_and_scheduled_in_beat(settings):
    app.loader.import_default_modules()
    scheduled = {
        entry["task"]: entry["schedule"] for entry in settings.CELERY_BEAT_SCHEDULE.values()
    }

    assert sync_flashfx.name == "mirrors.tasks.sync_flashfx"
    assert reconcile_flashfx.name == "mirrors.tasks.reconcile_flashfx"
    assert {sync_flashfx.name, reconcile_flashfx.name} <= set(scheduled)
    assert set(scheduled) <= set(app.tasks)  # beat names only tasks the workers know
    assert app.tasks[sync_flashfx.name].max_retries == 5
    assert scheduled[sync_flashfx.name] == float(settings.FLASHFX_SYNC_INTERVAL_SECONDS)
    nightly = scheduled[reconcile_flashfx.name]
    assert isinstance(nightly, crontab)
    assert (nightly.hour, nightly.minute) == ({3}, {15})  # once a day, 03:15
    assert app.conf.beat_schedule == settings.CELERY_BEAT_SCHEDULE
