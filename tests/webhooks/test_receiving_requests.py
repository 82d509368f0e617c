"""POST /webhooks/flashfx/ through Django's test client, with requests signed here (docs/flashfx.md §4.4).

Every body is signed in this file with hashlib/hmac/base64, never with the app's own code, and
sent as raw bytes. What is checked is what FlashFX and the staff see: the status code, the one
row each request leaves behind (accepted, or quarantined with its reason, its raw bytes and its
headers) and whether processing was handed to Celery (the enqueue is counted, never run:
processing has its own tests).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import json
import os
import secrets
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from unittest import mock

import pytest
from django.utils import timezone

from webhooks.models import InboundEvent, QuarantineTally
from webhooks.receiving import UNPROVEN, allowed_networks

SECRET = "receiver-test-secret"
OLD_SECRET = "receiver-old-secret"
URL = "/webhooks/flashfx/"
SCHEDULED = "2026-05-01T02:03:04.005Z"
SCHEDULED_AT = datetime(2026, 5, 1, 2, 3, 4, 5000, tzinfo=UTC)

pytestmark = pytest.mark.django_db


def sign(body: bytes, secret: str = SECRET) -> str:
    """What FlashFX puts in flashfx-signature: standard Base64 of HMAC-SHA256 over the raw body."""
    return base64.b64encode(
        hmac.new(secret.encode("utf-8"), body, hashlib.sha256).digest()
    ).decode()


def compact(payload: object) -> bytes:
    return json.dumps(payload, separators=(",", ":")).encode()


def new_request_id() -> str:
    return secrets.token_hex(12)  # 24 hex characters, like the sandbox's (§5.31)


# --- One payload per documented event (docs/flashfx.md §4.6) -------------------------------------------

SUB_CLIENT = {
    "id": "65f0c0ffee0000000000c001",
    "fullName": "Acme Pty Ltd",
    "accountNo": "1000001",
    "bsb": "802919",
    "externalId": "sc-1",
}
DEPOSIT_ID, WITHDRAWAL_ID = "65f0c0ffee0000000000d001", "65f0c0ffee0000000000a001"
PAYMENT_ID, CONVERSION_ID = "65f0c0ffee0000000000b001", "65f0c0ffee0000000000e001"
SUB_CLIENT_ID, AMS_ID, RFI_ID = (
    SUB_CLIENT["id"],
    "65f0c0ffee0000000000f001",
    "65f0c0ffee000000000f0001",
)


def _deposit(event: str, status_message: str, **extra: object) -> dict:
    return {
        "event": event,
        "eventScheduledAt": SCHEDULED,
        "id": DEPOSIT_ID,
        "amount": 1000.5,
        "totalFee": 0,
        "currency": "AUD",
        "externalReference": "INV 1001",
        "clearedAt": "2026-05-01T02:03:00.000Z",
        "statusMessage": status_message,
        "recipient": {"accountName": "Acme", "accountNo": "1000001", "bsb": "802919"},
        "sender": {
            "accountName": "Test Payer",
            "companyName": "Payer Co",
            "bankName": "CBA",
            "bankCountry": "AU",
            "bsb": "062000",
            "accountNo": "11112222",
        },
        "subClient": SUB_CLIENT,
        **extra,
    }


REFUND = {"refundAmount": 25.5, "refundReason": "paid twice", "refundedAt": SCHEDULED}


def _withdrawal(event: str, **extra: object) -> dict:
    return {
        "event": event,
        "eventScheduledAt": SCHEDULED,
        "id": WITHDRAWAL_ID,
        "amount": 250,
        "totalFee": 1,
        "currency": "AUD",
        "externalId": "po-778",
        **extra,
    }


def _payment(event: str, **extra: object) -> dict:
    return {
        "event": event,
        "eventScheduledAt": SCHEDULED,
        "id": PAYMENT_ID,
        "fromAmount": 100,
        "fromCurrency": "AUD",
        "toAmount": 61.23,
        "toCurrency": "EUR",
        **extra,
    }


def _conversion(event: str) -> dict:
    return {
        "event": event,
        "eventScheduledAt": SCHEDULED,
        "id": CONVERSION_ID,
        "fromAmount": 100,
        "fromCurrency": "AUD",
        "toAmount": 65.5,
        "toCurrency": "USD",
        "rate": 0.655,
        "externalId": "cv-1",
    }


def _sub_client(event: str, status: str) -> dict:
    return {
        "event": event,
        "eventScheduledAt": SCHEDULED,
        "id": SUB_CLIENT_ID,
        "fullName": "Acme Pty Ltd",
        "status": status,
        "externalId": "sc-1",
    }


def _ams(event: str, status: str) -> dict:
    return {
        "event": event,
        "eventScheduledAt": SCHEDULED,
        "id": AMS_ID,
        "name": "Lena Fischer",
        "country": "DE",
        "status": status,
    }


def _rfi(event: str) -> dict:
    return {
        "event": event,
        "eventScheduledAt": SCHEDULED,
        "id": RFI_ID,
        "statusMessage": "Please explain the source of funds",
        "deadline": "2026-05-08T02:03:04.005Z",
        "depositIds": [DEPOSIT_ID],
        "withdrawalIds": [],
        "paymentIds": [],
        "createdAt": SCHEDULED,
        "updatedAt": SCHEDULED,
    }


EVENTS: dict[str, dict] = {
    # Deposits (6)
    "deposit_initiated": _deposit("deposit_initiated", "Deposit initiated"),
    "deposit_reviewing": _deposit("deposit_reviewing", "Awaiting manual compliance"),
    "deposit_cleared": _deposit("deposit_cleared", "Deposit cleared"),
    "deposit_cancelled": _deposit("deposit_cancelled", "Cancelled by: ops@acme.example : "),
    "deposit_refunding": _deposit("deposit_refunding", "Refunding", **REFUND),
    "deposit_refunded": _deposit("deposit_refunded", "Refunded", **REFUND),
    # Withdrawals (7)
    "withdrawal_initiated": _withdrawal("withdrawal_initiated"),
    "withdrawal_reviewing": _withdrawal(
        "withdrawal_reviewing", statusMessage="Awaiting manual compliance"
    ),
    "withdrawal_pending": _withdrawal("withdrawal_pending", statusMessage="Sent to recipient bank"),
    "withdrawal_completed": _withdrawal(
        "withdrawal_completed", statusMessage="Transaction Confirmed", clearedAt=SCHEDULED
    ),
    "withdrawal_failed": _withdrawal("withdrawal_failed"),
    "withdrawal_refunded": _withdrawal(
        "withdrawal_refunded",
        refundAmount=250,
        refundReason="Account closed",
        statusMessage="Payout reversal",
        refundedAt=SCHEDULED,
        clearedAt=SCHEDULED,
        recipient={"displayName": "Lena Fischer", "bsb": "062000", "accountNo": "12345678"},
    ),
    "withdrawal_cancelled": _withdrawal(
        "withdrawal_cancelled",
        rejectCode="COMPLIANCE_DECLINED",
        rejectedAt="2026-05-01T02:03:03.900Z",
        statusMessage="Rejected: does not meet compliance requirements",
    ),
    # Payments (5)
    "currency_converted": _payment("currency_converted", externalId="pay-1"),
    "payment_complete": _payment("payment_complete", externalId="pay-1"),
    "payment_failed": _payment("payment_failed", externalId="pay-1"),
    "payment_cancelled": _payment("payment_cancelled", externalId="pay-1"),
    "payment_created": _payment("payment_created", subClient=SUB_CLIENT),
    # Conversions (5)
    **{
        name: _conversion(name)
        for name in (
            "conversion_initialised",
            "conversion_pending",
            "conversion_converted",
            "conversion_failed",
            "conversion_cancelled",
        )
    },
    # Sub-clients (6)
    "subclient_initiated": _sub_client("subclient_initiated", "INITIATED"),
    "subclient_active": _sub_client("subclient_active", "ACTIVE"),
    "subclient_unapproved": _sub_client("subclient_unapproved", "UNAPPROVED"),
    "subclient_failed_kyc": _sub_client("subclient_failed_kyc", "FAILED_KYC"),
    "subclient_deactivated": _sub_client("subclient_deactivated", "DEACTIVATED"),
    "subclient_disabled": _sub_client("subclient_disabled", "DISABLED"),
    # AMS (4)
    "ams_initialised": _ams("ams_initialised", "INITIALISED"),
    "ams_pending": _ams("ams_pending", "PENDING"),
    "ams_completed": _ams("ams_completed", "COMPLETED"),
    "ams_failed": _ams("ams_failed", "FAILED"),
    # RFI (4)
    **{
        name: _rfi(name) for name in ("rfi_created", "rfi_assessing", "rfi_closed", "rfi_cancelled")
    },
}


def test_the_catalogue_has_every_documented_event():
    prefixes = ("deposit_", "withdrawal_", ("payment_", "currency_"), "conversion_", "subclient_")
    counts = [sum(name.startswith(p) for name in EVENTS) for p in prefixes]
    counts += [sum(name.startswith(p) for name in EVENTS) for p in ("ams_", "rfi_")]
    assert counts == [6, 7, 5, 5, 6, 4, 4] and len(EVENTS) == 37


# --- Fixtures and helpers ----------------------------------------------------------------------


@pytest.fixture(autouse=True)
def receiver_settings(settings):
    """Our own secret, no rotation, no allow-list, no proxies: each test changes what it needs."""
    settings.FLASHFX_WEBHOOK_SECRET = SECRET
    settings.FLASHFX_WEBHOOK_SECRET_PREVIOUS = ""
    settings.FLASHFX_WEBHOOK_ALLOWED_IPS = []
    settings.FLASHFX_WEBHOOK_TRUSTED_PROXIES = 0
    settings.FLASHFX_WEBHOOK_MAX_BODY_BYTES = 1024 * 1024
    settings.FLASHFX_WEBHOOK_QUARANTINE_PER_MINUTE = 60
    settings.FLASHFX_WEBHOOK_QUARANTINE_BODY_BYTES = 1024
    allowed_networks.cache_clear()
    yield settings
    allowed_networks.cache_clear()


@pytest.fixture(autouse=True)
def enqueued(settings):
    """The Celery enqueue, counted instead of sent: the ids handed to the worker."""
    settings.FLASHFX_WEBHOOK_HANDOFF = "per-event"  # one task per event, counted here
    with mock.patch("webhooks.tasks.process_inbound_event.delay") as delay:
        yield delay


@pytest.fixture
def post(client, django_capture_on_commit_callbacks):
    """Send raw bytes with these headers; returns the response with `.callbacks` attached."""

    def send(
        body: bytes,
        headers: dict[str, str] | None = None,
        *,
        path: str = URL,
        content_type: str = "application/json",
        **environ: object,
    ):
        with django_capture_on_commit_callbacks(execute=True) as callbacks:
            response = client.generic(
                "POST", path, body, content_type=content_type, headers=headers or {}, **environ
            )
        response.callbacks = callbacks
        response.sent_headers = {k.lower(): v for k, v in (headers or {}).items()}
        return response

    return send


def signed_headers(body: bytes, request_id: str | None = None, secret: str = SECRET) -> dict:
    return {
        "user-agent": "FlashFX",
        "flashfx-request-id": request_id or new_request_id(),
        "flashfx-signature": sign(body, secret),
    }


def only_row() -> InboundEvent:
    rows = list(InboundEvent.objects.all())
    assert len(rows) == 1, rows
    return rows[0]


def assert_quarantined(
    response, reason: str, status_code: int, body: bytes, enqueued
) -> InboundEvent:
    """The request was refused with this code and kept with its reason: byte for byte when it
    was signed, its first 1,024 bytes when it never proved to come from FlashFX."""
    assert response.status_code == status_code, response.content
    assert response.json() == {"status": reason}
    row = only_row()
    assert (row.accepted, row.status, row.reason) == (False, "quarantined", reason)
    assert bytes(row.body) == (body[:1024] if reason in UNPROVEN else body)
    assert row.body_size == len(body)
    assert row.body_sha256 == hashlib.sha256(body).hexdigest()
    assert row.event == "" and row.entity_id == "" and row.event_scheduled_at is None
    kept = ("user-agent", "flashfx-request-id", "flashfx-signature", "x-forwarded-for")
    for name in kept:  # the headers as they came, for the staff
        assert row.headers.get(name) == response.sent_headers.get(name), name
    assert row.request_id == response.sent_headers.get("flashfx-request-id", "")
    assert response.callbacks == [] and not enqueued.called  # never processed
    return row


# --- Valid events ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(EVENTS))
def test_each_documented_event_is_accepted_stored_and_handed_to_the_worker(name, post, enqueued):
    body = compact(EVENTS[name])
    headers = signed_headers(body)

    response = post(body, headers)

    assert response.status_code == 200, response.content
    assert response.json() == {"status": "received"}
    row = only_row()
    assert (row.accepted, row.status, row.reason) == (True, "received", "")
    assert (row.event, row.entity_id, row.event_scheduled_at) == (
        name,
        EVENTS[name]["id"],
        SCHEDULED_AT,
    )
    assert row.request_id == headers["flashfx-request-id"]
    assert bytes(row.body) == body and row.body_size == len(body)
    assert row.body_sha256 == hashlib.sha256(body).hexdigest()
    assert row.headers == {
        "content-type": "application/json",
        "content-length": str(len(body)),
        "user-agent": "FlashFX",
        "flashfx-request-id": headers["flashfx-request-id"],
        "flashfx-signature": headers["flashfx-signature"],
    }
    assert row.remote_addr == "127.0.0.1"
    assert len(response.callbacks) == 1  # after commit, once
    enqueued.assert_called_once_with(row.pk)


@pytest.mark.parametrize(
    "payload",
    [
        {"event": "deposit_exploded", "eventScheduledAt": SCHEDULED, "id": DEPOSIT_ID, "x": [1]},
        {"event": "test", "eventScheduledAt": SCHEDULED, "id": "65f0c0ffee0000000000t001"},
        {"event": "withdrawal_completed", "id": 12345},  # no time, a numeric id
    ],
    ids=["unknown-type", "send-test", "no-time-numeric-id"],
)
def test_an_unknown_or_sparse_event_is_answered_2xx_and_stored(payload, post, enqueued):
    body = compact(payload)
    response = post(body, signed_headers(body))

    assert response.status_code == 200 and response.json() == {"status": "received"}
    row = only_row()
    assert (row.accepted, row.status, row.event, row.entity_id) == (
        True,
        "received",
        payload["event"],
        str(payload["id"]),
    )
    assert row.event_scheduled_at == (SCHEDULED_AT if "eventScheduledAt" in payload else None)
    enqueued.assert_called_once_with(row.pk)


def test_a_body_of_exactly_the_limit_is_accepted(post, receiver_settings):
    body = compact(EVENTS["deposit_cleared"])
    receiver_settings.FLASHFX_WEBHOOK_MAX_BODY_BYTES = len(body) + 100
    body += b" " * 100  # trailing whitespace is still the same JSON
    assert len(body) == receiver_settings.FLASHFX_WEBHOOK_MAX_BODY_BYTES

    response = post(body, signed_headers(body))

    assert response.status_code == 200
    assert bytes(only_row().body) == body


# --- Signatures --------------------------------------------------------------------------------


def test_a_wrong_key_is_refused_401_and_quarantined(post, enqueued):
    body = compact(EVENTS["withdrawal_completed"])
    response = post(body, signed_headers(body, secret="someone-elses-secret"))
    assert_quarantined(response, "bad_signature", 401, body, enqueued)


def test_a_body_altered_by_one_byte_is_refused(post, enqueued):
    body = compact(EVENTS["withdrawal_completed"])
    headers = signed_headers(body)
    altered = body.replace(b'"amount":250', b'"amount":850')
    assert (
        len(altered) == len(body) and sum(a != b for a, b in zip(altered, body, strict=True)) == 1
    )

    response = post(altered, headers)

    row = assert_quarantined(response, "bad_signature", 401, altered, enqueued)
    assert row.request_id == headers["flashfx-request-id"]


@pytest.mark.parametrize(
    "reserialise",
    [
        lambda p: json.dumps(p).encode(),  # ", " and ": " separators
        lambda p: json.dumps(p, indent=2).encode(),
        lambda p: json.dumps(dict(reversed(list(p.items()))), separators=(",", ":")).encode(),
        lambda p: json.dumps(p, separators=(",", ":"), ensure_ascii=False).encode() + b"\n",
    ],
    ids=["spaces", "indented", "keys-reordered", "trailing-newline"],
)
def test_the_same_json_in_other_bytes_is_a_bad_signature(reserialise, post, enqueued):
    payload = EVENTS["deposit_cleared"]
    original = compact(payload)
    sent = reserialise(payload)
    assert sent != original and json.loads(sent) == json.loads(original)

    response = post(sent, signed_headers(original))  # signed over the original bytes

    assert_quarantined(response, "bad_signature", 401, sent, enqueued)


@pytest.mark.parametrize(
    "encode",
    [
        lambda digest: digest.hex(),
        lambda digest: base64.urlsafe_b64encode(digest).decode().rstrip("="),
        lambda digest: base64.b64encode(digest).decode().rstrip("="),
        lambda digest: "sha256=" + base64.b64encode(digest).decode(),
    ],
    ids=["hex", "base64url", "unpadded", "prefixed"],
)
def test_only_standard_padded_base64_of_the_digest_is_a_signature(encode, post, enqueued):
    body = compact(EVENTS["payment_complete"])
    digest = hmac.new(SECRET.encode(), body, hashlib.sha256).digest()
    headers = {"flashfx-request-id": new_request_id(), "flashfx-signature": encode(digest)}

    assert_quarantined(post(body, headers), "bad_signature", 401, body, enqueued)


def test_the_previous_secret_is_accepted_while_rotating(post, receiver_settings, enqueued):
    receiver_settings.FLASHFX_WEBHOOK_SECRET_PREVIOUS = OLD_SECRET
    old = compact(EVENTS["deposit_initiated"])
    new = compact(EVENTS["deposit_cleared"])

    assert post(old, signed_headers(old, secret=OLD_SECRET)).status_code == 200
    assert post(new, signed_headers(new, secret=SECRET)).status_code == 200

    rows = InboundEvent.objects.order_by("pk")
    assert [(r.accepted, r.event) for r in rows] == [
        (True, "deposit_initiated"),
        (True, "deposit_cleared"),
    ]
    assert enqueued.call_count == 2


def test_the_previous_secret_is_refused_when_no_rotation_is_configured(post, enqueued):
    body = compact(EVENTS["deposit_initiated"])
    response = post(body, signed_headers(body, secret=OLD_SECRET))
    assert_quarantined(response, "bad_signature", 401, body, enqueued)


def test_an_empty_current_secret_accepts_nothing(post, receiver_settings, enqueued):
    """An unset secret must not make the HMAC of an empty key a valid signature."""
    receiver_settings.FLASHFX_WEBHOOK_SECRET = ""
    body = compact(EVENTS["deposit_initiated"])
    response = post(body, signed_headers(body, secret=""))
    assert_quarantined(response, "bad_signature", 401, body, enqueued)


# --- Headers: missing, empty, duplicated -------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "reason", "status_code"),
    [
        ({"flashfx-signature": None}, "missing_signature", 401),
        ({"flashfx-signature": ""}, "missing_signature", 401),
        ({"flashfx-request-id": None}, "missing_request_id", 400),
        ({"flashfx-request-id": ""}, "missing_request_id", 400),
        ({"flashfx-signature": None, "flashfx-request-id": None}, "missing_signature", 401),
    ],
    ids=["no-signature", "empty-signature", "no-request-id", "empty-request-id", "neither"],
)
def test_a_missing_or_empty_header_is_refused(change, reason, status_code, post, enqueued):
    body = compact(EVENTS["withdrawal_pending"])
    headers = signed_headers(body)
    for name, value in change.items():
        if value is None:
            del headers[name]
        else:
            headers[name] = value

    row = assert_quarantined(post(body, headers), reason, status_code, body, enqueued)

    assert row.headers == {
        "content-type": "application/json",
        "content-length": str(len(body)),
        **headers,
    }


@pytest.mark.parametrize("separator", [", ", ","], ids=["comma-space", "comma"])
def test_a_duplicated_signature_header_is_a_bad_signature(separator, post, enqueued):
    """Two flashfx-signature headers reach WSGI as one value joined by a comma."""
    body = compact(EVENTS["withdrawal_pending"])
    headers = signed_headers(body)
    headers["flashfx-signature"] = separator.join([headers["flashfx-signature"]] * 2)

    row = assert_quarantined(post(body, headers), "bad_signature", 401, body, enqueued)
    assert row.headers["flashfx-signature"] == headers["flashfx-signature"]


@pytest.mark.parametrize("separator", [", ", ","], ids=["comma-space", "comma"])
def test_a_duplicated_request_id_header_is_malformed(separator, post, enqueued):
    body = compact(EVENTS["withdrawal_pending"])
    headers = signed_headers(body)
    request_id = headers["flashfx-request-id"]
    headers["flashfx-request-id"] = f"{request_id}{separator}{request_id}"

    row = assert_quarantined(post(body, headers), "malformed_request_id", 400, body, enqueued)
    assert row.request_id == headers["flashfx-request-id"]  # kept as received, for the staff


def test_the_test_client_keeps_one_value_per_header_name(post, enqueued):
    """Django's test client cannot send a header twice: `headers` is a dict, and two spellings of
    one name become the same WSGI key, the later one winning. Duplicates are sent joined, above,
    and for real over a socket in test_receiving_live.py."""
    body = compact(EVENTS["withdrawal_pending"])
    good = signed_headers(body)
    response = post(
        body,
        {
            "flashfx-signature": "not-it",
            "FlashFX-Signature": good["flashfx-signature"],
            "flashfx-request-id": good["flashfx-request-id"],
        },
    )
    assert response.status_code == 200
    assert only_row().headers["flashfx-signature"] == good["flashfx-signature"]


@pytest.mark.parametrize(
    "request_id",
    ["a b", "id\n", "id\x00x", "é" * 5, "x" * 201, "a/b"],
    ids=["space", "newline", "nul", "non-ascii", "too-long", "slash"],
)
def test_a_malformed_request_id_is_refused_and_still_stored(request_id, post, enqueued):
    body = compact(EVENTS["withdrawal_pending"])
    headers = signed_headers(body, request_id=request_id)

    response = post(body, headers)

    assert response.status_code == 400, response.content
    row = only_row()
    assert (row.accepted, row.reason) == (False, "malformed_request_id")
    assert bytes(row.body) == body
    assert not enqueued.called


def test_a_nul_in_an_unsigned_requests_headers_is_quarantined_not_a_server_error(post, enqueued):
    """PostgreSQL text cannot hold NUL: the row must still be written (the NUL replaced)."""
    body = b'{"event":"x"}'
    response = post(body, {"flashfx-request-id": "a\x00b", "flashfx-signature": "s\x00g"})

    assert response.status_code == 401, response.content
    row = only_row()
    assert (row.reason, bytes(row.body)) == ("bad_signature", body)
    assert "\x00" not in row.request_id and "\x00" not in row.headers["flashfx-signature"]


# --- Bodies: size, encoding, JSON, shape -------------------------------------------------------


def test_a_body_declared_over_the_limit_is_refused_413_unread(post, receiver_settings, enqueued):
    body = compact(EVENTS["deposit_cleared"])
    body += b" " * (receiver_settings.FLASHFX_WEBHOOK_MAX_BODY_BYTES + 1 - len(body))
    headers = signed_headers(body)

    response = post(body, headers)

    assert response.status_code == 413
    assert response.json() == {"status": "too_large"}
    row = only_row()
    assert (row.accepted, row.status, row.reason) == (False, "quarantined", "too_large")
    assert bytes(row.body) == b"" and row.body_sha256 == ""  # not kept
    assert row.body_size == len(body)  # as declared
    assert row.request_id == headers["flashfx-request-id"]
    assert row.headers["content-length"] == str(len(body))
    assert row.headers["flashfx-signature"] == headers["flashfx-signature"]
    assert response.callbacks == [] and not enqueued.called


def test_a_huge_declared_length_is_refused_without_reading(post, enqueued):
    """Content-Length says 10 GB while 2 bytes are there: answered 413 at once, nothing read."""
    response = post(b"{}", {"flashfx-request-id": "big"}, CONTENT_LENGTH=str(10 * 1024**3))

    assert response.status_code == 413
    row = only_row()
    assert (row.reason, bytes(row.body)) == ("too_large", b"")
    assert row.body_size == 2**31 - 1  # as much as the column holds (a PostgreSQL integer)
    assert row.headers["content-length"] == str(10 * 1024**3)  # the size as declared


def test_bytes_past_the_declared_length_are_not_part_of_the_body(post, enqueued):
    """request.read() stops at Content-Length (Django's LimitedStream): whatever follows on the
    wire is not this request's body, so a valid event followed by more bytes is the event."""
    body = compact(EVENTS["deposit_cleared"])
    headers = signed_headers(body)
    padded = body + b" " * (2 * 1024 * 1024)  # bigger than the limit, but not declared

    response = post(padded, headers, CONTENT_LENGTH=str(len(body)))

    assert response.status_code == 200
    row = only_row()
    assert bytes(row.body) == body and row.accepted


def test_a_truncated_declared_length_makes_a_bad_signature(post, enqueued):
    body = compact(EVENTS["deposit_cleared"])
    response = post(body, signed_headers(body), CONTENT_LENGTH=str(len(body) - 1))
    assert_quarantined(response, "bad_signature", 401, body[:-1], enqueued)


@pytest.mark.parametrize("length", ["abc", "-5", "1e3"])
def test_a_content_length_that_is_no_length_is_recorded_and_refused(length, post, enqueued):
    """Django reads no body then; the request must still leave its row, like any other."""
    body = compact(EVENTS["deposit_cleared"])

    response = post(body, signed_headers(body), CONTENT_LENGTH=length)

    row = assert_quarantined(response, "bad_signature", 401, b"", enqueued)
    assert row.headers["content-length"] == length


def streamed(body: bytes) -> dict:
    """The WSGI environ of a request without Content-Length whose server ends the input for us
    (chunked transfer under gunicorn: `wsgi.input_terminated`)."""
    return {"wsgi.input": io.BytesIO(body), "wsgi.input_terminated": True, "CONTENT_LENGTH": ""}


def test_a_streamed_body_within_the_limit_is_read_whole(post, enqueued):
    body = compact(EVENTS["deposit_cleared"])
    response = post(b"", signed_headers(body), **streamed(body))

    assert response.status_code == 200, response.content
    row = only_row()
    assert bytes(row.body) == body and row.accepted and row.body_size == len(body)
    enqueued.assert_called_once_with(row.pk)


def test_a_streamed_body_over_the_limit_is_refused_413(post, receiver_settings, enqueued):
    receiver_settings.FLASHFX_WEBHOOK_MAX_BODY_BYTES = 4096
    body = compact(EVENTS["deposit_cleared"]) + b" " * 10_000
    headers = signed_headers(body)

    response = post(b"", headers, **streamed(body))

    assert response.status_code == 413
    row = only_row()
    assert (row.reason, bytes(row.body), row.request_id) == (
        "too_large",
        b"",
        headers["flashfx-request-id"],
    )
    assert row.body_size > 4096  # what was read before giving up, not the whole body
    assert not enqueued.called


def test_without_length_or_terminated_input_the_body_is_empty(post, enqueued):
    """No Content-Length and a server that does not end the input (the WSGI default): nothing
    may be read, or the read would wait for the client forever."""
    body = compact(EVENTS["deposit_cleared"])
    environ = streamed(body)
    del environ["wsgi.input_terminated"]

    response = post(b"", signed_headers(body), **environ)

    assert_quarantined(response, "bad_signature", 401, b"", enqueued)


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"deposit_cleared", "not_json"),
        (b"", "not_json"),
        (b'{"event":"deposit_cleared","id":"x"', "not_json"),
        (b"<xml/>", "not_json"),
        (b'{"event":"deposit_cleared","id":"\xff\xfe"}', "not_utf8"),
        (b'{"event":"deposit_cleared","id":"\xed\xa0\x80"}', "not_utf8"),  # encoded surrogate
        (b"\xef\xbb\xbf" + compact(EVENTS["deposit_cleared"]), "not_json"),  # a UTF-8 BOM
        (b"[" * 100_000 + b"]" * 100_000, "json_too_deep"),
        (b'{"event":"x","id":"y","a":' + b"[" * 100_000 + b"]" * 100_000 + b"}", "json_too_deep"),
        (b'{"event":"x","id":"y","a":' + b"[" * 40 + b"]" * 40 + b"}", "json_too_deep"),
        (b'{"event":"x","id":"y","a":' + b'{"b":' * 40 + b"1" + b"}" * 40 + b"}", "json_too_deep"),
        (b'{"event":"x","id":' + b"9" * 5000 + b"}", "not_json"),  # past int_max_str_digits
        (b'["deposit_cleared"]', "not_an_event"),
        (b'"deposit_cleared"', "not_an_event"),
        (b"42", "not_an_event"),
        (b"null", "not_an_event"),
        (b'{"id":"x"}', "not_an_event"),
        (b'{"event":"","id":"x"}', "not_an_event"),
        (b'{"event":7,"id":"x"}', "not_an_event"),
        (b'{"event":"deposit_cleared"}', "not_an_event"),
        (b'{"event":"deposit_cleared","id":null}', "not_an_event"),
        (b'{"event":"deposit_cleared","id":1.5}', "not_an_event"),
        (b'{"event":"deposit_cleared","id":true}', "not_an_event"),
        (b'{"event":"deposit_cleared","id":{"x":1}}', "not_an_event"),
    ],
    ids=[
        "text",
        "empty",
        "truncated",
        "xml",
        "invalid-utf8",
        "utf8-surrogate",
        "bom",
        "100k-nested-arrays",
        "100k-nested-inside-event",
        "40-nested-arrays",
        "40-nested-objects",
        "huge-integer",
        "array",
        "string",
        "number",
        "null",
        "no-event",
        "empty-event",
        "numeric-event",
        "no-id",
        "null-id",
        "float-id",
        "boolean-id",
        "object-id",
    ],
)
def test_a_signed_body_that_is_not_an_event_is_refused_400_and_kept(body, reason, post, enqueued):
    headers = signed_headers(body)

    row = assert_quarantined(post(body, headers), reason, 400, body, enqueued)

    assert row.request_id == headers["flashfx-request-id"]
    assert row.headers["flashfx-signature"] == headers["flashfx-signature"]


def test_json_nested_up_to_the_depth_allowed_is_an_event(post):
    body = b'{"event":"x","id":"y","a":' + b"[" * 30 + b"]" * 30 + b"}"
    assert post(body, signed_headers(body)).status_code == 200


def test_an_unsigned_body_is_refused_for_its_signature_before_anything_else(post, enqueued):
    """The body is not even parsed for an unverified sender: the reason is the signature."""
    body = b"[" * 100_000
    assert_quarantined(
        post(body, {"flashfx-request-id": "r1"}), "missing_signature", 401, body, enqueued
    )


def test_an_unsigned_megabyte_keeps_its_first_bytes_its_size_and_the_hash_of_all_of_it(post):
    body = bytes(range(256)) * 4096  # 1 MiB, the largest body a request may have
    response = post(body, {"flashfx-signature": "bm90LWEtc2lnbmF0dXJl"})
    assert response.status_code == 401
    row = only_row()
    assert bytes(row.body) == body[:1024]
    assert (row.body_size, row.body_sha256) == (len(body), hashlib.sha256(body).hexdigest())


def test_a_flood_of_unsigned_requests_from_one_address_keeps_a_capped_number_of_rows(
    post, receiver_settings, enqueued, caplog
):
    receiver_settings.FLASHFX_WEBHOOK_QUARANTINE_PER_MINUTE = 5
    answers = [post(b'{"event": "x"}', REMOTE_ADDR="203.0.113.9").status_code for _ in range(12)]
    assert answers == [401] * 12  # the sender sees no difference
    assert InboundEvent.objects.filter(remote_addr="203.0.113.9").count() == 5
    (tally,) = QuarantineTally.objects.all()
    assert (tally.remote_addr, tally.seen, tally.kept, tally.dropped) == ("203.0.113.9", 12, 5, 7)
    warned = [r for r in caplog.records if "over 5 requests this minute" in r.getMessage()]
    assert len(warned) == 1  # once, not once per dropped request
    # Another address has its own count; FlashFX's signed events are never capped.
    assert post(b'{"event": "x"}', REMOTE_ADDR="203.0.113.10").status_code == 401
    body = compact({"event": "deposit_cleared", "id": "d1"})
    accepted = post(body, signed_headers(body), REMOTE_ADDR="203.0.113.9")
    assert accepted.status_code == 200
    assert InboundEvent.objects.filter(accepted=True).count() == 1
    assert enqueued.call_count == 1


def test_oversized_requests_count_against_the_same_cap(post, receiver_settings):
    receiver_settings.FLASHFX_WEBHOOK_QUARANTINE_PER_MINUTE = 2
    receiver_settings.FLASHFX_WEBHOOK_MAX_BODY_BYTES = 10
    answers = [post(b"x" * 11, REMOTE_ADDR="198.51.100.7").status_code for _ in range(4)]
    assert answers == [413] * 4
    assert InboundEvent.objects.filter(reason="too_large").count() == 2
    assert QuarantineTally.objects.get().dropped == 2


def test_the_cap_is_per_minute(post, receiver_settings):
    receiver_settings.FLASHFX_WEBHOOK_QUARANTINE_PER_MINUTE = 1
    minute = timezone.now().replace(second=0, microsecond=0)
    QuarantineTally.objects.create(
        remote_addr="192.0.2.1", minute=minute - timedelta(minutes=1), seen=40, kept=1
    )
    assert post(b"{}", REMOTE_ADDR="192.0.2.1").status_code == 401
    assert post(b"{}", REMOTE_ADDR="192.0.2.1").status_code == 401
    assert InboundEvent.objects.count() == 1  # the first of this minute, not the second
    this_minute = QuarantineTally.objects.get(minute__gte=minute)
    assert (this_minute.seen, this_minute.kept) == (2, 1)


@pytest.mark.parametrize(
    ("payload", "event", "entity_id"),
    [
        ({"event": "deposit_\x00cleared", "id": "d\x00"}, "deposit_\ufffdcleared", "d\ufffd"),
        ({"event": "deposit_\ud800", "id": "\udfff"}, "deposit_?", "?"),
        ({"event": "e" * 100, "id": "i" * 100}, "e" * 64, "i" * 64),
    ],
    ids=["nul", "lone-surrogates", "too-long"],
)
def test_odd_but_signed_text_is_stored_not_a_server_error(
    payload, event, entity_id, post, enqueued
):
    """A signed event must be stored whatever its strings hold: a NUL (refused by PostgreSQL),
    a lone surrogate (not encodable as UTF-8) or an overlong name. The body keeps the truth."""
    body = json.dumps(payload).encode()  # ASCII with \\u escapes: valid UTF-8 and valid JSON

    response = post(body, signed_headers(body))

    assert response.status_code == 200, response.content
    row = only_row()
    assert (row.accepted, row.event, row.entity_id) == (True, event, entity_id)
    assert bytes(row.body) == body
    enqueued.assert_called_once_with(row.pk)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-05-01T02:03:04.005Z", SCHEDULED_AT),
        ("2026-05-01T12:03:04.005+10:00", SCHEDULED_AT),
        ("2026-05-01T02:03:04.005", None),  # no offset: not a point in time
        ("yesterday", None),
        (1746064984, None),
        ("0001-01-01T00:00:00+01:00", None),  # before year 1 in UTC
        ("9999-12-31T23:59:59-01:00", None),  # after year 9999 in UTC
    ],
    ids=["z", "offset", "naive", "text", "number", "underflow", "overflow"],
)
def test_event_scheduled_at_is_kept_when_it_is_a_time(value, expected, post):
    body = compact({"event": "deposit_cleared", "eventScheduledAt": value, "id": DEPOSIT_ID})

    response = post(body, signed_headers(body))

    assert response.status_code == 200, response.content
    assert only_row().event_scheduled_at == expected


# --- Deduplication -----------------------------------------------------------------------------


def test_a_retry_with_the_same_body_is_a_duplicate_answered_200_and_not_processed_again(
    post, enqueued
):
    body = compact(EVENTS["withdrawal_completed"])
    headers = signed_headers(body)

    first = post(body, headers)
    second = post(body, headers)
    third = post(body, {**headers, "user-agent": "something else"})

    assert first.status_code == 200 and first.json() == {"status": "received"}
    assert second.status_code == 200 and second.json() == {"status": "duplicate"}
    assert third.status_code == 200 and third.json() == {"status": "duplicate"}
    row = only_row()  # the retries leave no row of their own
    assert row.accepted and row.request_id == headers["flashfx-request-id"]
    assert (len(first.callbacks), len(second.callbacks), len(third.callbacks)) == (1, 0, 0)
    enqueued.assert_called_once_with(row.pk)


def test_a_retry_signed_with_the_previous_secret_is_still_a_duplicate(
    post, receiver_settings, enqueued
):
    receiver_settings.FLASHFX_WEBHOOK_SECRET_PREVIOUS = OLD_SECRET
    body = compact(EVENTS["withdrawal_completed"])
    headers = signed_headers(body, secret=OLD_SECRET)

    assert post(body, headers).status_code == 200
    again = post(body, {**headers, "flashfx-signature": sign(body, SECRET)})

    assert again.json() == {"status": "duplicate"}
    assert InboundEvent.objects.count() == 1 and enqueued.call_count == 1


def test_a_known_request_id_with_another_body_is_409_kept_aside_never_applied(post, enqueued):
    original = compact(EVENTS["withdrawal_completed"])
    request_id = new_request_id()
    other = compact({**EVENTS["withdrawal_completed"], "amount": 9999})
    same_content_other_bytes = json.dumps(EVENTS["withdrawal_completed"]).encode()

    first = post(original, signed_headers(original, request_id))
    second = post(other, signed_headers(other, request_id))
    third = post(same_content_other_bytes, signed_headers(same_content_other_bytes, request_id))

    assert first.status_code == 200
    assert (second.status_code, second.json()) == (409, {"status": "different_body"})
    assert (third.status_code, third.json()) == (409, {"status": "different_body"})
    rows = list(InboundEvent.objects.order_by("pk"))
    assert [(r.accepted, r.status, r.reason) for r in rows] == [
        (True, "received", ""),
        (False, "conflict", "different_body"),
        (False, "conflict", "different_body"),
    ]
    assert bytes(rows[0].body) == original  # the original untouched
    assert [bytes(r.body) for r in rows[1:]] == [other, same_content_other_bytes]
    assert {r.request_id for r in rows} == {request_id}
    assert rows[1].event == "withdrawal_completed" and rows[1].entity_id == WITHDRAWAL_ID
    assert rows[1].headers["flashfx-signature"] == sign(other)
    assert (second.callbacks, third.callbacks) == ([], [])
    enqueued.assert_called_once_with(rows[0].pk)


def test_a_refused_request_does_not_take_its_request_id(post, enqueued):
    """A quarantined request (here: a bad signature) must not block the real one that follows."""
    body = compact(EVENTS["withdrawal_completed"])
    request_id = new_request_id()

    refused = post(body, signed_headers(body, request_id, secret="wrong"))
    accepted = post(body, signed_headers(body, request_id))

    assert (refused.status_code, accepted.status_code) == (401, 200)
    assert accepted.json() == {"status": "received"}
    assert sorted(InboundEvent.objects.values_list("accepted", flat=True)) == [False, True]
    assert enqueued.call_count == 1


def test_a_different_event_under_a_new_request_id_is_a_new_event(post, enqueued):
    body = compact(EVENTS["withdrawal_completed"])
    assert post(body, signed_headers(body)).status_code == 200
    assert post(body, signed_headers(body)).json() == {"status": "received"}
    assert InboundEvent.objects.filter(accepted=True).count() == 2
    assert enqueued.call_count == 2


# --- The door: paths, methods, source address --------------------------------------------------


@pytest.mark.parametrize("path", ["/webhooks/flashfx/", "/webhooks/flashfx"])
def test_both_spellings_of_the_path_answer_directly_never_3xx(path, post, enqueued):
    body = compact(EVENTS["payment_complete"])

    response = post(body, signed_headers(body), path=path)

    assert response.status_code == 200 and response.json() == {"status": "received"}
    assert only_row().accepted


@pytest.mark.parametrize("path", ["/webhooks/flashfx/", "/webhooks/flashfx"])
@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
def test_other_methods_are_405_and_leave_nothing(path, method, client):
    response = client.generic(method, path)
    assert response.status_code == 405
    assert response["Allow"] == "POST"
    assert InboundEvent.objects.count() == 0


def test_no_csrf_token_no_login_and_any_content_type(client, enqueued):
    """FlashFX has neither a CSRF token nor a session; the content type does not matter."""
    strict = type(client)(enforce_csrf_checks=True)
    body = compact(EVENTS["payment_complete"])

    response = strict.generic(
        "POST", URL, body, content_type="text/plain", headers=signed_headers(body)
    )

    assert response.status_code == 200
    assert only_row().headers["content-type"] == "text/plain"


@pytest.mark.parametrize(
    ("proxies", "forwarded_for", "expected"),
    [
        (0, None, "198.51.100.7"),
        (0, "203.0.113.5", "198.51.100.7"),  # no proxy trusted: the header is the client's word
        (1, "203.0.113.5", "203.0.113.5"),
        (1, "6.6.6.6, 203.0.113.5", "203.0.113.5"),  # a spoofed entry to the left is ignored
        (1, "6.6.6.6,7.7.7.7 , 203.0.113.5", "203.0.113.5"),
        (2, "6.6.6.6, 203.0.113.5, 10.0.0.2", "203.0.113.5"),
        (1, None, "198.51.100.7"),  # reached us without the proxy
        (1, "not-an-address", None),
        (1, "2001:db8::1", "2001:db8::1"),
        (1, "::ffff:203.0.113.5", "203.0.113.5"),  # IPv4-mapped IPv6
        (1, "fe80::1%eth0", "fe80::1"),  # a zone PostgreSQL's inet cannot hold
    ],
)
def test_the_remote_address_honours_the_trusted_proxies(
    proxies, forwarded_for, expected, post, receiver_settings
):
    receiver_settings.FLASHFX_WEBHOOK_TRUSTED_PROXIES = proxies
    body = compact(EVENTS["payment_complete"])
    headers = signed_headers(body)
    if forwarded_for is not None:
        headers["x-forwarded-for"] = forwarded_for

    response = post(body, headers, REMOTE_ADDR="198.51.100.7")

    assert response.status_code == 200
    row = only_row()
    assert row.remote_addr == expected
    if forwarded_for is not None:
        assert row.headers["x-forwarded-for"] == forwarded_for


@pytest.mark.parametrize(
    ("allowed", "proxies", "remote", "forwarded_for", "status_code"),
    [
        (["203.0.113.0/24"], 0, "203.0.113.77", None, 200),
        (["203.0.113.0/24"], 0, "198.51.100.1", None, 403),
        (["203.0.113.0/24"], 0, "198.51.100.1", "203.0.113.77", 403),  # not trusted: ignored
        (["203.0.113.0/24", "2001:db8::/32"], 0, "2001:db8::5", None, 200),
        (["203.0.113.0/24"], 0, "::ffff:203.0.113.77", None, 200),
        (["uat"], 0, "52.64.185.170", None, 200),
        (["UAT"], 0, "13.210.129.208", None, 200),
        (["uat"], 0, "52.62.138.234", None, 403),  # production's, not UAT's
        (["production"], 0, "52.62.138.234", None, 200),
        (["uat"], 1, "10.0.0.1", "52.64.185.170", 200),
        (["uat"], 1, "10.0.0.1", "52.64.185.170, 198.51.100.1", 403),
        (["uat"], 1, "10.0.0.1", "198.51.100.1, 52.64.185.170", 200),
        (["uat"], 1, "52.64.185.170", "garbage", 403),
    ],
)
def test_the_source_allow_list(
    allowed, proxies, remote, forwarded_for, status_code, post, receiver_settings, enqueued
):
    receiver_settings.FLASHFX_WEBHOOK_ALLOWED_IPS = allowed
    receiver_settings.FLASHFX_WEBHOOK_TRUSTED_PROXIES = proxies
    allowed_networks.cache_clear()
    body = compact(EVENTS["deposit_cleared"])
    headers = signed_headers(body)
    if forwarded_for:
        headers["x-forwarded-for"] = forwarded_for

    response = post(body, headers, REMOTE_ADDR=remote)

    assert response.status_code == status_code, response.content
    if status_code == 200:
        assert only_row().accepted and enqueued.call_count == 1
    else:
        assert_quarantined(response, "ip_not_allowed", 403, body, enqueued)


def test_the_allow_list_is_checked_before_the_signature(post, receiver_settings, enqueued):
    receiver_settings.FLASHFX_WEBHOOK_ALLOWED_IPS = ["uat"]
    allowed_networks.cache_clear()
    body = b"not even json"
    response = post(body, {}, REMOTE_ADDR="198.51.100.1")
    row = assert_quarantined(response, "ip_not_allowed", 403, body, enqueued)
    assert row.remote_addr == "198.51.100.1"


def test_behind_a_tls_proxy_production_settings_answer_directly(post, receiver_settings):
    """Production redirects HTTP to HTTPS; FlashFX's HTTPS request, forwarded by a proxy that
    says so, is answered directly."""
    receiver_settings.SECURE_SSL_REDIRECT = True
    receiver_settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    body = compact(EVENTS["payment_complete"])

    response = post(body, signed_headers(body) | {"x-forwarded-proto": "https"})

    assert response.status_code == 200
    assert only_row().accepted


def production_redirect_settings(tmp_path) -> dict:
    """SECURE_SSL_REDIRECT and SECURE_REDIRECT_EXEMPT as backoffice/settings.py sets them with
    DEBUG off, read in a fresh interpreter (this run has DEBUG on)."""
    required = (
        "SECRET_KEY",
        "FLASHFX_API_URL",
        "FLASHFX_EMAIL",
        "FLASHFX_PASSWORD",
        "AUDIT_HMAC_KEY",
    )
    env = {
        "PATH": os.environ["PATH"],
        "DJANGO_SETTINGS_MODULE": "backoffice.settings",
        "VAR_DIR": str(tmp_path / "var"),
        "DEBUG": "false",
        "ALLOWED_HOSTS": "backoffice.example",
        "FLASHFX_WEBHOOK_SECRET": SECRET,
        **dict.fromkeys(required, "x"),
    }
    code = (
        "import json, django; django.setup(); from django.conf import settings as s; "
        "print(json.dumps([s.SECURE_SSL_REDIRECT, s.SECURE_REDIRECT_EXEMPT]))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=Path(__file__).resolve().parents[2],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    redirect, exempt = json.loads(result.stdout)
    return {"SECURE_SSL_REDIRECT": redirect, "SECURE_REDIRECT_EXEMPT": exempt}


@pytest.mark.parametrize("path", ["/webhooks/flashfx/", "/webhooks/flashfx"])
def test_production_settings_never_redirect_a_webhook(path, post, receiver_settings, tmp_path):
    for name, value in production_redirect_settings(tmp_path).items():
        setattr(receiver_settings, name, value)
    assert receiver_settings.SECURE_SSL_REDIRECT
    body = compact(EVENTS["payment_complete"])

    response = post(body, signed_headers(body), path=path)

    assert response.status_code == 200, response.get("Location")
