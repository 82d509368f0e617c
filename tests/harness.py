"""What every test that drives the sandbox shares: its credentials, exact JSON, waiting.

A plain module beside tests/conftest.py (pytest puts tests/ on sys.path): `from harness import ...`.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
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


# --- A Redis database of this test process's own ---------------------------------------------
#
# Databases 1-15 of the machine's Redis are shared by every test process on it: the xdist
# workers of a run, and other runs at the same time. A test that needs a database to itself (a
# worker's broker, make prod-local's processes, keys it reads back) claims one for the whole
# process: SET NX of a claim key that expires, in a database holding nothing else, or only what
# an earlier test process left behind (marked, so it is known to be ours to clear). Numbers
# fixed in tests collided: make prod-local's test flushed database 15 while a fault test's
# workers used it as their broker, and each side's worker took the other's tasks.

REDIS_CLAIM_KEY = "flashfx-backoffice:test-claim"
REDIS_MARK_KEY = "flashfx-backoffice:test-leftovers"  # stays if a test process dies
REDIS_CLAIM_SECONDS = 6 * 3600


def redis_server_url() -> str:
    """The machine's Redis: REDIS_URL's server, else the local one (every developer and CI
    machine runs it), without a database number."""
    import os
    from urllib.parse import urlsplit, urlunsplit

    url = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379"
    return urlunsplit(urlsplit(url)._replace(path=""))


def clear_redis_database(client) -> None:
    """Remove everything but the claim and the mark (FLUSHDB would drop them too)."""
    kept = {REDIS_CLAIM_KEY.encode(), REDIS_MARK_KEY.encode()}
    for key in client.scan_iter():
        if key not in kept:
            client.delete(key)


@contextmanager
def claimed_redis_database() -> Iterator[str]:
    """The URL of a Redis database of this process's own, found empty (or holding only marked
    leftovers, cleared) and kept until the block ends, emptied again. Skips the test when there
    is no Redis; fails when no database is free."""
    import os
    import uuid
    from urllib.parse import urlsplit

    import redis

    server = redis_server_url()
    try:
        redis.Redis.from_url(server, socket_connect_timeout=1).ping()
    except redis.ConnectionError:
        pytest.skip(f"no Redis at {server} (it runs on every developer and CI machine)")
    in_use = int(urlsplit(os.environ.get("REDIS_URL", "")).path.lstrip("/") or 0)
    token = f"{os.getpid()}-{uuid.uuid4().hex}".encode()
    for db in range(15, 0, -1):
        if db == in_use:
            continue
        client = redis.Redis.from_url(f"{server}/{db}")
        if client.set(REDIS_CLAIM_KEY, token, nx=True, ex=REDIS_CLAIM_SECONDS):
            others = {k for k in client.scan_iter() if k != REDIS_CLAIM_KEY.encode()}
            if not others or REDIS_MARK_KEY.encode() in others:
                break
            client.delete(REDIS_CLAIM_KEY)  # ours, just set: someone else uses this database
        client.close()
    else:
        pytest.fail("no free Redis database (1-15) left for this test process")
    clear_redis_database(client)
    client.set(REDIS_MARK_KEY, "1")
    try:
        yield f"{server}/{db}"
    finally:
        clear_redis_database(client)
        client.delete(REDIS_MARK_KEY)
        if client.get(REDIS_CLAIM_KEY) == token:
            client.delete(REDIS_CLAIM_KEY)
        client.close()
