"""What every test that drives the sandbox shares: its credentials, exact JSON, waiting.

A plain module beside tests/conftest.py (pytest puts tests/ on sys.path): `from harness import ...`.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest

API_EMAIL = "api@sandbox.local"
API_PASSWORD = "sandbox-password"
WEBHOOK_SECRET = "test-webhook-secret"


def loads(raw: bytes | str) -> Any:
    """JSON with every non-integer number as the exact Decimal written on the wire."""
    return json.loads(raw, parse_float=Decimal)


def wait_until(
    check: Callable[[], Any], *, timeout: float = 15.0, interval: float = 0.05, what: str = ""
) -> Any:
    """Poll until check() returns something truthy; fail with what was last seen."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what or check}")
        time.sleep(interval)


DEPOSIT_SENDER = {"accountName": "Test Payer", "bsb": "062000", "accountNo": "11112222"}


def race(*calls):
    """Run each call on its own thread (each with its own database connection, closed after),
    released together from a barrier; what each returned or raised, in order."""
    from django.db import connection

    barrier = threading.Barrier(len(calls))
    results: list = [None] * len(calls)

    def run(i, call):
        try:
            barrier.wait()
            results[i] = call()
        except Exception as exc:  # the outcome under test
            results[i] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return results


# --- The back-office's own FlashFX client, pointed where a test wants it ----------------------


def close_app_client() -> None:
    """Close this process's cached FlashFX client, if one was built, and forget it: the next
    flashfx_client() is built from the settings as they are then."""
    from mirrors.client import flashfx_client

    if flashfx_client.cache_info().currsize:
        flashfx_client().close()
    flashfx_client.cache_clear()


def point_app_at(settings, url: str) -> None:
    """Make the next flashfx_client() talk to `url` (pytest-django's `settings` fixture)."""
    close_app_client()
    settings.FLASHFX_API_URL = url


def point_app_at_nothing(settings, retry_budget_seconds: float = 0.3) -> None:
    """FLASHFX_API_URL on a port nobody listens on, and a short query retry budget."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again when the block ends
    point_app_at(settings, f"http://127.0.0.1:{port}/")
    settings.FLASHFX_QUERY_RETRY_BUDGET_SECONDS = retry_budget_seconds


def spare_redis(database: int) -> str:
    """A Redis database of the tests' own on the machine's Redis (REDIS_URL's server, else the
    local one); the test is skipped when there is none."""
    import os

    import redis

    url = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379"
    base = url.rsplit("/", 1)[0] if url.count("/") > 2 else url
    spare = f"{base}/{database}"
    try:
        redis.Redis.from_url(spare, socket_connect_timeout=1).ping()
    except redis.ConnectionError:
        pytest.skip(f"no Redis at {spare} (it runs on every developer and CI machine)")
    return spare
