"""Celery tasks that keep the mirrors true: thin, safe to run twice; the work is in sync and reconcile."""

from __future__ import annotations

from datetime import timedelta

from celery import shared_task
from celery.signals import beat_init
from django.conf import settings
from django.utils import timezone

from flashfx.errors import FlashFXUnavailable

from . import reconcile, sync
from .client import flashfx_client


@shared_task(bind=True, acks_late=True, max_retries=5)
def sync_flashfx(self, entities: list[str] | None = None) -> dict[str, int]:
    """Incremental sync of every mirror (beat, every FLASHFX_SYNC_INTERVAL_SECONDS)."""
    try:
        runs = sync.sync_all(client=flashfx_client(), entities=entities)
    except FlashFXUnavailable as exc:
        raise self.retry(
            exc=exc, countdown=exc.retry_after or 30 * 2**self.request.retries
        ) from exc
    return {run.entity: run.created + run.updated for run in runs}


@shared_task(bind=True, acks_late=True, max_retries=5)
def reconcile_flashfx(self, days: int | None = None) -> int:
    """Nightly drift report over the last FLASHFX_RECONCILE_DAYS days, with the balance proof."""
    since = timezone.now() - timedelta(days=days or settings.FLASHFX_RECONCILE_DAYS)
    try:
        report = reconcile.reconcile(client=flashfx_client(), since=since)
    except FlashFXUnavailable as exc:
        raise self.retry(
            exc=exc, countdown=exc.retry_after or 60 * 2**self.request.retries
        ) from exc
    return report.pk


def reconcile_enqueue(days: int) -> None:
    """A reconciliation of the last `days` days, once the current transaction commits (the
    reconciliation page's "Run reconciliation now")."""
    reconcile_flashfx.delay_on_commit(days)


@shared_task(acks_late=True, ignore_result=True)
def snapshot_balances() -> int:
    """FlashFX's balances into BalanceSnapshot (beat, every FLASHFX_BALANCE_SNAPSHOT_SECONDS).

    No retry: the next beat reads them again, and a failure is logged by Celery with its error.
    """
    return len(reconcile.balance_snapshot(client=flashfx_client()))


@beat_init.connect
def sync_when_beat_starts(**kwargs) -> None:
    """One incremental sync as soon as beat starts, not an interval later: after a deploy or
    an outage the mirrors catch up at once, and a fresh `make run` shows the sandbox's
    recipients and senders within seconds. If FlashFX is not up yet, the task retries."""
    sync_flashfx.delay()
