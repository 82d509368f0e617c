"""Webhooks the sandbox sends (docs/flashfx.md §4; decisions §5.27-§5.38): headers, signature, retries, log."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import time
from decimal import Decimal
from itertools import pairwise

from sandbox_payloads import WEBHOOK_SECRET, create_withdrawal, wait_until

SECRET = WEBHOOK_SECRET.encode()  # FLASHFX_WEBHOOK_SECRET as tests/sandbox/conftest.py starts it
RETRY_GAPS = (0.03, 0.3, 3.0)  # 6/60/600 s x the harness's retry scale 0.005
REQUEST_ID = re.compile(r"[0-9a-f]{24}")
TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z")
WITHDRAWAL_EVENTS = ["withdrawal_initiated", "withdrawal_pending", "withdrawal_completed"]


def signature(body: bytes, secret: bytes = SECRET) -> str:
    return base64.b64encode(hmac.new(secret, body, hashlib.sha256).digest()).decode("ascii")


def send_test_event(sandbox) -> dict:
    response = sandbox.control("webhooks/test", {})
    assert response.status_code == 201, response.text
    return response.json()


def delivery_when(sandbox, request_id: str, status: str, timeout: float = 15.0) -> dict:
    def done() -> dict | None:
        rows = [d for d in sandbox.deliveries() if d["requestId"] == request_id]
        return rows[0] if rows and rows[0]["status"] == status else None

    return wait_until(done, timeout=timeout, what=f"delivery {request_id} to be {status}")


def assert_flashfx_headers(received) -> None:
    headers = received.headers
    assert headers["content-type"] == "application/json"
    assert headers["user-agent"] == "FlashFX"
    assert REQUEST_ID.fullmatch(headers["flashfx-request-id"]), headers["flashfx-request-id"]
    assert headers["flashfx-signature"]


# --- One delivery: headers, signature, body -----------------------------------------------------


def test_a_real_event_is_signed_with_base64_hmac_sha256_of_the_raw_body(sandbox):
    deposit = sandbox.receive_deposit("12.34")
    received = sandbox.receiver.wait_for_events(
        deposit["id"], ["deposit_initiated", "deposit_cleared"]
    )
    for request in received:
        assert request.headers["flashfx-signature"] == signature(request.body)
        assert len(request.headers["flashfx-signature"]) == 44  # 32 bytes, padded standard base64


def test_a_signature_made_with_another_secret_does_not_match(sandbox):
    deposit = sandbox.receive_deposit("12.34")
    request = sandbox.receiver.wait_for_events(
        deposit["id"], ["deposit_initiated", "deposit_cleared"]
    )[0]
    assert request.headers["flashfx-signature"] != signature(request.body, b"another-secret")
    assert request.headers["flashfx-signature"] != signature(request.body + b" ")


def test_every_webhook_carries_the_four_flashfx_headers(sandbox):
    deposit = sandbox.receive_deposit("12.34")
    received = sandbox.receiver.wait_for_events(
        deposit["id"], ["deposit_initiated", "deposit_cleared"]
    )
    for request in received:
        assert_flashfx_headers(request)
    ids = [r.headers["flashfx-request-id"] for r in received]
    assert len(set(ids)) == len(ids), "each event has its own request id"


def test_a_webhook_body_has_event_event_scheduled_at_and_the_entity_id(sandbox):
    deposit = sandbox.receive_deposit("12.34")
    received = sandbox.receiver.wait_for_events(
        deposit["id"], ["deposit_initiated", "deposit_cleared"]
    )
    for request in received:
        body = request.json
        assert body["id"] == deposit["id"]
        assert body["event"] in ("deposit_initiated", "deposit_cleared")
        assert TIMESTAMP.fullmatch(body["eventScheduledAt"]), body["eventScheduledAt"]
        assert body["amount"] == Decimal("12.34")
    assert received[0].json["eventScheduledAt"] <= received[1].json["eventScheduledAt"]


def test_the_delivery_log_holds_the_exact_bytes_and_signature_that_were_sent(sandbox):
    deposit = sandbox.receive_deposit("12.34")
    received = sandbox.receiver.wait_for_events(
        deposit["id"], ["deposit_initiated", "deposit_cleared"]
    )
    logged = {d["requestId"]: d for d in sandbox.deliveries(entityId=deposit["id"])}
    for request in received:
        delivery = logged[request.headers["flashfx-request-id"]]
        assert delivery["body"].encode("utf-8") == request.body
        assert delivery["signature"] == request.headers["flashfx-signature"]
        assert delivery["eventScheduledAt"] == request.json["eventScheduledAt"]
        assert delivery["kind"] == "regular"


# --- Retries (§4.2): 4 attempts, 6/60/600 s apart (scaled), the same request each time -----------


def test_a_failed_event_is_retried_with_the_same_request_until_a_2xx(sandbox):
    sandbox.receiver.answer_with(500, 500, 500)
    queued = send_test_event(sandbox)
    delivery = delivery_when(sandbox, queued["requestId"], "DELIVERED")

    attempts = sandbox.receiver.for_entity(queued["entityId"])
    assert len(attempts) == 4
    assert {a.headers["flashfx-request-id"] for a in attempts} == {queued["requestId"]}
    assert {a.body for a in attempts} == {attempts[0].body}
    assert {a.headers["flashfx-signature"] for a in attempts} == {signature(attempts[0].body)}
    arrivals = [a.at for a in attempts]
    assert arrivals == sorted(arrivals)
    for gap, (earlier, later) in zip(RETRY_GAPS, pairwise(arrivals), strict=True):
        assert later - earlier >= gap * 0.9, (
            f"{later - earlier:.3f}s between attempts, want >= {gap}s"
        )

    assert delivery["attempts"] == 4
    log = delivery["attemptLog"]
    assert [a["number"] for a in log] == [1, 2, 3, 4]
    assert [a["statusCode"] for a in log] == [500, 500, 500, 200]
    assert all(isinstance(a["latencyMs"], int) and a["latencyMs"] >= 0 for a in log)
    assert all(a["responseBody"] == "ok" for a in log)  # what the receiver answered
    assert all(TIMESTAMP.fullmatch(a["startedAt"]) for a in log)


def test_four_failures_mark_the_delivery_failed_and_nothing_is_sent_again(sandbox):
    sandbox.receiver.answer_with(500, 503, 500, 500)
    queued = send_test_event(sandbox)
    delivery = delivery_when(sandbox, queued["requestId"], "FAILED")

    assert delivery["attempts"] == 4
    assert [a["statusCode"] for a in delivery["attemptLog"]] == [500, 503, 500, 500]
    assert delivery["nextAttemptAt"] is None
    time.sleep(0.5)  # longer than the first two scaled retry gaps: a fifth attempt would show
    assert len(sandbox.receiver.for_entity(queued["entityId"])) == 4


def test_a_3xx_answer_is_a_failed_attempt(sandbox):
    sandbox.receiver.answer_with(302)
    queued = send_test_event(sandbox)
    delivery = delivery_when(sandbox, queued["requestId"], "DELIVERED")
    assert [a["statusCode"] for a in delivery["attemptLog"]] == [302, 200]
    attempts = sandbox.receiver.for_entity(queued["entityId"])
    assert len(attempts) == 2
    assert attempts[0].headers["flashfx-request-id"] == attempts[1].headers["flashfx-request-id"]


def test_any_2xx_answer_delivers_at_the_first_attempt(sandbox):
    sandbox.receiver.answer_with(204)
    queued = send_test_event(sandbox)
    delivery = delivery_when(sandbox, queued["requestId"], "DELIVERED")
    assert [a["statusCode"] for a in delivery["attemptLog"]] == [204]
    time.sleep(0.1)
    assert len(sandbox.receiver.for_entity(queued["entityId"])) == 1


# --- Test event (§5.38) ------------------------------------------------------------------------


def test_send_test_posts_a_signed_test_event(sandbox):
    queued = send_test_event(sandbox)
    assert queued["event"] == "test" and queued["kind"] == "regular"
    request = wait_until(
        lambda: sandbox.receiver.for_entity(queued["entityId"]), what="the test event"
    )[0]
    assert request.path == "/webhooks/flashfx/"
    assert_flashfx_headers(request)
    assert request.headers["flashfx-request-id"] == queued["requestId"]
    assert request.headers["flashfx-signature"] == signature(request.body)
    body = request.json
    assert set(body) == {"event", "eventScheduledAt", "id"}
    assert body["event"] == "test"
    assert TIMESTAMP.fullmatch(body["eventScheduledAt"])
    assert REQUEST_ID.fullmatch(body["id"])


def test_send_test_without_a_webhook_url_is_refused(sandbox):
    sandbox.configure(webhook_url="")
    response = sandbox.control("webhooks/test", {})
    assert response.status_code == 409, response.text


# --- Ad hoc webhooks: callbackUri (§4.1, §4.5; decisions §5.32, §5.33, §5.35) -----------------------


def test_an_entity_with_a_callback_uri_also_gets_its_own_ad_hoc_delivery(sandbox):
    sandbox.fund("500.00")
    callback = sandbox.receiver.url + "?signature=q1w2%2Be3%2F%3D&ref=po-778"
    reply = create_withdrawal(sandbox, "100", externalId="po-778", callbackUri=callback)
    assert reply["success"] is True, reply
    withdrawal_id = reply["withdrawal"]["id"]
    assert reply["withdrawal"]["callbackUri"] == callback

    def split() -> tuple[list, list]:
        requests = sandbox.receiver.for_entity(withdrawal_id)
        regular = [r for r in requests if r.path == "/webhooks/flashfx/"]
        adhoc = [r for r in requests if r.path != "/webhooks/flashfx/"]
        return regular, adhoc

    wait_until(
        lambda: all(len(side) >= len(WITHDRAWAL_EVENTS) for side in split()),
        what="regular and ad hoc withdrawal events",
    )
    time.sleep(0.2)
    regular, adhoc = split()
    assert [r.json["event"] for r in regular] == WITHDRAWAL_EVENTS
    assert [r.json["event"] for r in adhoc] == WITHDRAWAL_EVENTS  # in order (§5.29)

    # Called exactly as stored, query string included (§5.35).
    assert {r.path for r in adhoc} == {"/webhooks/flashfx/?signature=q1w2%2Be3%2F%3D&ref=po-778"}
    adhoc_by_event = {r.json["event"]: r for r in adhoc}
    adhoc_secret = sandbox.control("config").json()["adhoc_webhook_secret"].encode()
    for request in regular:
        twin = adhoc_by_event[request.json["event"]]
        assert_flashfx_headers(twin)
        assert twin.json == request.json
        assert twin.headers["flashfx-request-id"] != request.headers["flashfx-request-id"]
        assert request.headers["flashfx-signature"] == signature(request.body)
        assert twin.headers["flashfx-signature"] == signature(twin.body, adhoc_secret)

    kinds = sorted(d["kind"] for d in sandbox.deliveries(entityId=withdrawal_id))
    assert kinds == ["adhoc"] * 3 + ["regular"] * 3
