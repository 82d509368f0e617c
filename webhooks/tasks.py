"""Handing received webhooks to workers, and the Celery tasks that process them.

The only module of webhooks/ that enqueues: the receiver calls `hand_off` after its row has
committed, and the tasks are thin and safe to run twice; the work is in processing.py and
backlog.py.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import cache
from typing import Any

from celery import shared_task
from django.conf import settings
from django.db import connection
from django.http import HttpRequest

from backoffice import metrics

from . import backlog, processing, silence

log = logging.getLogger(__name__)


def hand_off(event_id: int, *, flag_was_set: bool | None = None) -> None:
    """After commit: make sure a worker will process the event (FLASHFX_WEBHOOK_HANDOFF).

    `flag_was_set`: the drain flag's SET NX was sent already, with the request's metrics
    write (hand_off_with_answer), and this is its answer."""
    try:
        if settings.FLASHFX_WEBHOOK_HANDOFF == "coalesced":
            # One Redis SET NX instead of a Celery publish (~1 ms of CPU, the request's largest
            # cost in bench/webhooks.py): only the request that finds no drain queued publishes
            # one. The drain clears the flag before it looks for events, and this row is
            # committed before the flag is tried, so a drain that starts after us sees it.
            if drain_flag().set(nx=True) if flag_was_set is None else flag_was_set:
                drain_inbound_events.delay()
        else:
            process_inbound_event.delay(event_id)
    except Exception:
        # The event is durable: the beat sweeper enqueues RECEIVED events the broker lost.
        log.exception("could not enqueue webhook event %s; the sweeper will pick it up", event_id)


def hand_off_with_answer(request: HttpRequest, event_id: int) -> None:
    """`hand_off` for the receiving view: the coalesced hand-off's SET NX goes with the
    request's one Redis write (MetricsMiddleware), when the answer is ready; the row was
    committed before, as the drain needs. Not sent (no Redis, Redis failing, no middleware):
    `hand_off` as usual."""
    if settings.FLASHFX_WEBHOOK_HANDOFF != "coalesced" or not settings.REDIS_URL:
        hand_off(event_id)
        return

    def done(was_set: Any) -> None:
        hand_off(event_id, flag_was_set=None if was_set is metrics.NOT_SENT else bool(was_set))

    metrics.ride_with_request(request, metrics.Rider(command=drain_flag().set_in, done=done))


@dataclass(frozen=True)
class DrainFlag:
    """'A drain task is queued and has not started': a Redis key with an expiry, so that a
    drain the broker lost only delays the next one by `ttl` seconds (the sweeper backs it up)."""

    client: Any
    key: str
    ttl: int = 10

    def set(self, *, nx: bool) -> bool:
        return bool(self.client.set(self.key, b"1", nx=nx, ex=self.ttl))

    def set_in(self, pipe: Any) -> Any:
        """The same SET NX, added to a pipeline (its answer: True when it set the flag)."""
        return pipe.set(self.key, b"1", nx=True, ex=self.ttl)

    def clear(self) -> None:
        self.client.delete(self.key)


@cache
def drain_flag() -> DrainFlag:
    import redis

    database = connection.settings_dict["NAME"]  # one flag per database sharing the Redis
    return DrainFlag(
        redis.Redis.from_url(settings.REDIS_URL), f"flashfx-backoffice:webhooks:drain:{database}"
    )


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


def _retry_alone(event_id: int) -> None:
    process_inbound_event.apply_async((event_id,), countdown=5)


@shared_task
def drain_inbound_events() -> int:
    """Process every RECEIVED event (the coalesced hand-off); each failure gets its own task.

    Clears the drain flag first, so that a request committing after that point queues the next
    drain; past the drain's limit, another drain is queued rather than holding this worker.
    """
    drain_flag().clear()
    drained = backlog.drain_received(retry_alone=_retry_alone)
    if drained.more:
        drain_inbound_events.delay()
    return drained.done


@shared_task
def sweep_inbound_events() -> int:
    """Enqueue events the broker lost or a killed worker left behind (beat)."""
    stuck = backlog.sweep_stuck()
    for event_id in stuck:
        process_inbound_event.delay(event_id)
    return len(stuck)


@shared_task
def prune_inbound_events() -> int:
    """Drop raw bodies of processed events after FLASHFX_WEBHOOK_RETENTION_DAYS (beat)."""
    return backlog.prune_bodies()


@shared_task
def check_webhook_silence() -> int:
    """Alert on changes sync found that no webhook ever reported (beat)."""
    return len(silence.silence_alerts())
