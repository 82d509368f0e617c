from __future__ import annotations

import re
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

import pytest
from sandbox_payloads import hold, loads

# Quotes and FX payments in the sandbox: docs/flashfx.md §3.6, §3.7, §4.6 and decisions §5.24, §5.26, §5.37.

CENT = Decimal("0.01")
ZERO = Decimal("0.00")
PAYMENT_FIELDS = (
    "id status size currency fromCurrency toCurrency fromAmount toAmount externalId"
    " externalReference createdAt recipient { id currency displayName iban }"
)
CREATE_PAYMENT = (
    "mutation P($input: PaymentInput!) { createPayment(input: $input)"
    f" {{ success code message payment {{ {PAYMENT_FIELDS} }} }} }}"
)
QUOTE = (
    "query Q($input: QuoteInput!) { quote(input: $input)"
    " { id bid ask symbol timestamp inverted expireAt } }"
)
GBP_RECIPIENT = {
    "accountIdType": "IBAN",
    "currency": "GBP",
    "iban": "GB29NWBK60161331926819",
    "firstName": "Oliver",
    "lastName": "Bennett",
}
EVENTS = {"FAILED": "payment_failed", "CANCELLED": "payment_cancelled"}


def create(sandbox, size: str = "1000.00", **fields) -> dict:
    """createPayment's reply (success or business failure); GraphQL errors fail the test."""
    payload = {
        "fromCurrency": "AUD",
        "toCurrency": "GBP",
        "size": Decimal(size),
        "currency": "AUD",
        "reason": "BUSINESS",
        "sourceOfFunds": "BUSINESS_FUNDS",
        "externalReference": "Invoice 42",
        **fields,
    }
    if "recipient" not in payload and "recipientId" not in payload:
        payload["recipient"] = GBP_RECIPIENT
    return sandbox.data(CREATE_PAYMENT, {"input": payload})["createPayment"]


def created(sandbox, size: str = "1000.00", **fields) -> dict:
    reply = create(sandbox, size, **fields)
    assert reply["success"] is True, reply
    assert reply["code"] == "SUCCESS"
    return reply["payment"]


def quote(sandbox, **fields) -> dict:
    payload = {
        "fromCurrency": "AUD",
        "toCurrency": "GBP",
        "size": Decimal("1000"),
        "currency": "AUD",
    }
    return sandbox.data(QUOTE, {"input": payload | fields})["quote"]


def payment(sandbox, payment_id: str) -> dict:
    return sandbox.data(
        f"query P($id: ID!) {{ payment(id: $id) {{ {PAYMENT_FIELDS} }} }}", {"id": payment_id}
    )["payment"]


def payments(sandbox) -> list[dict]:
    return sandbox.data("query { payments(input: {}) { id } }")["payments"]


def instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


# --- Quotes (§3.7, decision §5.26) -------------------------------------------------------------


def test_an_indicative_quote_has_no_id_and_a_spread(sandbox):
    result = quote(sandbox, toCurrency="USD")
    assert result["id"] is None
    assert result["symbol"] == "AUDUSD"
    assert result["inverted"] is False
    assert Decimal(0) < result["bid"] < result["ask"]
    assert result["timestamp"].endswith("Z")


def test_a_tradeable_quote_has_an_id_and_an_expiry(sandbox):
    result = quote(sandbox, toCurrency="EUR", tradeable=True)
    assert re.fullmatch(r"[0-9a-f]{24}", result["id"])
    assert result["symbol"] == "AUDEUR"
    assert result["bid"] < result["ask"]
    assert instant(result["expireAt"]) > instant(result["timestamp"])


def test_every_tradeable_quote_lives_exactly_120_seconds_from_its_timestamp(sandbox):
    # Many quotes, so that a validity computed from another instant than the timestamp shows
    # (it comes out as 119.999 s once both are written with milliseconds).
    lives = set()
    for _ in range(50):
        result = quote(sandbox, tradeable=True)
        lives.add(instant(result["expireAt"]) - instant(result["timestamp"]))
    assert lives == {timedelta(seconds=120)}


# --- Creating a payment (§3.6.1, decisions §5.24, §5.37) ------------------------------------------


def test_a_payment_is_created_open_with_the_from_amount_debited(sandbox):
    sandbox.fund("2000.00")
    hold(sandbox)
    reply = create(sandbox, "1000.00", externalId="pay-1")
    assert reply["success"] is True
    assert reply["code"] == "SUCCESS"
    assert reply["message"] == "Scheduled for immediate execution"
    created_payment = reply["payment"]
    assert created_payment["status"] == "OPEN"
    assert created_payment["fromAmount"] == Decimal("1000.00")
    assert created_payment["size"] == Decimal("1000.00")
    assert created_payment["currency"] == "AUD"
    assert created_payment["recipient"]["id"] is None
    assert created_payment["recipient"]["currency"] == "GBP"
    assert sandbox.balance() == (Decimal("1000.00"), ZERO)
    assert sandbox.balance("GBP") == (ZERO, ZERO)


def test_a_payment_converts_then_closes_with_two_webhooks_and_none_at_creation(sandbox):
    sandbox.fund("2000.00")
    bid = quote(sandbox)["bid"]
    created_payment = created(sandbox, "1000.00", externalId="pay-2")
    received = sandbox.receiver.wait_for_events(
        created_payment["id"], ["currency_converted", "payment_complete"]
    )
    final = sandbox.wait_for_status("payment", created_payment["id"], "CLOSED")
    assert final["status"] == "CLOSED"
    expected_to = (Decimal("1000.00") * bid).quantize(CENT, ROUND_HALF_UP)
    for request in received:
        body = request.json
        assert body["id"] == created_payment["id"]
        assert body["fromAmount"] == Decimal("1000.00")
        assert body["fromCurrency"] == "AUD"
        assert body["toAmount"] == expected_to
        assert body["toCurrency"] == "GBP"
        assert body["externalId"] == "pay-2"
    assert payment(sandbox, created_payment["id"])["toAmount"] == expected_to
    assert sandbox.balance() == (Decimal("1000.00"), ZERO)


def test_a_size_in_the_to_currency_computes_the_from_amount(sandbox):
    sandbox.fund("2000.00")
    hold(sandbox)
    bid = quote(sandbox)["bid"]
    created_payment = created(sandbox, "500.00", currency="GBP")
    expected_from = (Decimal("500.00") / bid).quantize(CENT, ROUND_HALF_UP)
    assert created_payment["currency"] == "GBP"
    assert created_payment["size"] == Decimal("500.00")
    assert created_payment["toAmount"] == Decimal("500.00")
    assert created_payment["fromAmount"] == expected_from
    assert sandbox.balance() == (Decimal("2000.00") - expected_from, ZERO)


def test_a_tradeable_quote_prices_one_payment_and_is_then_expired(sandbox):
    sandbox.fund("5000.00")
    hold(sandbox)
    tradeable = quote(sandbox, tradeable=True)
    first = created(sandbox, "1000.00", quoteId=tradeable["id"])
    assert first["toAmount"] == (Decimal("1000.00") * tradeable["bid"]).quantize(
        CENT, ROUND_HALF_UP
    )
    second = create(sandbox, "1000.00", quoteId=tradeable["id"])
    assert second["success"] is False
    assert second["code"] == "QUOTE_EXPIRED"
    assert second["payment"] is None
    assert [p["id"] for p in payments(sandbox)] == [first["id"]]
    assert sandbox.balance() == (Decimal("4000.00"), ZERO)


# --- Forced outcomes (§3.6.3, decision §5.24) ---------------------------------------------------


@pytest.mark.parametrize("target", ["FAILED", "CANCELLED"])
def test_a_failed_or_cancelled_payment_gives_the_from_amount_back(sandbox, target):
    sandbox.fund("2000.00")
    hold(sandbox)
    created_payment = created(sandbox, "1000.00", externalId="pay-3")
    assert sandbox.balance() == (Decimal("1000.00"), ZERO)

    response = sandbox.advance("payments", created_payment["id"], target)

    assert response.status_code == 200, response.text
    assert loads(response.content)["status"] == target
    assert payment(sandbox, created_payment["id"])["status"] == target
    (received,) = sandbox.receiver.wait_for_events(created_payment["id"], [EVENTS[target]])
    assert received.json["fromAmount"] == Decimal("1000.00")
    assert received.json["externalId"] == "pay-3"
    assert sandbox.balance() == (Decimal("2000.00"), ZERO)


def test_a_closed_payment_cannot_be_failed(sandbox):
    sandbox.fund("2000.00")
    created_payment = created(sandbox, "1000.00")
    sandbox.wait_for_status("payment", created_payment["id"], "CLOSED")
    sandbox.receiver.wait_for_events(
        created_payment["id"], ["currency_converted", "payment_complete"]
    )

    response = sandbox.advance("payments", created_payment["id"], "FAILED")

    assert response.status_code == 409, response.text
    assert payment(sandbox, created_payment["id"])["status"] == "CLOSED"
    assert sandbox.balance() == (Decimal("1000.00"), ZERO)
    sandbox.receiver.wait_for_events(
        created_payment["id"], ["currency_converted", "payment_complete"]
    )


# --- Idempotency, funds and input (decisions §5.13, §5.16) -----------------------------------------


def test_replaying_an_idempotency_key_with_the_same_input_returns_the_same_payment(sandbox):
    sandbox.fund("2000.00")
    hold(sandbox)
    first = create(sandbox, "500.00", idempotencyKey="pay-900")
    second = create(sandbox, "500.00", idempotencyKey="pay-900")
    assert first["success"] is True and second["success"] is True
    assert second["payment"]["id"] == first["payment"]["id"]
    assert [p["id"] for p in payments(sandbox)] == [first["payment"]["id"]]
    assert sandbox.balance() == (Decimal("1500.00"), ZERO)


def test_reusing_an_idempotency_key_with_other_input_is_refused_and_creates_nothing(sandbox):
    sandbox.fund("2000.00")
    hold(sandbox)
    first = created(sandbox, "500.00", idempotencyKey="pay-901")
    other = create(sandbox, "600.00", idempotencyKey="pay-901")
    assert other["success"] is False
    assert other["code"] == "DUPLICATE_IDEMPOTENCY_KEY"
    assert other["payment"] is None
    assert [p["id"] for p in payments(sandbox)] == [first["id"]]
    assert sandbox.balance() == (Decimal("1500.00"), ZERO)


def test_a_payment_beyond_the_balance_fails_with_insufficient_funds(sandbox):
    sandbox.fund("100.00")
    reply = create(sandbox, "100.01")
    assert reply["success"] is False
    assert reply["code"] == "INSUFFICIENT_FUNDS"
    assert reply["payment"] is None
    assert payments(sandbox) == []
    assert sandbox.balance() == (Decimal("100.00"), ZERO)


def test_a_recipient_in_another_currency_than_to_currency_is_bad_user_input(sandbox):
    sandbox.fund("2000.00")
    envelope = sandbox.gql(
        CREATE_PAYMENT,
        {
            "input": {
                "fromCurrency": "AUD",
                "toCurrency": "EUR",
                "size": Decimal("100.00"),
                "currency": "AUD",
                "recipient": GBP_RECIPIENT,
            }
        },
    )
    assert envelope["data"]["createPayment"] is None
    (error,) = envelope["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert "GBP" in error["message"]
    assert payments(sandbox) == []
    assert sandbox.balance() == (Decimal("2000.00"), ZERO)
