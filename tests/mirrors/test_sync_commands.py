"""`manage.py sync_flashfx` and `manage.py reconcile` against the real sandbox over HTTP.

The commands use the process's own client (`mirrors.client.flashfx_client()`, built from
settings, with the database or Redis token store), so these tests point the settings at the
test sandbox instead of building a client themselves.
"""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal
from io import StringIO

import pytest
from app_flashfx import MODELS, mirrored_ids, populate, remote_ids
from django.conf import settings as django_settings
from django.core.management import CommandError, call_command
from django.utils import timezone
from harness import close_app_client, point_app_at, point_app_at_nothing, wait_until

from mirrors.client import flashfx_client
from mirrors.models import BalanceCheck, DriftItem, DriftReport, SyncRun
from mirrors.registry import registry
from parties.models import Sender
from payments.models import Deposit, Withdrawal

# The read-ahead thread of a sync reads the token store on its own database connection, so the
# rows the test writes must be committed, not held in a test transaction.
pytestmark = pytest.mark.django_db(transaction=True)

SUMMARY = re.compile(
    r"^(?P<entity>\w+) +(?P<mode>full|incremental) +windows=(?P<windows>\d+) fetched=(?P<fetched>\d+)"
    r" created=(?P<created>\d+) updated=(?P<updated>\d+) unchanged=(?P<unchanged>\d+)"
    r" stale=(?P<stale>\d+) refused=(?P<refused>\d+)$"
)


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


def run(command: str, *args: str) -> str:
    out = StringIO()
    call_command(command, *args, stdout=out)
    return out.getvalue()


def summary(output: str) -> dict[str, dict[str, str]]:
    """The command's one line per entity, parsed; every line must be a summary line."""
    lines = output.strip().splitlines()
    parsed = [SUMMARY.match(line) for line in lines]
    assert all(parsed), output
    return {m["entity"]: m.groupdict() for m in parsed}


# --- sync_flashfx ------------------------------------------------------------------------------


def test_sync_flashfx_mirrors_everything_then_only_what_changed(app_sandbox):
    populate(app_sandbox)
    remote = remote_ids()

    first = summary(run("sync_flashfx"))

    assert list(first) == registry.names()  # one line per entity, in dependency order
    assert mirrored_ids() == remote
    for name, line in first.items():
        # No run before this one, so "incremental" starts from FLASHFX_SYNC_EPOCH.
        assert line["mode"] == "full"
        assert int(line["created"]) == int(line["fetched"]) == len(remote[name]), line
        assert (line["updated"], line["stale"], line["refused"]) == ("0", "0", "0")
    assert Deposit.objects.get(amount=Decimal("12.34")).sub_client is not None
    assert Withdrawal.objects.get().amount == Decimal("0.1")

    second = summary(run("sync_flashfx"))
    assert {line["mode"] for line in second.values()} == {"incremental"}
    assert {(line["created"], line["updated"]) for line in second.values()} == {("0", "0")}

    new = app_sandbox.receive_deposit("7.00")
    wait_until(lambda: app_sandbox.deposit_status(new["id"]) == "CONFIRMED", what="it to clear")
    third = summary(run("sync_flashfx"))
    assert (third["deposits"]["created"], third["deposits"]["updated"]) == ("1", "0")
    assert Deposit.objects.get(flashfx_id=new["id"]).flashfx_status == "CONFIRMED"
    assert SyncRun.objects.filter(status=SyncRun.Status.SUCCEEDED).count() == 3 * len(MODELS)


def test_sync_flashfx_entity_and_since_backfill_only_that_entity_from_that_time(app_sandbox):
    # createdAt 2025-12-30, 12-31, 2026-01-01, 01-02 (inclusive, evenly spread).
    app_sandbox.control(
        "deposits/import",
        {"count": 4, "createdFrom": "2025-12-30T00:00:00Z", "createdTo": "2026-01-02T00:00:00Z"},
    )
    flashfx_client().create_sender({"companyName": "Not asked for"})

    lines = summary(run("sync_flashfx", "--entity", "deposits", "--since", "2026-01-01T00:00:00Z"))

    assert list(lines) == ["deposits"]
    assert (lines["deposits"]["mode"], lines["deposits"]["created"]) == ("full", "2")
    assert sorted(d.flashfx_created_at.date().isoformat() for d in Deposit.objects.all()) == [
        "2026-01-01",
        "2026-01-02",
    ]
    assert not Sender.objects.exists()
    run_row = SyncRun.objects.get()
    assert (run_row.entity, run_row.since.isoformat()) == ("deposits", "2026-01-01T00:00:00+00:00")


def test_sync_flashfx_full_restores_an_old_row_an_incremental_sync_would_not_look_at(app_sandbox):
    app_sandbox.control(
        "deposits/import",
        {"count": 3, "createdFrom": "2026-01-01T00:00:00Z", "createdTo": "2026-03-01T00:00:00Z"},
    )
    run("sync_flashfx", "--entity", "deposits")
    lost = Deposit.objects.order_by("flashfx_created_at").first()
    lost_id = lost.flashfx_id
    lost.delete()

    incremental = summary(run("sync_flashfx", "--entity", "deposits"))
    assert (incremental["deposits"]["mode"], incremental["deposits"]["created"]) == (
        "incremental",
        "0",
    )
    assert not Deposit.objects.filter(flashfx_id=lost_id).exists()

    full = summary(run("sync_flashfx", "--entity", "deposits", "--full"))
    assert full["deposits"]["mode"] == "full"
    assert (full["deposits"]["created"], full["deposits"]["unchanged"]) == ("1", "2")
    assert Deposit.objects.filter(flashfx_id=lost_id).exists()
    assert (
        SyncRun.objects.filter(mode="full").latest("started_at").since
        == django_settings.FLASHFX_SYNC_EPOCH
    )


@pytest.mark.parametrize(
    ("since", "message"),
    [
        ("yesterday", "--since must be ISO-8601, e.g. 2026-01-31T00:00:00Z, not 'yesterday'"),
        ("2026-01-01T00:00:00", "--since needs a UTC offset or Z"),
    ],
)
def test_sync_flashfx_refuses_a_since_that_is_not_an_aware_iso_time(since, message):
    with pytest.raises(CommandError) as raised:
        run("sync_flashfx", "--since", since)
    assert str(raised.value) == message
    assert not SyncRun.objects.exists()


def test_sync_flashfx_refuses_an_unknown_entity():
    with pytest.raises(CommandError, match="invalid choice: 'deposit'"):
        run("sync_flashfx", "--entity", "deposit")


# --- reconcile ---------------------------------------------------------------------------------


def test_reconcile_prints_the_drift_report_and_a_balanced_balance_after_a_sync(app_sandbox):
    populate(app_sandbox)
    run("sync_flashfx")
    planted = Deposit.objects.get(amount=Decimal("12.34"))
    Deposit.objects.filter(pk=planted.pk).update(amount=Decimal("99.99"))
    since = timezone.now() - timedelta(days=30)
    in_window = sum(
        model.objects.filter(flashfx_created_at__gte=since).count() for model in MODELS.values()
    )

    output = run("reconcile", "--days", "30")

    report = DriftReport.objects.get()
    lines = output.strip().splitlines()
    assert lines[0] == f"drift report {report.pk}: {in_window} compared, 1 differences"
    assert lines[1].split() == [
        "conflict",
        "deposits",
        planted.flashfx_id,
        "applied:",
        "{'amount':",
        "['99.99',",
        "'12.34']}",
    ]
    cleared = app_sandbox.balance("AUD")[0].quantize(Decimal("0.01"))
    assert f"  balance AUD: FlashFX {cleared}, mirror {cleared}: balanced" in lines
    assert Deposit.objects.get(pk=planted.pk).amount == Decimal("12.34")  # FlashFX's version
    assert report.items.get().resolution == DriftItem.Resolution.APPLIED
    aud = BalanceCheck.objects.get(report=report, currency="AUD")
    assert aud.balanced and aud.reported_cleared == cleared
    # Only what was created in the last 30 days was compared: the imported history is older.
    assert report.compared < sum(len(ids) for ids in mirrored_ids().values())


def test_reconcile_reports_a_balance_that_does_not_add_up(app_sandbox):
    populate(app_sandbox)
    run("sync_flashfx")
    Withdrawal.objects.all().delete()  # a payout the mirror lost; only deposits are reconciled

    output = run("reconcile", "--days", "30", "--entity", "deposits")

    cleared = app_sandbox.balance("AUD")[0].quantize(Decimal("0.01"))
    mirror = cleared + Decimal("1.10")  # the lost payout's 0.10 and its 1.00 fee
    assert (
        f"  balance AUD: FlashFX {cleared}, mirror {mirror}: DIFFERS by -1.10 cleared, 0.00 pending"
        in output.splitlines()
    )
    assert DriftReport.objects.get().entities == ["deposits"]


@pytest.mark.parametrize("days", ["0", "-3"])
def test_reconcile_refuses_a_window_that_is_not_positive(days):
    with pytest.raises(CommandError, match="^--days must be positive$"):
        run("reconcile", "--days", days)
    assert not DriftReport.objects.exists()


# --- FlashFX unreachable -----------------------------------------------------------------------


@pytest.mark.usefixtures("flashfx_down")
def test_sync_flashfx_fails_with_a_command_error_naming_flashfx_unavailable():
    with pytest.raises(CommandError, match=r"^FlashFX: FlashFXUnavailable: "):
        run("sync_flashfx")
    failed = SyncRun.objects.get()  # the first entity failed, the rest were not tried
    assert failed.status == SyncRun.Status.FAILED
    assert failed.error.startswith("FlashFXUnavailable: ")


@pytest.mark.usefixtures("flashfx_down")
def test_reconcile_fails_with_a_command_error_naming_flashfx_unavailable():
    with pytest.raises(CommandError, match=r"^FlashFX: FlashFXUnavailable: "):
        run("reconcile", "--days", "1")
    assert DriftReport.objects.get().error.startswith("FlashFXUnavailable: ")


@pytest.mark.parametrize("command", ["sync_flashfx", "reconcile"])
def test_flashfx_going_down_with_a_token_held_still_gives_the_command_error(
    command, app_sandbox, settings
):
    """The command logs out at the end; when FlashFX is down that fails too, and must not hide
    the real error behind a traceback from the logout."""
    flashfx_client().login()  # a token in the shared store, as a running back-office has
    point_app_at_nothing(settings)

    with pytest.raises(CommandError, match=r"^FlashFX: FlashFXUnavailable: "):
        run(command)
