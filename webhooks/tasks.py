"""Celery tasks for inbound webhooks: thin, safe to run twice; the work is in webhooks.processing."""

from __future__ import annotations

from celery import shared_task

from . import processing


@shared_task(bind=True, acks_late=True, max_retries=6)
def process_inbound_event(self, event_id: int) -> str:
    """Apply one received event; retried with backoff, then dead-lettered with its exception."""
    try:
        return processing.inbound_event_process(event_id=event_id)
    except processing.RETRYABLE as exc:
        if self.request.retries >= self.max_retries:
            processing.inbound_event_dead(event_id=event_id)
            raise
        raise self.retry(exc=exc, countdown=min(5 * 2**self.request.retries, 600)) from exc


@shared_task
def drain_inbound_events() -> int:
    """Process every RECEIVED event (the coalesced hand-off); each failure gets its own task."""
    return processing.drain_received()


@shared_task
def sweep_inbound_events() -> int:
    """Enqueue events the broker lost or a killed worker left behind (beat)."""
    return processing.sweep_stuck()


@shared_task
def prune_inbound_events() -> int:
    """Drop raw bodies of processed events after FLASHFX_WEBHOOK_RETENTION_DAYS (beat)."""
    return processing.prune_bodies()


@shared_task
def check_webhook_silence() -> int:
    """Alert on changes sync found that no webhook ever reported (beat)."""
    return len(processing.silence_alerts())
