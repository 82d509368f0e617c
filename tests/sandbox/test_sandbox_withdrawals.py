from __future__ import annotations

from decimal import Decimal

import pytest
from sandbox_payloads import (
    BSB_RECIPIENT,
    CREATE_WITHDRAWAL,
    PAYID_RECIPIENT,
    create_sub_client,
    create_withdrawal,
    created_withdrawal,
    force,
    hold,
)

# Withdrawals (payouts) in the sandbox: docs/flashfx.md §3.3, §4.6 and decisions §5.12-§5.20.

FEE = Decimal("1.00")  # the default withdrawal fee (decision §5.15)

LIST_WITHDRAWALS = (
    "query L($input: WithdrawalQueryInput) { withdrawals(input: $input) { id status createdAt } }"
)
SENDER = {
    "firstName": "Katarina",
    "lastName": "Oreiro",
    "address": {"street": "Rua A 10 Sao Paulo 01000-000", "country": "BR"},
}

# The documented edges of §3.3.3 and the webhook each one sends.
EVENTS = {
    "INITIALISED": "withdrawal_initiated",
    "REVIEWING": "withdrawal_reviewing",
    "PENDING": "withdrawal_pending",
    "CONFIRMED": "withdrawal_completed",
    "FAILED": "withdrawal_failed",
    "REFUNDED": "withdrawal_refunded",
    "CANCELLED": "withdrawal_cancelled",
}
# A documented way to reach each from-state by forcing transitions from INITIALISED.
PATH_TO = {
    "INITIALISED": [],
    "REVIEWING": ["REVIEWING"],
    "PENDING": ["PENDING"],
    "CONFIRMED": ["PENDING", "CONFIRMED"],
    "FAILED": ["PENDING", "FAILED"],
}
DOCUMENTED_EDGES = [
    ("INITIALISED", "REVIEWING"),
    ("REVIEWING", "PENDING"),
    ("REVIEWING", "CANCELLED"),
    ("INITIALISED", "PENDING"),
    ("PENDING", "CONFIRMED"),
    ("PENDING", "FAILED"),
    ("CONFIRMED", "FAILED"),
    ("FAILED", "REFUNDED"),
    ("FAILED", "CANCELLED"),
    ("FAILED", "PENDING"),
]


def withdrawals(sandbox, filters: dict | None = None) -> list[dict]:
    return sandbox.data(LIST_WITHDRAWALS, {"input": filters or {}})["withdrawals"]


def tick(sandbox) -> None:
    """Apply everything that is due now, so "stays there" is checked, not waited for."""
    response = sandbox.control("clock/tick", {})
    assert response.status_code == 200, response.text


def create_recipient(sandbox, data: dict) -> dict:
    reply = sandbox.data(
        "mutation R($input: RecipientInput!) { createRecipient(input: $input)"
        " { success code recipient { id displayName } } }",
        {"input": data},
    )["createRecipient"]
    assert reply["success"] is True, reply
    return reply["recipient"]


# --- The happy path -----------------------------------------------------------------------------


def test_a_withdrawal_is_initialised_then_pending_then_confirmed_with_its_webhooks(sandbox):
    sandbox.fund("1000.00")
    reply = create_withdrawal(sandbox, "250.00", externalId="po-778", externalReference="INV 778")
    assert reply["success"] is True
    assert reply["code"] == "SUCCESS"
    assert reply["message"] == "Withdrawal was created"
    withdrawal = reply["withdrawal"]
    assert withdrawal["status"] == "INITIALISED"
    assert withdrawal["amount"] == Decimal("250.00")
    assert withdrawal["totalFee"] == FEE
    assert withdrawal["currency"] == "AUD"

    received = sandbox.receiver.wait_for_events(
        withdrawal["id"], ["withdrawal_initiated", "withdrawal_pending", "withdrawal_completed"]
    )
    final = sandbox.withdrawal(withdrawal["id"])
    assert final["status"] == "CONFIRMED"
    assert final["statusMessage"] == "Transaction Confirmed"
    assert final["clearedAt"].endswith("Z")

    for request in received:
        payload = request.json
        assert "status" not in payload
        assert payload["id"] == withdrawal["id"]
        assert payload["amount"] == Decimal("250.00")
        assert payload["totalFee"] == FEE
        assert payload["currency"] == "AUD"
        assert payload["externalId"] == "po-778"
        assert payload["eventScheduledAt"].endswith("Z")
    initiated, pending, completed = (r.json for r in received)
    assert "clearedAt" not in initiated
    assert "clearedAt" not in pending
    assert pending["statusMessage"] == "Sent to recipient bank"
    assert completed["statusMessage"] == "Transaction Confirmed"
    assert completed["clearedAt"] == final["clearedAt"]


def test_creating_a_withdrawal_debits_the_amount_and_the_default_fee_at_once(sandbox):
    sandbox.fund("1000.00")
    hold(sandbox)
    withdrawal = created_withdrawal(sandbox, "250.00")
    assert sandbox.withdrawal(withdrawal["id"])["status"] == "INITIALISED"
    assert sandbox.balance() == (Decimal("749.00"), Decimal("0.00"))


def test_a_completed_withdrawal_leaves_the_balance_debited_by_amount_and_fee(sandbox):
    sandbox.fund("1000.00")
    withdrawal = created_withdrawal(sandbox, "250.00")
    sandbox.wait_for_status("withdrawal", withdrawal["id"], "CONFIRMED")
    assert sandbox.balance() == (Decimal("749.00"), Decimal("0.00"))


# --- UAT keywords in externalReference (§3.3.6, decision §5.19) ------------------------------


def test_halt_aml_puts_a_withdrawal_in_review_and_leaves_it_there(sandbox):
    sandbox.fund("1000.00")
    withdrawal = created_withdrawal(sandbox, "100.00", externalReference="HALT_AML")
    received = sandbox.receiver.wait_for_events(
        withdrawal["id"], ["withdrawal_initiated", "withdrawal_reviewing"]
    )
    tick(sandbox)
    current = sandbox.withdrawal(withdrawal["id"])
    assert current["status"] == "REVIEWING"
    assert current["statusMessage"] == "Awaiting manual compliance"
    assert received[1].json["statusMessage"] == "Awaiting manual compliance"
    assert sandbox.receiver.events_for(withdrawal["id"]) == [
        "withdrawal_initiated",
        "withdrawal_reviewing",
    ]
    assert sandbox.balance() == (Decimal("899.00"), Decimal("0.00"))


def test_fail_aml_cancels_after_review_with_compliance_declined_and_keeps_the_fee(sandbox):
    sandbox.fund("1000.00")
    withdrawal = created_withdrawal(
        sandbox, "100.00", externalReference="FAIL_AML", externalId="po-1"
    )
    received = sandbox.receiver.wait_for_events(
        withdrawal["id"], ["withdrawal_initiated", "withdrawal_reviewing", "withdrawal_cancelled"]
    )
    final = sandbox.withdrawal(withdrawal["id"])
    assert final["status"] == "CANCELLED"
    assert final["rejectCode"] == "COMPLIANCE_DECLINED"
    assert final["statusMessage"] == "Rejected: does not meet compliance requirements"
    assert final["rejectedAt"].endswith("Z")
    cancelled = received[2].json
    assert cancelled["rejectCode"] == "COMPLIANCE_DECLINED"
    assert cancelled["rejectedAt"] == final["rejectedAt"]
    assert cancelled["statusMessage"] == "Rejected: does not meet compliance requirements"
    assert cancelled["externalId"] == "po-1"
    # The amount comes back, the fee is kept (decision §5.20).
    assert sandbox.balance() == (Decimal("999.00"), Decimal("0.00"))


def test_push_aml_reviews_then_continues_to_confirmed(sandbox):
    sandbox.fund("1000.00")
    withdrawal = created_withdrawal(sandbox, "100.00", externalReference="PUSH_AML")
    sandbox.receiver.wait_for_events(
        withdrawal["id"],
        [
            "withdrawal_initiated",
            "withdrawal_reviewing",
            "withdrawal_pending",
            "withdrawal_completed",
        ],
    )
    assert sandbox.withdrawal(withdrawal["id"])["status"] == "CONFIRMED"
    assert sandbox.balance() == (Decimal("899.00"), Decimal("0.00"))


def test_fail_acc_confirms_then_fails_and_is_refunded_without_the_fee(sandbox):
    sandbox.fund("1000.00")
    withdrawal = created_withdrawal(
        sandbox, "100.00", externalReference="FAIL_ACC", externalId="po-2"
    )
    received = sandbox.receiver.wait_for_events(
        withdrawal["id"],
        [
            "withdrawal_initiated",
            "withdrawal_pending",
            "withdrawal_completed",
            "withdrawal_failed",
            "withdrawal_refunded",
        ],
    )
    final = sandbox.withdrawal(withdrawal["id"])
    assert final["status"] == "REFUNDED"
    assert final["refundAmount"] == Decimal("100.00")
    assert final["refundReason"] == "No account or incorrect account number"
    assert final["refundedAt"].endswith("Z")
    assert final["clearedAt"].endswith("Z")
    assert final["statusMessage"] == "Payout reversal"

    refunded = received[4].json
    assert "status" not in refunded
    assert refunded["refundAmount"] == Decimal("100.00")
    assert refunded["refundReason"] == "No account or incorrect account number"
    assert refunded["refundedAt"] == final["refundedAt"]
    assert refunded["clearedAt"] == final["clearedAt"]
    assert refunded["statusMessage"] == "Payout reversal"
    assert refunded["externalId"] == "po-2"
    assert refunded["recipient"] == {
        "displayName": "Mia Ng",
        "bsb": "062000",
        "accountNo": "12345678",
    }
    assert sandbox.balance() == (Decimal("999.00"), Decimal("0.00"))


def test_a_keyword_embedded_in_free_text_still_picks_the_outcome(sandbox):
    sandbox.fund("1000.00")
    withdrawal = created_withdrawal(sandbox, "100.00", externalReference="x FAIL_ACC 8")
    sandbox.wait_for_status("withdrawal", withdrawal["id"], "REFUNDED")
    assert sandbox.receiver.wait_for_events(
        withdrawal["id"],
        [
            "withdrawal_initiated",
            "withdrawal_pending",
            "withdrawal_completed",
            "withdrawal_failed",
            "withdrawal_refunded",
        ],
    )
    assert sandbox.withdrawal(withdrawal["id"])["externalReference"] == "x FAIL_ACC 8"


# --- Forced transitions (§3.3.3 table) ---------------------------------------------------------


@pytest.mark.parametrize(("source", "target"), DOCUMENTED_EDGES, ids=lambda s: s)
def test_every_documented_withdrawal_edge_can_be_forced_with_its_webhook_and_money(
    sandbox, source, target
):
    sandbox.fund("1000.00")
    hold(sandbox)
    withdrawal = created_withdrawal(sandbox, "100.00", externalId="po-edge")
    assert sandbox.balance() == (Decimal("899.00"), Decimal("0.00"))
    for step in PATH_TO[source]:
        force(sandbox, "withdrawals", withdrawal["id"], step)
    assert sandbox.withdrawal(withdrawal["id"])["status"] == source
    balance_before = sandbox.balance()

    moved = force(sandbox, "withdrawals", withdrawal["id"], target)

    assert sandbox.withdrawal(withdrawal["id"])["status"] == target
    expected_events = ["withdrawal_initiated"] + [EVENTS[s] for s in [*PATH_TO[source], target]]
    received = sandbox.receiver.wait_for_events(withdrawal["id"], expected_events)
    last = received[-1].json
    assert "status" not in last
    assert last["amount"] == Decimal("100.00")
    assert last["externalId"] == "po-edge"
    # REFUNDED and CANCELLED give the amount back and keep the fee; nothing else moves money.
    if target in ("REFUNDED", "CANCELLED"):
        assert sandbox.balance() == (Decimal("999.00"), Decimal("0.00"))
    else:
        assert sandbox.balance() == balance_before == (Decimal("899.00"), Decimal("0.00"))
    if target == "CANCELLED":
        assert moved["rejectCode"] and last["rejectCode"] == moved["rejectCode"]
        assert last["rejectedAt"].endswith("Z")
    if target == "REFUNDED":
        assert last["refundAmount"] == Decimal("100.00")
        assert last["refundedAt"].endswith("Z")
    if target == "CONFIRMED":
        assert last["clearedAt"].endswith("Z")


@pytest.mark.parametrize(
    ("path", "target"),
    [(["PENDING", "CONFIRMED"], "PENDING"), (["PENDING", "FAILED", "REFUNDED"], "PENDING")],
    ids=["CONFIRMED->PENDING", "REFUNDED->PENDING"],
)
def test_an_undocumented_withdrawal_edge_is_refused_and_changes_nothing(sandbox, path, target):
    sandbox.fund("1000.00")
    hold(sandbox)
    withdrawal = created_withdrawal(sandbox, "100.00")
    for step in path:
        force(sandbox, "withdrawals", withdrawal["id"], step)
    events = ["withdrawal_initiated"] + [EVENTS[s] for s in path]
    sandbox.receiver.wait_for_events(withdrawal["id"], events)
    before = sandbox.withdrawal(withdrawal["id"])
    balance = sandbox.balance()

    response = sandbox.advance("withdrawals", withdrawal["id"], target)

    assert response.status_code == 409, response.text
    assert f"{path[-1]} -> {target}" in response.json()["error"]
    assert sandbox.withdrawal(withdrawal["id"]) == before
    assert sandbox.balance() == balance
    sandbox.receiver.wait_for_events(withdrawal["id"], events)


def test_a_forced_cancellation_with_a_reject_code_uses_it_and_its_standard_message(sandbox):
    sandbox.fund("1000.00")
    hold(sandbox)
    withdrawal = created_withdrawal(sandbox, "100.00")
    force(sandbox, "withdrawals", withdrawal["id"], "REVIEWING")
    moved = force(
        sandbox, "withdrawals", withdrawal["id"], "CANCELLED", rejectCode="RECIPIENT_ACCOUNT_CLOSED"
    )
    assert moved["rejectCode"] == "RECIPIENT_ACCOUNT_CLOSED"
    assert moved["statusMessage"] == "Blocked or closed account"
    final = sandbox.withdrawal(withdrawal["id"])
    assert final["rejectCode"] == "RECIPIENT_ACCOUNT_CLOSED"
    assert final["statusMessage"] == "Blocked or closed account"
    received = sandbox.receiver.wait_for_events(
        withdrawal["id"], ["withdrawal_initiated", "withdrawal_reviewing", "withdrawal_cancelled"]
    )
    assert received[2].json["rejectCode"] == "RECIPIENT_ACCOUNT_CLOSED"
    assert received[2].json["statusMessage"] == "Blocked or closed account"
    assert sandbox.balance() == (Decimal("999.00"), Decimal("0.00"))


# --- Idempotency (decision §5.13) --------------------------------------------------------------


def test_replaying_an_idempotency_key_with_the_same_input_returns_the_same_withdrawal(sandbox):
    sandbox.fund("1000.00")
    fields = {"idempotencyKey": "po-900", "externalId": "po-900"}
    first = create_withdrawal(sandbox, "100.00", **fields)
    second = create_withdrawal(sandbox, "100.00", **fields)
    assert first["success"] is True and second["success"] is True
    assert second["withdrawal"]["id"] == first["withdrawal"]["id"]
    assert [w["id"] for w in withdrawals(sandbox)] == [first["withdrawal"]["id"]]
    sandbox.wait_for_status("withdrawal", first["withdrawal"]["id"], "CONFIRMED")
    assert sandbox.balance() == (Decimal("899.00"), Decimal("0.00"))


def test_reusing_an_idempotency_key_with_other_input_is_refused_and_creates_nothing(sandbox):
    sandbox.fund("1000.00")
    first = created_withdrawal(sandbox, "100.00", idempotencyKey="po-901")
    other = create_withdrawal(sandbox, "120.00", idempotencyKey="po-901")
    assert other["success"] is False
    assert other["code"] == "DUPLICATE_IDEMPOTENCY_KEY"
    assert other["withdrawal"] is None
    assert [w["id"] for w in withdrawals(sandbox)] == [first["id"]]
    assert sandbox.balance() == (Decimal("899.00"), Decimal("0.00"))


def test_replaying_a_key_after_the_withdrawal_moved_on_returns_it_as_it_is_now(sandbox):
    sandbox.fund("1000.00")
    fields = {"idempotencyKey": "po-902", "externalId": "po-902"}
    first = created_withdrawal(sandbox, "100.00", **fields)
    sandbox.wait_for_status("withdrawal", first["id"], "CONFIRMED")
    again = create_withdrawal(sandbox, "100.00", **fields)
    assert (again["success"], again["code"]) == (True, "SUCCESS")
    assert (again["withdrawal"]["id"], again["withdrawal"]["status"]) == (first["id"], "CONFIRMED")
    assert sandbox.balance() == (Decimal("899.00"), Decimal("0.00"))


def test_the_same_amount_written_with_or_without_decimals_is_the_same_input(sandbox):
    sandbox.fund("1000.00")
    first = created_withdrawal(sandbox, "100.00", idempotencyKey="po-903")
    again = create_withdrawal(sandbox, "100", idempotencyKey="po-903")
    assert again["success"] is True, again
    assert again["withdrawal"]["id"] == first["id"]


# --- Finding a withdrawal by our externalId (the payout protocol's look-up, §2.3) ---------------


def test_the_external_id_filter_finds_only_the_withdrawal_with_it(sandbox):
    sandbox.fund("1000.00")
    wanted = created_withdrawal(sandbox, "10.00", externalId="po-910")
    created_withdrawal(sandbox, "11.00", externalId="po-911")
    created_withdrawal(sandbox, "12.00")
    assert [w["id"] for w in withdrawals(sandbox, {"externalId": "po-910"})] == [wanted["id"]]
    assert withdrawals(sandbox, {"externalId": "po-999"}) == []
    assert withdrawals(sandbox, {"externalId": "PO-910"}) == []  # exact, not case-folded


# --- TECHNICAL_ISSUE (§3.3.4: the one cancellation that may be sent again) -----------------------
# FlashFX's UAT has no keyword for it (§3.3.6), so the sandbox has none either: hold the payout
# in review with HALT_AML, then force the cancellation with its code.


def test_a_payout_held_by_halt_aml_can_be_cancelled_with_technical_issue(sandbox):
    sandbox.fund("1000.00")
    withdrawal = created_withdrawal(sandbox, "100.00", externalReference="HALT_AML")
    sandbox.wait_for_status("withdrawal", withdrawal["id"], "REVIEWING")
    force(sandbox, "withdrawals", withdrawal["id"], "CANCELLED", rejectCode="TECHNICAL_ISSUE")
    final = sandbox.withdrawal(withdrawal["id"])
    assert (final["status"], final["rejectCode"]) == ("CANCELLED", "TECHNICAL_ISSUE")
    assert final["statusMessage"] == "Technical issue"
    received = sandbox.receiver.wait_for_events(
        withdrawal["id"], ["withdrawal_initiated", "withdrawal_reviewing", "withdrawal_cancelled"]
    )
    assert received[2].json["rejectCode"] == "TECHNICAL_ISSUE"
    assert sandbox.balance() == (Decimal("999.00"), Decimal("0.00"))


# --- Money --------------------------------------------------------------------------------------


def test_a_withdrawal_beyond_the_balance_fails_with_insufficient_funds_and_creates_nothing(
    sandbox,
):
    sandbox.fund("50.00")
    reply = create_withdrawal(sandbox, "49.50")  # 49.50 + 1.00 fee > 50.00
    assert reply["success"] is False
    assert reply["code"] == "INSUFFICIENT_FUNDS"
    assert reply["withdrawal"] is None
    assert withdrawals(sandbox) == []
    assert sandbox.balance() == (Decimal("50.00"), Decimal("0.00"))


def test_a_withdrawal_of_exactly_the_balance_less_the_fee_is_allowed(sandbox):
    sandbox.fund("50.00")
    hold(sandbox)
    created_withdrawal(sandbox, "49.00")
    assert sandbox.balance() == (Decimal("0.00"), Decimal("0.00"))


def test_small_decimal_amounts_round_trip_exactly(sandbox):
    sandbox.fund("10.00")
    hold(sandbox)
    first = created_withdrawal(sandbox, "0.1")
    second = created_withdrawal(sandbox, "0.2")
    assert first["amount"] == Decimal("0.1")
    assert second["amount"] == Decimal("0.2")
    assert sandbox.withdrawal(first["id"])["amount"] + sandbox.withdrawal(second["id"])[
        "amount"
    ] == Decimal("0.30")
    # 10.00 - (0.1 + 0.2) - 2 fees
    assert sandbox.balance() == (Decimal("7.70"), Decimal("0.00"))


# --- Queries ------------------------------------------------------------------------------------


def test_the_statuses_filter_accepts_a_single_value(sandbox):
    sandbox.fund("1000.00")
    confirmed = created_withdrawal(sandbox, "10.00")
    reviewing = created_withdrawal(sandbox, "10.00", externalReference="HALT_AML")
    sandbox.wait_for_status("withdrawal", confirmed["id"], "CONFIRMED")
    sandbox.wait_for_status("withdrawal", reviewing["id"], "REVIEWING")
    rows = sandbox.data("query { withdrawals(input: {statuses: CONFIRMED}) { id status } }")[
        "withdrawals"
    ]
    assert rows == [{"id": confirmed["id"], "status": "CONFIRMED"}]
    rows = withdrawals(sandbox, {"statuses": ["REVIEWING", "CONFIRMED"]})
    assert {r["id"] for r in rows} == {confirmed["id"], reviewing["id"]}


def test_withdrawals_are_listed_newest_first(sandbox):
    sandbox.fund("1000.00")
    hold(sandbox)
    ids = [created_withdrawal(sandbox, "10.00")["id"] for _ in range(3)]
    assert [w["id"] for w in withdrawals(sandbox)] == ids[::-1]


def three_withdrawals(sandbox) -> list[dict]:
    sandbox.fund("1000.00")
    hold(sandbox)
    made = [created_withdrawal(sandbox, "10.00") for _ in range(3)]
    assert made[0]["createdAt"] < made[1]["createdAt"] < made[2]["createdAt"]
    return made


def listed_ids(sandbox, filters: dict) -> list[str]:
    return [w["id"] for w in withdrawals(sandbox, filters)]


def test_min_created_at_keeps_withdrawals_created_at_or_after_it(sandbox):
    first, second, third = three_withdrawals(sandbox)
    assert listed_ids(sandbox, {"minCreatedAt": second["createdAt"]}) == [third["id"], second["id"]]


def test_max_created_at_keeps_withdrawals_created_at_or_before_it(sandbox):
    # Inclusive (decision §5.12): the createdAt a client was shown is the instant to compare with.
    first, second, third = three_withdrawals(sandbox)
    assert listed_ids(sandbox, {"maxCreatedAt": second["createdAt"]}) == [second["id"], first["id"]]
    assert listed_ids(
        sandbox, {"minCreatedAt": second["createdAt"], "maxCreatedAt": second["createdAt"]}
    ) == [second["id"]]


# --- Parties ------------------------------------------------------------------------------------


def test_a_stored_recipient_can_be_paid_by_its_id(sandbox):
    sandbox.fund("1000.00")
    stored = create_recipient(sandbox, BSB_RECIPIENT)
    withdrawal = created_withdrawal(sandbox, "10.00", recipientId=stored["id"])
    assert withdrawal["recipient"]["id"] == stored["id"]
    assert withdrawal["recipient"]["displayName"] == "Mia Ng"
    assert withdrawal["recipient"]["bsb"] == "062000"


def test_an_inline_recipient_is_used_but_not_stored(sandbox):
    sandbox.fund("1000.00")
    withdrawal = created_withdrawal(sandbox, "10.00", recipient=BSB_RECIPIENT)
    assert withdrawal["recipient"]["id"] is None
    assert withdrawal["recipient"]["displayName"] == "Mia Ng"
    assert withdrawal["recipient"]["accountNo"] == "12345678"
    assert sandbox.data("query { recipients(input: {}) { id } }")["recipients"] == []


def test_a_payid_recipient_is_paid_over_npp(sandbox):
    sandbox.fund("1000.00")
    withdrawal = created_withdrawal(sandbox, "10.00", recipient=PAYID_RECIPIENT)
    assert withdrawal["recipient"]["payid"] == "pay@harbour.example"
    assert withdrawal["rail"] == "NPP"


def test_a_stored_sender_can_be_named_by_its_id(sandbox):
    sandbox.fund("1000.00")
    stored = sandbox.data(
        "mutation S($input: SenderInput!) { createSender(input: $input) { sender { id } } }",
        {"input": SENDER},
    )["createSender"]["sender"]
    withdrawal = created_withdrawal(sandbox, "10.00", senderId=stored["id"])
    assert withdrawal["sender"]["id"] == stored["id"]
    assert withdrawal["sender"]["firstName"] == "Katarina"


def test_an_inline_sender_is_reported_with_a_null_id_and_not_stored(sandbox):
    sandbox.fund("1000.00")
    withdrawal = created_withdrawal(sandbox, "10.00", sender=SENDER)
    assert withdrawal["sender"]["id"] is None
    assert withdrawal["sender"]["lastName"] == "Oreiro"
    assert sandbox.data("query { senders(input: {}) { id } }")["senders"] == []


def test_a_sub_client_can_be_the_sender(sandbox):
    sandbox.fund("1000.00")
    sub_client = create_sub_client(sandbox)
    withdrawal = created_withdrawal(sandbox, "10.00", subClientId=sub_client["id"])
    assert withdrawal["subClient"] == {"id": sub_client["id"], "fullName": "Ada Lovelace"}
    assert sandbox.withdrawal(withdrawal["id"])["status"] in {"INITIALISED", "PENDING", "CONFIRMED"}
    listed = withdrawals(sandbox, {"subClientId": sub_client["id"]})
    assert [w["id"] for w in listed] == [withdrawal["id"]]
    received = sandbox.receiver.wait_for_events(
        withdrawal["id"], ["withdrawal_initiated", "withdrawal_pending", "withdrawal_completed"]
    )
    assert received[0].json["subClient"] == {
        "id": sub_client["id"],
        "fullName": "Ada Lovelace",
        "accountNo": sub_client["accountNo"],
        "bsb": "802919",
        "externalId": "sc-ada",
    }


def test_giving_both_sender_id_and_sender_is_bad_user_input(sandbox):
    sandbox.fund("1000.00")
    stored = sandbox.data(
        "mutation S($input: SenderInput!) { createSender(input: $input) { sender { id } } }",
        {"input": SENDER},
    )["createSender"]["sender"]
    envelope = sandbox.gql(
        CREATE_WITHDRAWAL,
        {
            "input": {
                "amount": Decimal("10.00"),
                "currency": "AUD",
                "recipient": BSB_RECIPIENT,
                "senderId": stored["id"],
                "sender": SENDER,
            }
        },
    )
    assert envelope["data"]["createWithdrawal"] is None
    (error,) = envelope["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert "senderId" in error["message"] and "sender" in error["message"]
    assert withdrawals(sandbox) == []
    assert sandbox.balance() == (Decimal("1000.00"), Decimal("0.00"))
