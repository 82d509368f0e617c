"""What /readyz checks: is everything this process needs to do its work there?

- database: one query;
- redis: PING, when REDIS_URL is set (the cache, the webhook hand-off and the broker use it);
- broker: a connection to Celery's broker (Redis, or the filesystem queue folders);
- flashfx: FLASHFX_API_URL answers HTTP (flashfx/reachability.py);
- beat: the heartbeat task beat schedules ran within READY_BEAT_STALE_SECONDS, so beat and at
  least one worker are alive (a task nobody runs writes nothing).

Each check is timed and says why it failed; one failing makes the whole answer not ready.
/healthz, in contrast, only says the process answers.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import connection
from django.utils import timezone

from flashfx.reachability import unreachable

from .models import Heartbeat

BEAT = "beat"
TIMEOUT_SECONDS = 2.0


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    ms: float

    def as_json(self) -> dict[str, object]:
        return {"ok": self.ok, "detail": self.detail, "ms": round(self.ms, 1)}


def heartbeat(name: str) -> None:
    Heartbeat.objects.update_or_create(name=name, defaults={"seen_at": timezone.now()})


def _database() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return "ok"


def _redis() -> str:
    if not settings.REDIS_URL:
        return "not used (no REDIS_URL)"
    import redis

    client = redis.Redis.from_url(
        settings.REDIS_URL, socket_timeout=TIMEOUT_SECONDS, socket_connect_timeout=TIMEOUT_SECONDS
    )
    try:
        client.ping()
    finally:
        client.close()
    return "ok"


def _broker() -> str:
    from .celery import app

    with app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=0, timeout=TIMEOUT_SECONDS)  # one attempt
    return "ok"


def _flashfx() -> str:
    why = unreachable(settings.FLASHFX_API_URL, timeout=TIMEOUT_SECONDS)
    if why:
        raise ConnectionError(f"{settings.FLASHFX_API_URL}: {why}")
    return "answers"


def _beat() -> str:
    seen = Heartbeat.objects.filter(name=BEAT).values_list("seen_at", flat=True).first()
    if seen is None:
        raise LookupError("no heartbeat yet: is beat running, with a worker?")
    age = timezone.now() - seen
    if age > timedelta(seconds=settings.READY_BEAT_STALE_SECONDS):
        raise LookupError(f"last heartbeat {int(age.total_seconds())} s ago")
    return f"{int(age.total_seconds())} s ago"


CHECKS: dict[str, Callable[[], str]] = {
    "database": _database,
    "redis": _redis,
    "broker": _broker,
    "flashfx": _flashfx,
    "beat": _beat,
}


def run_checks(names: list[str] | None = None) -> list[Check]:
    """Every check, or the named ones, in order."""
    results = []
    for name, check in CHECKS.items():
        if names is not None and name not in names:
            continue
        started = time.perf_counter()
        try:
            detail, ok = check(), True
        except Exception as exc:  # any failure is a "not ready", reported with its reason
            detail, ok = f"{type(exc).__name__}: {exc}"[:300], False
        results.append(Check(name, ok, detail, (time.perf_counter() - started) * 1000))
    return results
