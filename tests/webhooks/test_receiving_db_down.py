"""The database is unavailable while a webhook arrives: 503, nothing half-stored, and FlashFX's
retry (here: the sandbox's own) then succeeds, exactly once.

Made real, not mocked: a second connection holds the webhook table locked, and the app's
connections are told to give up quickly (PostgreSQL `lock_timeout`, SQLite `busy_timeout`), as
a database under a long migration or a stuck transaction would make them.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import socket
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from unittest import mock

import httpx
import pytest
from django.db import connection
from harness import wait_until

from webhooks.models import InboundEvent
from webhooks.receiving import allowed_networks

SECRET = "receiver-db-down-secret"
GIVE_UP_MS = 300  # how long the app's connection waits for the lock before failing

pytestmark = pytest.mark.django_db(transaction=True)


def sign(body: bytes, secret: str = SECRET) -> str:
    return base64.b64encode(
        hmac.new(secret.encode("utf-8"), body, hashlib.sha256).digest()
    ).decode()


@pytest.fixture(autouse=True)
def receiver_settings(settings):
    settings.FLASHFX_WEBHOOK_SECRET = SECRET
    settings.FLASHFX_WEBHOOK_SECRET_PREVIOUS = ""
    settings.FLASHFX_WEBHOOK_ALLOWED_IPS = []
    settings.FLASHFX_WEBHOOK_TRUSTED_PROXIES = 0
    allowed_networks.cache_clear()
    yield settings
    allowed_networks.cache_clear()


@pytest.fixture(autouse=True)
def enqueued(settings):
    settings.FLASHFX_WEBHOOK_HANDOFF = "per-event"  # one task per event, counted here
    with mock.patch("webhooks.tasks.process_inbound_event.delay") as delay:
        yield delay


@pytest.fixture
def impatient_app_connections(monkeypatch):
    """New app connections (the live server opens one per request) give up on a lock quickly.

    The connection settings are the dict every new connection of every thread is built from;
    only its OPTIONS change, for this test.
    """
    options = connection.settings_dict["OPTIONS"]
    if connection.vendor == "postgresql":
        monkeypatch.setitem(options, "options", f"-c lock_timeout={GIVE_UP_MS}")
    elif connection.vendor == "sqlite":
        if connection.is_in_memory_db():
            pytest.skip("an in-memory SQLite database cannot be locked from another connection")
        init = options.get("init_command", "")
        monkeypatch.setitem(
            options,
            "init_command",
            init.replace("busy_timeout=5000", f"busy_timeout={GIVE_UP_MS}")
            if "busy_timeout" in init
            else f"{init} PRAGMA busy_timeout={GIVE_UP_MS};",
        )
    else:
        pytest.skip(f"no way to lock a {connection.vendor} table here")


@contextmanager
def table_locked() -> Iterator[Callable[[], int]]:
    """Another client holds the webhook table (PostgreSQL) or the whole database (SQLite).

    Yields a count of the table's rows as that client sees them: the app cannot be asked while
    the lock is held."""
    table = InboundEvent._meta.db_table
    settings_dict = connection.settings_dict
    if connection.vendor == "postgresql":
        import psycopg

        locker = psycopg.connect(
            dbname=settings_dict["NAME"],
            host=settings_dict["HOST"] or None,
            port=settings_dict["PORT"] or None,
            user=settings_dict["USER"] or None,
            password=settings_dict["PASSWORD"] or None,
        )
        try:
            locker.execute(f'LOCK TABLE "{table}" IN ACCESS EXCLUSIVE MODE')
            yield lambda: locker.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0]
        finally:
            locker.rollback()
            locker.close()
    else:
        locker = sqlite3.connect(settings_dict["NAME"], isolation_level=None, timeout=10)
        try:
            locker.execute("BEGIN EXCLUSIVE")
            yield lambda: locker.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0]
        finally:
            locker.execute("ROLLBACK")
            locker.close()


def event_body(request_id: str) -> bytes:
    return json.dumps(
        {
            "event": "deposit_cleared",
            "eventScheduledAt": "2026-05-01T02:03:04.005Z",
            "id": "65f0c0ffee0000000000d001",
            "amount": 1000,
            "currency": "AUD",
            "note": request_id,
        },
        separators=(",", ":"),
    ).encode()


def test_a_locked_database_is_answered_503_with_nothing_stored_and_the_retry_is_accepted(
    live_server, impatient_app_connections, enqueued
):
    url = live_server.url + "/webhooks/flashfx/"
    request_id = secrets.token_hex(12)
    body = event_body(request_id)
    headers = {"flashfx-request-id": request_id, "flashfx-signature": sign(body)}

    with table_locked() as rows_seen_by_the_locker:
        refused = httpx.post(url, content=body, headers=headers, timeout=30)
        stored_meanwhile = rows_seen_by_the_locker()
    retried = httpx.post(url, content=body, headers=headers, timeout=30)
    again = httpx.post(url, content=body, headers=headers, timeout=30)

    assert (refused.status_code, refused.json()) == (503, {"error": "temporarily unavailable"})
    assert stored_meanwhile == 0  # nothing half-stored
    assert (retried.status_code, retried.json()) == (200, {"status": "received"})
    assert (again.status_code, again.json()) == (200, {"status": "duplicate"})
    row = InboundEvent.objects.get()
    assert (row.accepted, row.request_id, bytes(row.body)) == (True, request_id, body)
    enqueued.assert_called_once_with(row.pk)


def test_a_quarantined_request_meets_the_same_503(live_server, impatient_app_connections, enqueued):
    """A refusal is stored too, so it cannot be answered while the database is away either:
    a 4xx now would tell FlashFX to give up on a request nobody recorded."""
    url = live_server.url + "/webhooks/flashfx/"
    body = event_body("x")
    headers = {"flashfx-request-id": "x-1", "flashfx-signature": sign(body, "wrong")}

    with table_locked():
        refused = httpx.post(url, content=body, headers=headers, timeout=30)
    after = httpx.post(url, content=body, headers=headers, timeout=30)

    assert (refused.status_code, after.status_code) == (503, 401)
    assert list(InboundEvent.objects.values_list("reason", flat=True)) == ["bad_signature"]
    assert not enqueued.called


def test_a_database_that_cannot_be_reached_is_answered_503(
    live_server, monkeypatch, tmp_path, enqueued
):
    """Not locked but gone: new app connections fail to open (PostgreSQL: nothing listens on
    the port; SQLite: the file's folder does not exist)."""
    settings_dict = connection.settings_dict
    if connection.vendor == "postgresql":
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            closed_port = str(s.getsockname()[1])
        gone = {"HOST": "127.0.0.1", "PORT": closed_port}
    elif connection.vendor == "sqlite" and not connection.is_in_memory_db():
        gone = {"NAME": str(tmp_path / "no-such-folder" / "db.sqlite3")}
    else:
        pytest.skip(f"no way to take a {connection.vendor} database away here")
    url = live_server.url + "/webhooks/flashfx/"
    body = event_body("gone")
    headers = {"flashfx-request-id": "gone-1", "flashfx-signature": sign(body)}

    with monkeypatch.context() as patch:
        for key, value in gone.items():
            patch.setitem(settings_dict, key, value)
        refused = httpx.post(url, content=body, headers=headers, timeout=30)
    retried = httpx.post(url, content=body, headers=headers, timeout=30)

    assert (refused.status_code, refused.json()) == (503, {"error": "temporarily unavailable"})
    assert (retried.status_code, retried.json()) == (200, {"status": "received"})
    assert InboundEvent.objects.get().request_id == "gone-1"
    enqueued.assert_called_once()


@pytest.mark.sandbox
def test_the_sandboxs_own_delivery_is_refused_503_then_its_retry_succeeds_exactly_once(
    live_server, sandbox, receiver_settings, impatient_app_connections, enqueued
):
    """End to end: FlashFX's (the sandbox's) webhooks for a deposit hit the locked database,
    are answered 503, and its own retries, 6 s x 0.01 later and on, store each event once."""
    sandbox.configure(
        webhook_url=live_server.url + "/webhooks/flashfx/",
        webhook_secret=receiver_settings.FLASHFX_WEBHOOK_SECRET,
        webhook_retry_scale=0.01,
    )
    try:
        with table_locked() as rows_seen_by_the_locker:
            deposit = sandbox.receive_deposit("123.45")

            def refused_once() -> bool:
                return any(
                    a["statusCode"] == 503
                    for d in sandbox.deliveries(entityId=deposit["id"])
                    for a in d["attemptLog"]
                )

            wait_until(refused_once, timeout=30, what="the sandbox's first delivery to get a 503")
            assert rows_seen_by_the_locker() == 0

        sandbox.wait_for_status("deposit", deposit["id"], "CONFIRMED")

        def all_delivered() -> list[dict] | None:
            deliveries = sandbox.deliveries(entityId=deposit["id"])
            done = deliveries and all(d["status"] == "DELIVERED" for d in deliveries)
            return deliveries if done else None

        deliveries = wait_until(all_delivered, timeout=30, what="every delivery to succeed")
    finally:
        sandbox.control("reset", {})  # no retry of ours may reach a later test's database

    # The sandbox's attempt log: refused while locked (503), then accepted once (200).
    logs = {d["event"]: [a["statusCode"] for a in d["attemptLog"]] for d in deliveries}
    refused = [event for event, codes in logs.items() if codes[0] == 503]
    assert refused, logs
    for event, codes in logs.items():
        assert codes[-1] == 200 and set(codes[:-1]) <= {503}, (event, codes)
    assert "deposit_initiated" in refused
    assert len(logs["deposit_initiated"]) >= 2

    # Each event stored exactly once, byte for byte as the sandbox sent it, and handed on once.
    rows = list(InboundEvent.objects.order_by("pk"))
    assert sorted(r.request_id for r in rows) == sorted(d["requestId"] for d in deliveries)
    by_request = {r.request_id: r for r in rows}
    for delivery in deliveries:
        row = by_request[delivery["requestId"]]
        assert row.accepted and row.status == "received"
        assert (row.event, row.entity_id) == (delivery["event"], deposit["id"])
        assert bytes(row.body) == delivery["body"].encode()
        assert row.headers["flashfx-signature"] == delivery["signature"]
    assert sorted(c.args for c in enqueued.call_args_list) == sorted((r.pk,) for r in rows)
