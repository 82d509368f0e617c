"""Celery tasks of the staff shell: thin, safe to run twice."""

from __future__ import annotations

from celery import shared_task

from . import readiness


@shared_task(acks_late=True, ignore_result=True)
def beat_heartbeat() -> None:
    """Scheduled by beat every READY_HEARTBEAT_SECONDS; /readyz reads when it last ran."""
    readiness.heartbeat(readiness.BEAT)
