"""POST /webhooks/flashfx/ over real HTTP: Django's live server, httpx and raw sockets.

What only a real server shows: many deliveries of one request id at the same moment, each on
its own thread and database connection (exactly one may be accepted); headers sent twice on the
wire; an oversize body on a real socket; the remote address the server reports.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import socket
import threading
from collections import Counter
from unittest import mock
from urllib.parse import urlsplit

import httpx
import pytest
from django.db import connection

from webhooks.models import InboundEvent
from webhooks.receiving import allowed_networks

SECRET = "receiver-live-secret"
THREADS = 20

pytestmark = pytest.mark.django_db(transaction=True)


def sign(body: bytes, secret: str = SECRET) -> str:
    return base64.b64encode(
        hmac.new(secret.encode("utf-8"), body, hashlib.sha256).digest()
    ).decode()


def event_body(event: str = "withdrawal_completed", **fields: object) -> bytes:
    payload = {
        "event": event,
        "eventScheduledAt": "2026-05-01T02:03:04.005Z",
        "id": "65f0c0ffee0000000000a001",
        "amount": 250,
        "totalFee": 1,
        "currency": "AUD",
        "externalId": "po-778",
        "statusMessage": "Transaction Confirmed",
        **fields,
    }
    return json.dumps(payload, separators=(",", ":")).encode()


def signed_headers(body: bytes, request_id: str) -> dict[str, str]:
    return {
        "content-type": "application/json",
        "user-agent": "FlashFX",
        "flashfx-request-id": request_id,
        "flashfx-signature": sign(body),
    }


@pytest.fixture(autouse=True)
def receiver_settings(settings):
    settings.FLASHFX_WEBHOOK_SECRET = SECRET
    settings.FLASHFX_WEBHOOK_SECRET_PREVIOUS = ""
    settings.FLASHFX_WEBHOOK_ALLOWED_IPS = []
    settings.FLASHFX_WEBHOOK_TRUSTED_PROXIES = 0
    settings.FLASHFX_WEBHOOK_MAX_BODY_BYTES = 1024 * 1024
    allowed_networks.cache_clear()
    yield settings
    allowed_networks.cache_clear()


@pytest.fixture(autouse=True)
def enqueued(settings):
    """Counted instead of sent to the broker (a module attribute: seen by the server's threads)."""
    settings.FLASHFX_WEBHOOK_HANDOFF = "per-event"  # one task per event, counted here
    with mock.patch("webhooks.tasks.process_inbound_event.delay") as delay:
        yield delay


@pytest.fixture
def webhook_url(live_server) -> str:
    return live_server.url + "/webhooks/flashfx/"


def deliver_at_once(url: str, requests: list[tuple[bytes, dict[str, str]]]) -> list[httpx.Response]:
    """Each request on its own thread and connection, released together by a barrier."""
    barrier = threading.Barrier(len(requests))
    responses: list[httpx.Response | None] = [None] * len(requests)
    errors: list[BaseException] = []

    def send(index: int, body: bytes, headers: dict[str, str]) -> None:
        try:
            with httpx.Client(timeout=30) as http:
                barrier.wait(timeout=30)
                responses[index] = http.post(url, content=body, headers=headers)
        except BaseException as exc:  # reported below, with the others
            errors.append(exc)

    threads = [
        threading.Thread(target=send, args=(i, body, headers))
        for i, (body, headers) in enumerate(requests)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    assert all(r is not None for r in responses)
    return responses  # type: ignore[return-value]


def requires_a_real_database_with_concurrent_writers() -> None:
    """PostgreSQL is the case the issue names; SQLite (a file with busy_timeout) passes too."""
    if connection.vendor not in ("postgresql", "sqlite"):
        pytest.skip(f"not run on {connection.vendor}")
    if connection.vendor == "sqlite" and connection.is_in_memory_db():
        pytest.skip("an in-memory SQLite database is one connection: no concurrency to test")


# --- Concurrency -------------------------------------------------------------------------------


def test_twenty_concurrent_deliveries_of_one_request_id_store_exactly_one_event(
    webhook_url, enqueued
):
    requires_a_real_database_with_concurrent_writers()
    body = event_body()
    request_id = secrets.token_hex(12)

    responses = deliver_at_once(webhook_url, [(body, signed_headers(body, request_id))] * THREADS)

    assert [r.status_code for r in responses] == [200] * THREADS, [r.text for r in responses]
    assert Counter(r.json()["status"] for r in responses) == {
        "received": 1,
        "duplicate": THREADS - 1,
    }
    rows = list(InboundEvent.objects.all())
    assert len(rows) == 1
    assert (rows[0].accepted, rows[0].request_id, bytes(rows[0].body)) == (True, request_id, body)
    enqueued.assert_called_once_with(rows[0].pk)


def test_concurrent_deliveries_with_two_bodies_accept_one_and_keep_the_other_aside(
    webhook_url, enqueued
):
    requires_a_real_database_with_concurrent_writers()
    request_id = secrets.token_hex(12)
    bodies = [event_body(), event_body(amount=999)]
    requests = [(bodies[i % 2], signed_headers(bodies[i % 2], request_id)) for i in range(THREADS)]

    responses = deliver_at_once(webhook_url, requests)

    accepted = InboundEvent.objects.get(accepted=True)
    winner = bytes(accepted.body)
    outcome = Counter(
        (body == winner, r.status_code, r.json()["status"])
        for (body, _), r in zip(requests, responses, strict=True)
    )
    assert outcome == {
        (True, 200, "received"): 1,
        (True, 200, "duplicate"): THREADS // 2 - 1,
        (False, 409, "different_body"): THREADS // 2,
    }
    conflicts = InboundEvent.objects.filter(accepted=False)
    assert conflicts.count() == THREADS // 2
    assert {(c.status, c.reason, bytes(c.body)) for c in conflicts} == {
        ("conflict", "different_body", next(b for b in bodies if b != winner))
    }
    enqueued.assert_called_once_with(accepted.pk)


def test_twenty_concurrent_distinct_events_are_all_accepted(webhook_url, enqueued):
    requires_a_real_database_with_concurrent_writers()
    body = event_body()
    ids = [secrets.token_hex(12) for _ in range(THREADS)]

    responses = deliver_at_once(webhook_url, [(body, signed_headers(body, i)) for i in ids])

    assert [(r.status_code, r.json()) for r in responses] == [
        (200, {"status": "received"})
    ] * THREADS
    assert sorted(
        InboundEvent.objects.filter(accepted=True).values_list("request_id", flat=True)
    ) == sorted(ids)
    assert enqueued.call_count == THREADS


# --- The wire ----------------------------------------------------------------------------------


def raw_post(url: str, header_lines: list[tuple[str, str]], body: bytes) -> tuple[int, bytes]:
    """One HTTP/1.1 request written byte for byte on a socket: headers exactly as listed."""
    parts = urlsplit(url)
    head = [f"POST {parts.path} HTTP/1.1", f"Host: {parts.netloc}", "Connection: close"]
    head += [f"{name}: {value}" for name, value in header_lines]
    head += [f"Content-Length: {len(body)}", "", ""]
    with socket.create_connection((parts.hostname, parts.port), timeout=30) as sock:
        sock.sendall("\r\n".join(head).encode("latin-1") + body)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    status_line, _, rest = received.partition(b"\r\n")
    return int(status_line.split()[1]), rest.partition(b"\r\n\r\n")[2]


def test_a_signature_header_sent_twice_arrives_joined_and_is_refused(webhook_url, enqueued):
    body = event_body()
    signature = sign(body)
    request_id = secrets.token_hex(12)

    status, answer = raw_post(
        webhook_url,
        [
            ("flashfx-request-id", request_id),
            ("flashfx-signature", signature),
            ("FlashFX-Signature", signature),
        ],
        body,
    )

    assert (status, json.loads(answer)) == (401, {"status": "bad_signature"})
    row = InboundEvent.objects.get()
    assert (row.accepted, row.reason, bytes(row.body)) == (False, "bad_signature", body)
    # What this WSGI server (wsgiref, under Django's live server) makes of two headers.
    assert row.headers["flashfx-signature"] == f"{signature},{signature}"
    assert not enqueued.called


def test_a_request_id_header_sent_twice_arrives_joined_and_is_refused(webhook_url, enqueued):
    body = event_body()
    request_id = secrets.token_hex(12)

    status, answer = raw_post(
        webhook_url,
        [
            ("flashfx-request-id", request_id),
            ("flashfx-request-id", request_id),
            ("flashfx-signature", sign(body)),
        ],
        body,
    )

    assert (status, json.loads(answer)) == (400, {"status": "malformed_request_id"})
    row = InboundEvent.objects.get()
    assert (row.reason, row.request_id) == ("malformed_request_id", f"{request_id},{request_id}")
    assert not enqueued.called


def test_httpx_sends_a_repeated_header_twice_too(webhook_url, enqueued):
    body = event_body()
    request_id = secrets.token_hex(12)
    headers = [
        ("content-type", "application/json"),
        ("flashfx-request-id", request_id),
        ("flashfx-signature", sign(body)),
        ("flashfx-signature", "something else"),
    ]

    response = httpx.post(webhook_url, content=body, headers=headers)

    assert response.status_code == 401
    assert InboundEvent.objects.get().headers["flashfx-signature"] == f"{sign(body)},something else"


def test_an_oversize_body_on_a_real_socket_is_refused_413_and_the_connection_stays_usable(
    webhook_url, enqueued, receiver_settings
):
    limit = receiver_settings.FLASHFX_WEBHOOK_MAX_BODY_BYTES
    big = event_body(padding="x" * limit)
    assert len(big) > limit
    small = event_body()

    with httpx.Client(timeout=30) as http:
        refused = http.post(webhook_url, content=big, headers=signed_headers(big, "big-1"))
        accepted = http.post(webhook_url, content=small, headers=signed_headers(small, "small-1"))

    assert (refused.status_code, refused.json()) == (413, {"status": "too_large"})
    assert (accepted.status_code, accepted.json()) == (200, {"status": "received"})
    rows = {r.request_id: r for r in InboundEvent.objects.all()}
    assert (rows["big-1"].reason, bytes(rows["big-1"].body), rows["big-1"].body_size) == (
        "too_large",
        b"",
        len(big),
    )
    assert rows["small-1"].accepted
    enqueued.assert_called_once_with(rows["small-1"].pk)


def test_no_redirect_ever_and_other_methods_are_405(live_server, enqueued):
    body = event_body()
    with httpx.Client(timeout=30, follow_redirects=False) as http:
        without_slash = http.post(
            live_server.url + "/webhooks/flashfx", content=body, headers=signed_headers(body, "r-1")
        )
        get = http.get(live_server.url + "/webhooks/flashfx/")
        get_without_slash = http.get(live_server.url + "/webhooks/flashfx")

    assert (without_slash.status_code, without_slash.json()) == (200, {"status": "received"})
    assert (get.status_code, get_without_slash.status_code) == (405, 405)
    assert InboundEvent.objects.get().request_id == "r-1"


def test_the_remote_address_is_the_peer_unless_a_proxy_is_trusted(
    webhook_url, receiver_settings, enqueued
):
    body = event_body()
    spoofed = {"x-forwarded-for": "52.64.185.170, 203.0.113.9"}

    httpx.post(webhook_url, content=body, headers=signed_headers(body, "direct") | spoofed)
    receiver_settings.FLASHFX_WEBHOOK_TRUSTED_PROXIES = 1
    httpx.post(webhook_url, content=body, headers=signed_headers(body, "proxied") | spoofed)

    rows = dict(InboundEvent.objects.values_list("request_id", "remote_addr"))
    assert rows == {"direct": "127.0.0.1", "proxied": "203.0.113.9"}


def test_the_allow_list_refuses_the_live_servers_own_address(
    webhook_url, receiver_settings, enqueued
):
    receiver_settings.FLASHFX_WEBHOOK_ALLOWED_IPS = ["uat"]
    allowed_networks.cache_clear()
    body = event_body()

    refused = httpx.post(webhook_url, content=body, headers=signed_headers(body, "from-here"))
    receiver_settings.FLASHFX_WEBHOOK_ALLOWED_IPS = ["uat", "127.0.0.0/8"]
    allowed_networks.cache_clear()
    accepted = httpx.post(webhook_url, content=body, headers=signed_headers(body, "from-here"))

    assert (refused.status_code, accepted.status_code) == (403, 200)
    rows = list(
        InboundEvent.objects.order_by("pk").values_list("accepted", "reason", "remote_addr")
    )
    assert rows == [(False, "ip_not_allowed", "127.0.0.1"), (True, "", "127.0.0.1")]
    assert enqueued.call_count == 1


def test_the_database_holds_the_index_that_makes_a_request_id_accepted_once():
    """What every dedupe above rests on; a migration that altered request_id once dropped it
    on PostgreSQL without a word (tests/webhooks, webhooks/migrations/0004)."""
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, "webhooks_inboundevent")
    unique = constraints["webhooks_one_accepted_event_per_request_id"]
    assert unique["unique"] and unique["columns"] == ["request_id"]
