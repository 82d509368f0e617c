"""Celery tasks of the staff shell: thin, safe to run twice."""

from __future__ import annotations

from celery import shared_task
from celery.signals import beat_init

from . import readiness


@shared_task(acks_late=True, ignore_result=True)
def beat_heartbeat() -> None:
    """Scheduled by beat every READY_HEARTBEAT_SECONDS; /readyz reads when it last ran."""
    readiness.heartbeat(readiness.BEAT)


@beat_init.connect
def heartbeat_when_beat_starts(**kwargs) -> None:
    """The first heartbeat as beat starts, not an interval later: /readyz (and compose's health
    check) reports a fresh deployment ready as soon as a worker has run it."""
    beat_heartbeat.delay()
