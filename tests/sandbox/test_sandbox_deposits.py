from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sandbox_payloads import DEPOSIT_SENDER, create_sub_client, force, hold

# Deposits in the sandbox: docs/flashfx.md §3.2, §4.6 and decisions §5.21-§5.23.

DEPOSIT_FIELDS = (
    "id amount currency status statusMessage externalId externalReference totalFee createdAt"
    " clearedAt refundAmount refundReason refundedAt"
    " sender { accountName companyName bankName bankCountry bsb accountNo }"
    " recipient { accountName accountNo bsb }"
    " subClient { id fullName accountNo bsb }"
)
REFUND = (
    "mutation R($id: ID, $input: RefundDepositInput) { refundDeposit(id: $id, input: $input)"
    f" {{ success code message deposit {{ {DEPOSIT_FIELDS} }} }} }}"
)
EVENTS = {
    "INITIALISED": "deposit_initiated",
    "REVIEWING": "deposit_reviewing",
    "CONFIRMED": "deposit_cleared",
    "REFUNDING": "deposit_refunding",
    "REFUNDED": "deposit_refunded",
    "CANCELLED": "deposit_cancelled",
}
MESSAGES = {
    "REVIEWING": "Awaiting manual compliance",
    "CONFIRMED": "Deposit cleared",
    "REFUNDING": "Refund initiated",
    "REFUNDED": "Deposit refunded",
    "CANCELLED": "Cancelled by: ops@sandbox.local : ",
}
PATH_TO = {
    "INITIALISED": [],
    "REVIEWING": ["REVIEWING"],
    "CONFIRMED": ["CONFIRMED"],
    "REFUNDING": ["CONFIRMED", "REFUNDING"],
}
ZERO = Decimal("0.00")
# Every edge of the §3.2 table plus decision §5.21, with (cleared, pending) after it for a
# deposit of 1000.00 into an empty account.
EDGES = [
    ("INITIALISED", "REVIEWING", (ZERO, Decimal("1000.00"))),
    ("INITIALISED", "CONFIRMED", (Decimal("1000.00"), ZERO)),
    ("REVIEWING", "CONFIRMED", (Decimal("1000.00"), ZERO)),
    ("CONFIRMED", "REFUNDING", (ZERO, ZERO)),  # debits cleared
    ("REVIEWING", "REFUNDING", (ZERO, ZERO)),  # the whole amount leaves pending
    ("REFUNDING", "REFUNDED", (ZERO, ZERO)),
    ("INITIALISED", "CANCELLED", (ZERO, ZERO)),  # removed from pending
    ("REVIEWING", "CANCELLED", (ZERO, ZERO)),
]


def deposit(sandbox, deposit_id: str) -> dict:
    return sandbox.data(
        f"query D($id: ID!) {{ deposit(id: $id) {{ {DEPOSIT_FIELDS} }} }}", {"id": deposit_id}
    )["deposit"]


def deposits(sandbox) -> list[dict]:
    return sandbox.data("query { deposits(input: {}) { id status } }")["deposits"]


def refund(sandbox, deposit_id: str, **fields) -> dict:
    variables: dict = {"id": deposit_id}
    if fields:
        variables["input"] = {k: Decimal(v) if k == "amount" else v for k, v in fields.items()}
    return sandbox.data(REFUND, variables)["refundDeposit"]


# --- Arrival and clearing ---------------------------------------------------------------------


def test_an_initialised_deposit_adds_to_pending(sandbox):
    hold(sandbox)
    received = sandbox.receive_deposit("1000.00", externalReference="INV-1")
    assert received["status"] == "INITIALISED"
    assert received["statusMessage"] == "Deposit initiated"
    assert sandbox.deposit_status(received["id"]) == "INITIALISED"
    assert sandbox.balance() == (ZERO, Decimal("1000.00"))
    (initiated,) = sandbox.receiver.wait_for_events(received["id"], ["deposit_initiated"])
    payload = initiated.json
    assert payload["amount"] == Decimal("1000.00")
    assert payload["totalFee"] == ZERO
    assert payload["currency"] == "AUD"
    assert payload["externalReference"] == "INV-1"
    assert payload["statusMessage"] == "Deposit initiated"
    assert "clearedAt" not in payload
    assert "subClient" not in payload


def test_a_confirmed_deposit_moves_from_pending_to_cleared_with_its_webhooks(sandbox):
    received = sandbox.receive_deposit(
        "1000.00",
        externalReference="INV-2",
        sender={
            "accountName": "Acme Pty Ltd",
            "bsb": "062000",
            "accountNo": "11112222",
            "companyName": "Acme",
        },
    )
    sandbox.wait_for_status("deposit", received["id"], "CONFIRMED")
    assert sandbox.balance() == (Decimal("1000.00"), ZERO)
    initiated, cleared = sandbox.receiver.wait_for_events(
        received["id"], ["deposit_initiated", "deposit_cleared"]
    )
    stored = deposit(sandbox, received["id"])
    payload = cleared.json
    assert payload["id"] == received["id"]
    assert payload["eventScheduledAt"].endswith("Z")
    assert payload["amount"] == Decimal("1000.00")
    assert payload["totalFee"] == ZERO
    assert payload["currency"] == "AUD"
    assert payload["externalReference"] == "INV-2"
    assert payload["clearedAt"] == stored["clearedAt"]
    assert payload["clearedAt"].endswith("Z")
    assert payload["statusMessage"] == "Deposit cleared"
    assert payload["recipient"] == stored["recipient"]
    assert set(payload["recipient"]) == {"accountName", "accountNo", "bsb"}
    assert payload["sender"] == {
        "accountName": "Acme Pty Ltd",
        "companyName": "Acme",
        "bankName": stored["sender"]["bankName"],
        "bankCountry": "AU",
        "bsb": "062000",
        "accountNo": "11112222",
    }
    assert "subClient" not in payload
    assert "subClient" not in initiated.json
    assert stored["statusMessage"] == "Deposit cleared"


# --- Forced transitions (§3.2 table, decision §5.21) ------------------------------------------


@pytest.mark.parametrize(
    ("source", "target", "balance"), EDGES, ids=[f"{s}->{t}" for s, t, _ in EDGES]
)
def test_every_documented_deposit_edge_can_be_forced_with_its_webhook_and_money(
    sandbox, source, target, balance
):
    hold(sandbox)
    received = sandbox.receive_deposit("1000.00")
    for step in PATH_TO[source]:
        force(sandbox, "deposits", received["id"], step)
    assert sandbox.deposit_status(received["id"]) == source

    force(sandbox, "deposits", received["id"], target)

    assert sandbox.deposit_status(received["id"]) == target
    assert sandbox.balance() == balance
    expected = ["deposit_initiated"] + [EVENTS[s] for s in [*PATH_TO[source], target]]
    last = sandbox.receiver.wait_for_events(received["id"], expected)[-1].json
    assert last["amount"] == Decimal("1000.00")
    assert last["statusMessage"] == MESSAGES[target]
    if target in ("REFUNDING", "REFUNDED"):
        assert last["refundAmount"] == Decimal("1000.00")
        assert last["refundReason"]
    if target == "REFUNDED":
        assert last["refundedAt"].endswith("Z")


@pytest.mark.parametrize(
    ("path", "target"),
    [(["CONFIRMED"], "CANCELLED"), (["CONFIRMED", "REFUNDING", "REFUNDED"], "CONFIRMED")],
    ids=["CONFIRMED->CANCELLED", "REFUNDED->CONFIRMED"],
)
def test_an_undocumented_deposit_edge_is_refused_and_changes_nothing(sandbox, path, target):
    hold(sandbox)
    received = sandbox.receive_deposit("1000.00")
    for step in path:
        force(sandbox, "deposits", received["id"], step)
    before, balance = deposit(sandbox, received["id"]), sandbox.balance()

    response = sandbox.advance("deposits", received["id"], target)

    assert response.status_code == 409, response.text
    assert deposit(sandbox, received["id"]) == before
    assert sandbox.balance() == balance
    sandbox.receiver.wait_for_events(
        received["id"], ["deposit_initiated"] + [EVENTS[s] for s in path]
    )


def test_a_forced_refund_cannot_exceed_the_deposit(sandbox):
    hold(sandbox)
    received = sandbox.receive_deposit("100.00")
    force(sandbox, "deposits", received["id"], "CONFIRMED")
    response = sandbox.advance("deposits", received["id"], "REFUNDING", refundAmount=150)
    assert response.status_code == 409, response.text
    assert response.json()["code"] == "INVALID_AMOUNT"
    assert sandbox.deposit_status(received["id"]) == "CONFIRMED"
    assert sandbox.balance() == (Decimal("100.00"), ZERO)


# --- refundDeposit (decision §5.23) -----------------------------------------------------------


def test_a_partial_refund_of_a_confirmed_deposit_is_sent_and_completes(sandbox):
    funded = sandbox.fund("1000.00")
    reply = refund(sandbox, funded["id"], amount="25.5", reason="paid twice")
    assert reply["success"] is True
    assert reply["code"] == "REFUND_SENT"
    assert reply["message"] == "Refund initiated successfully"
    assert reply["deposit"]["status"] == "REFUNDING"
    assert reply["deposit"]["refundAmount"] == Decimal("25.5")
    assert reply["deposit"]["refundReason"] == "paid twice"

    sandbox.wait_for_status("deposit", funded["id"], "REFUNDED")
    received = sandbox.receiver.wait_for_events(
        funded["id"],
        ["deposit_initiated", "deposit_cleared", "deposit_refunding", "deposit_refunded"],
    )
    for request in received[2:]:
        assert request.json["refundAmount"] == Decimal("25.5")
        assert request.json["refundReason"] == "paid twice"
        assert request.json["amount"] == Decimal("1000.00")
    final = deposit(sandbox, funded["id"])
    assert final["refundAmount"] == Decimal("25.5")
    assert final["refundedAt"].endswith("Z")
    assert received[3].json["refundedAt"] == final["refundedAt"]
    assert sandbox.balance() == (Decimal("974.50"), ZERO)


def test_a_refund_without_an_amount_returns_the_whole_deposit(sandbox):
    funded = sandbox.fund("300.00")
    reply = refund(sandbox, funded["id"])
    assert reply["success"] is True
    assert reply["code"] == "REFUND_SENT"
    assert reply["deposit"]["refundAmount"] == Decimal("300.00")
    sandbox.wait_for_status("deposit", funded["id"], "REFUNDED")
    assert deposit(sandbox, funded["id"])["refundAmount"] == Decimal("300.00")
    assert sandbox.balance() == (ZERO, ZERO)


def test_a_refund_larger_than_the_deposit_is_refused_and_changes_nothing(sandbox):
    funded = sandbox.fund("100.00")
    sandbox.receiver.wait_for_events(funded["id"], ["deposit_initiated", "deposit_cleared"])
    reply = refund(sandbox, funded["id"], amount="100.01")
    assert reply["success"] is False
    assert reply["code"] == "INVALID_AMOUNT"
    assert reply["deposit"] is None
    assert sandbox.deposit_status(funded["id"]) == "CONFIRMED"
    assert deposit(sandbox, funded["id"])["refundAmount"] is None
    assert sandbox.balance() == (Decimal("100.00"), ZERO)
    sandbox.receiver.wait_for_events(funded["id"], ["deposit_initiated", "deposit_cleared"])


def _initialised(sandbox) -> dict:
    hold(sandbox)
    return sandbox.receive_deposit("100.00")


def _reviewing(sandbox) -> dict:
    received = sandbox.receive_deposit("100.00", review=True)
    sandbox.wait_for_status("deposit", received["id"], "REVIEWING")
    return received


def _refunded(sandbox) -> dict:
    funded = sandbox.fund("100.00")
    assert refund(sandbox, funded["id"])["success"] is True
    sandbox.wait_for_status("deposit", funded["id"], "REFUNDED")
    return funded


@pytest.mark.parametrize(
    ("make", "status"),
    [(_initialised, "INITIALISED"), (_reviewing, "REVIEWING"), (_refunded, "REFUNDED")],
    ids=["INITIALISED", "REVIEWING", "REFUNDED"],
)
def test_only_a_confirmed_deposit_can_be_refunded(sandbox, make, status):
    received = make(sandbox)
    balance = sandbox.balance()
    reply = refund(sandbox, received["id"], amount="10.00")
    assert reply["success"] is False
    assert reply["code"] == "INVALID_STATUS"
    assert sandbox.deposit_status(received["id"]) == status
    assert sandbox.balance() == balance


def test_a_deposit_can_be_refunded_only_once(sandbox):
    funded = sandbox.fund("100.00")
    assert refund(sandbox, funded["id"], amount="10.00")["success"] is True
    second = refund(sandbox, funded["id"], amount="10.00")
    assert second["success"] is False
    assert second["code"] == "INVALID_STATUS"
    sandbox.wait_for_status("deposit", funded["id"], "REFUNDED")
    assert sandbox.balance() == (Decimal("90.00"), ZERO)


def test_refunding_an_unknown_deposit_is_not_found(sandbox):
    reply = refund(sandbox, "65f0c0ffee0000000000d001")
    assert reply["success"] is False
    assert reply["code"] == "NOT_FOUND"
    assert reply["deposit"] is None


# --- The control endpoint ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"amount": "abc"}, "amount"),
        ({"sender": {"bsb": "062000", "accountNo": "11112222"}}, "sender.accountName"),
        (
            {"sender": {**DEPOSIT_SENDER, "bsb": "1234"}},
            "sender.bsb",
        ),
    ],
    ids=["amount-abc", "no-accountName", "short-bsb"],
)
def test_the_deposit_control_endpoint_refuses_bad_input_and_stores_nothing(sandbox, change, field):
    body = {
        "amount": "100.00",
        "currency": "AUD",
        "externalReference": "bad",
        "sender": DEPOSIT_SENDER,
    } | change
    response = sandbox.control("deposits", body)
    assert response.status_code == 400, response.text
    assert response.json()["field"] == field
    assert field in response.json()["error"]
    assert deposits(sandbox) == []
    assert sandbox.balance() == (ZERO, ZERO)


# --- Sub-clients and the statement ---------------------------------------------------------------


def test_a_deposit_to_a_sub_client_carries_the_sub_client(sandbox):
    sub_client = create_sub_client(sandbox)
    received = sandbox.receive_deposit("80.00", subClientId=sub_client["id"])
    sandbox.wait_for_status("deposit", received["id"], "CONFIRMED")
    assert deposit(sandbox, received["id"])["subClient"] == sub_client
    initiated, cleared = sandbox.receiver.wait_for_events(
        received["id"], ["deposit_initiated", "deposit_cleared"]
    )
    for request in (initiated, cleared):
        summary = request.json["subClient"]
        assert {k: summary[k] for k in ("id", "fullName", "accountNo", "bsb")} == sub_client
    assert cleared.json["recipient"]["accountNo"] == sub_client["accountNo"]
    assert sandbox.balance() == (Decimal("80.00"), ZERO)


def test_the_statement_lists_deposits_and_refunds_that_add_up_to_the_cleared_balance(sandbox):
    first = sandbox.fund("1000.00")
    sandbox.fund("250.25")
    assert refund(sandbox, first["id"], amount="100.10")["success"] is True
    sandbox.wait_for_status("deposit", first["id"], "REFUNDED")

    # One day from an hour ago: today's lines, however close to midnight the test runs.
    since = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    statement = sandbox.data(
        "query S($input: StatementQueryInput!) { statement(input: $input) { success code"
        " fromDate toDate rows { type transactionId debit credit balance } } }",
        {"input": {"fromDate": since, "currency": "AUD"}},
    )["statement"]
    assert statement["success"] is True
    assert statement["code"] == "GENERATED"
    rows = statement["rows"]
    assert [(r["type"], r["credit"], r["debit"]) for r in rows] == [
        ("DEPOSIT", Decimal("1000.00"), ZERO),
        ("DEPOSIT", Decimal("250.25"), ZERO),
        ("DEPOSIT_REFUND", ZERO, Decimal("100.10")),
    ]
    assert rows[2]["transactionId"] == first["id"]
    cleared, _ = sandbox.balance()
    assert cleared == Decimal("1150.15")
    assert sum(r["credit"] for r in rows) - sum(r["debit"] for r in rows) == cleared
    assert rows[-1]["balance"] == cleared
