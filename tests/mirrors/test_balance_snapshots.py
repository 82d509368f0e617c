"""`mirrors.tasks.snapshot_balances`: beat reads FlashFX's balances (the sandbox here) into
BalanceSnapshot rows, which the dashboard shows without calling FlashFX itself."""

from __future__ import annotations

from decimal import Decimal

import pytest
from celery import states
from harness import close_app_client, point_app_at, point_app_at_nothing

from backoffice.celery import app
from flashfx.errors import FlashFXUnavailable
from mirrors.models import BalanceSnapshot
from mirrors.tasks import snapshot_balances

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def app_sandbox(sandbox, settings):
    point_app_at(settings, sandbox.url)
    yield sandbox
    close_app_client()


def test_a_snapshot_records_each_currency_as_flashfx_reports_it(app_sandbox):
    app_sandbox.fund("1234.56")
    cleared, pending = app_sandbox.balance("AUD")
    result = snapshot_balances.apply()
    assert result.state == states.SUCCESS
    aud = BalanceSnapshot.objects.get(currency="AUD")
    assert (aud.cleared, aud.pending) == (Decimal(str(cleared)), Decimal(str(pending)))
    assert aud.cleared >= Decimal("1234.56")
    assert result.result == BalanceSnapshot.objects.count()
    snapshot_balances.apply()  # every run adds a reading: the dashboard draws them over time
    assert BalanceSnapshot.objects.filter(currency="AUD").count() == 2


def test_flashfx_unavailable_fails_the_run_and_records_nothing(settings):
    point_app_at_nothing(settings)
    try:
        result = snapshot_balances.apply()
    finally:
        close_app_client()
    assert result.state == states.FAILURE
    assert isinstance(result.result, FlashFXUnavailable)
    assert not BalanceSnapshot.objects.exists()


def test_beat_schedules_it_every_flashfx_balance_snapshot_seconds(settings):
    (entry,) = [
        e for e in settings.CELERY_BEAT_SCHEDULE.values() if e["task"] == snapshot_balances.name
    ]
    assert entry["schedule"] == float(settings.FLASHFX_BALANCE_SNAPSHOT_SECONDS) == 900.0
    assert snapshot_balances.name in app.tasks
