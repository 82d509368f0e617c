"""Input rules (docs/flashfx.md §1.4, §2.1, §2.2, §2.7; decision §5.17): every bad field is BAD_USER_INPUT
naming the field, and a refused request stores nothing and moves no money."""

from __future__ import annotations

import copy
import re
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sandbox_payloads import BSB_RECIPIENT, PAYID_RECIPIENT, SENDER, WITHDRAWAL

MISSING = object()  # in a patch: leave this key out of the input


def years_ago(years: int, *, days: int = 0) -> str:
    """A date of birth `years` years (and `days` days) before today, UTC, as YYYY-MM-DD."""
    today = datetime.now(UTC).date()
    try:
        born = today.replace(year=today.year - years)
    except ValueError:  # 29 February
        born = date(today.year - years, 2, 28)
    return (born - timedelta(days=days)).isoformat()


def patched(base: dict, changes: dict) -> dict:
    """A deep copy of base with dotted paths set (or removed with MISSING), in order."""
    result = copy.deepcopy(base)
    for path, value in changes.items():
        *parents, leaf = path.split(".")
        node = result
        for key in parents:
            node = node.setdefault(key, {})
        if value is MISSING:
            node.pop(leaf, None)
        else:
            node[leaf] = copy.deepcopy(value)
    return result


# --- Valid inputs, which each case spoils in one place -------------------------------------------
# BSB_RECIPIENT, PAYID_RECIPIENT, SENDER and WITHDRAWAL come from sandbox_payloads.

AU_ADDRESS = {
    "streetNo": "1",
    "street": "Martin Place",
    "suburb": "Sydney",
    "state": "NSW",
    "postcode": "2000",
    "country": "AU",
}
RECIPIENT = {**BSB_RECIPIENT, "email": "mia@example.com", "address": AU_ADDRESS}
SUB_CLIENT = {
    "firstName": "Ava",
    "lastName": "Brown",
    "dob": "1985-06-15",
    "email": "ava@example.com",
    "mobile": "+61422832849",
    "address": AU_ADDRESS,
    "idDoc": {"type": "driverLicence", "docNumber": "12345678", "country": "AU"},
    "externalId": "sc-1",
}

OPERATIONS = {
    "createWithdrawal": (
        "mutation M($input: CreateWithdrawalInput!) {"
        " createWithdrawal(input: $input) { success code message withdrawal { id } } }",
        WITHDRAWAL,
    ),
    "createSender": (
        "mutation M($input: SenderInput!) { createSender(input: $input) { success code message sender { id } } }",
        SENDER,
    ),
    "createRecipient": (
        "mutation M($input: RecipientInput!) {"
        " createRecipient(input: $input) { success code message recipient { id } } }",
        RECIPIENT,
    ),
    "createSubClient": (
        "mutation M($input: CreateSubClientInput!) {"
        " createSubClient(input: $input) { success code message subClient { id } } }",
        SUB_CLIENT,
    ),
}
STATE = (
    "{ withdrawals { id } senders(input: {}) { id } recipients(input: {}) { id } subClients { id }"
    " deposits { id status refundAmount } balances { currency cleared pending } }"
)


def state(sandbox) -> dict:
    """Everything a create could have stored, and the money."""
    return sandbox.data(STATE)


def assert_bad_user_input(envelope: dict, field: str) -> None:
    errors = envelope.get("errors")
    assert errors, f"accepted, but {field} is invalid: {envelope.get('data')}"
    error = errors[0]
    assert error["extensions"]["code"] == "BAD_USER_INPUT", error
    # The field by its full path, not a longer one that starts the same way.
    assert re.search(rf"(?<![\w.]){re.escape(field)}(?![\w.\[])", error["message"]), error
    assert error["extensions"].get("field") == field, error


def sender_with(**changes: Any) -> dict:
    """An inline sender on the payout, spoiled where asked."""
    return {"sender": SENDER, **{f"sender.{k}": v for k, v in changes.items()}}


W, S, R, C = "createWithdrawal", "createSender", "createRecipient", "createSubClient"
NO_NAMES = {"firstName": MISSING, "lastName": MISSING}

CASES = [
    # createWithdrawal: the payout itself
    pytest.param(W, {"amount": 0}, "input.amount", id="W-amount-zero"),
    pytest.param(W, {"amount": -5}, "input.amount", id="W-amount-negative"),
    pytest.param(W, {"amount": 1.001}, "input.amount", id="W-amount-three-decimals"),
    pytest.param(W, {"amount": MISSING}, "input.amount", id="W-amount-missing"),
    pytest.param(W, {"currency": MISSING}, "input.currency", id="W-currency-missing"),
    pytest.param(W, {"externalReference": "Zahlung f\u00fcr Mia"}, "input.externalReference", id="W-reference-non-ascii"),
    pytest.param(W, {"externalReference": "R" * 19}, "input.externalReference", id="W-reference-19-for-bsb"),
    pytest.param(W, {"recipient": PAYID_RECIPIENT, "externalReference": "R" * 281}, "input.externalReference", id="W-reference-281-for-payid"),
    pytest.param(W, {"externalReference": "N/A"}, "input.externalReference", id="W-reference-placeholder-N/A"),
    pytest.param(W, {"externalId": "po-\u00e9778"}, "input.externalId", id="W-externalId-non-ascii"),
    pytest.param(W, {"externalId": "null"}, "input.externalId", id="W-externalId-placeholder-null"),
    # createWithdrawal: the inline recipient
    pytest.param(W, {"recipient.lastName": "NIL"}, "input.recipient.lastName", id="W-recipient-placeholder-NIL"),
    pytest.param(W, {"recipient.bsb": "12345"}, "input.recipient.bsb", id="W-bsb-5-digits"),
    pytest.param(W, {"recipient.bsb": "12345a"}, "input.recipient.bsb", id="W-bsb-with-letter"),
    pytest.param(W, {"recipient.bsb": "0620001"}, "input.recipient.bsb", id="W-bsb-7-digits"),
    pytest.param(W, {"recipient.bsb": MISSING}, "input.recipient.bsb", id="W-bsb-missing"),
    pytest.param(W, {"recipient.accountNo": "123"}, "input.recipient.accountNo", id="W-accountNo-3-digits"),
    pytest.param(W, {"recipient.accountNo": MISSING}, "input.recipient.accountNo", id="W-accountNo-missing"),
    pytest.param(W, {"recipient.firstName": "Mia2"}, "input.recipient.firstName", id="W-firstName-digits"),
    pytest.param(W, {"recipient.firstName": "Ben.eu"}, "input.recipient.firstName", id="W-firstName-domain-like"),
    pytest.param(W, {"recipient.firstName": MISSING}, "input.recipient.firstName", id="W-firstName-missing"),
    pytest.param(W, {"recipient.lastName": "N" * 76}, "input.recipient.lastName", id="W-lastName-76"),
    pytest.param(W, {"recipient.lastName": "x.com"}, "input.recipient.lastName", id="W-lastName-domain-like"),
    pytest.param(W, {**{f"recipient.{k}": v for k, v in NO_NAMES.items()}, "recipient.companyName": "A"}, "input.recipient.companyName", id="W-companyName-1-char"),
    pytest.param(W, {**{f"recipient.{k}": v for k, v in NO_NAMES.items()}, "recipient.companyName": "Acme <Pty> Ltd"}, "input.recipient.companyName", id="W-companyName-angle-bracket"),
    pytest.param(W, {"recipient.email": "not-an-email"}, "input.recipient.email", id="W-recipient-email"),
    pytest.param(W, {"recipient": {"accountIdType": "IBAN", "currency": "EUR", "bic": "DEUTDEFF", "firstName": "Mia", "lastName": "Ng"}}, "input.recipient.iban", id="W-iban-recipient-without-iban"),
    pytest.param(W, {"recipient": {"accountIdType": "ACC_NO", "currency": "AED", "accountNo": "12345678", "firstName": "Mia", "lastName": "Ng"}}, "input.recipient.bic", id="W-acc-no-recipient-without-bic"),
    pytest.param(W, {"recipient": {**PAYID_RECIPIENT, "payid": "not a payid"}}, "input.recipient.payid", id="W-payid-malformed"),
    pytest.param(W, {"recipient": PAYID_RECIPIENT, "recipient.payid": MISSING}, "input.recipient.payid", id="W-payid-missing"),
    pytest.param(W, {"recipient": MISSING}, "input.recipientId", id="W-no-recipient"),
    pytest.param(W, {"recipient": MISSING, "recipientId": "123"}, "input.recipientId", id="W-recipientId-malformed"),
    # createWithdrawal: the inline sender and other references
    pytest.param(W, sender_with(dob=years_ago(18, days=-1)), "input.sender.dob", id="W-sender-dob-under-18"),
    pytest.param(W, sender_with(dob="1899-12-31"), "input.sender.dob", id="W-sender-dob-before-1900"),
    pytest.param(W, sender_with(dob="03/02/1991"), "input.sender.dob", id="W-sender-dob-not-iso"),
    pytest.param(W, sender_with(dob="1991-02-30"), "input.sender.dob", id="W-sender-dob-not-a-date"),
    pytest.param(W, sender_with(email="not-an-email"), "input.sender.email", id="W-sender-email"),
    pytest.param(W, sender_with(mobile="12345"), "input.sender.mobile", id="W-sender-mobile"),
    pytest.param(W, sender_with(firstName="Lena3"), "input.sender.firstName", id="W-sender-firstName-digits"),
    pytest.param(W, sender_with(lastName=MISSING), "input.sender.lastName", id="W-sender-lastName-missing"),
    pytest.param(W, sender_with(address={"country": "DE"}), "input.sender.address.street", id="W-sender-address-without-street"),
    pytest.param(W, {"senderId": "123"}, "input.senderId", id="W-senderId-malformed"),
    pytest.param(W, {"subClientId": "123"}, "input.subClientId", id="W-subClientId-malformed"),
    # createSender
    pytest.param(S, {"firstName": "Lena3"}, "input.firstName", id="S-firstName-digits"),
    pytest.param(S, {"firstName": "Ben.eu"}, "input.firstName", id="S-firstName-domain-like"),
    pytest.param(S, {"firstName": MISSING}, "input.firstName", id="S-firstName-missing"),
    pytest.param(S, {"middleName": "J4"}, "input.middleName", id="S-middleName-digit"),
    pytest.param(S, {"middleName": "N/A"}, "input.middleName", id="S-middleName-placeholder"),
    pytest.param(S, {"lastName": "F" * 76}, "input.lastName", id="S-lastName-76"),
    pytest.param(S, {"lastName": "M\u00fcller"}, "input.lastName", id="S-lastName-non-ascii"),
    pytest.param(S, {"lastName": MISSING}, "input.lastName", id="S-lastName-missing"),
    pytest.param(S, {**NO_NAMES, "companyName": "A"}, "input.companyName", id="S-companyName-1-char"),
    pytest.param(S, {**NO_NAMES, "companyName": "Acme > Co"}, "input.companyName", id="S-companyName-gt"),
    pytest.param(S, {**NO_NAMES, "companyName": "Acme Pty Ltd", "legalName": "Acme=Pty"}, "input.legalName", id="S-legalName-equals"),
    pytest.param(S, {**NO_NAMES, "companyName": "Acme Pty Ltd", "tradingAsName": "Z"}, "input.tradingAsName", id="S-tradingAsName-1-char"),
    pytest.param(S, {"dob": years_ago(18, days=-1)}, "input.dob", id="S-dob-under-18"),
    pytest.param(S, {"dob": "1899-12-31"}, "input.dob", id="S-dob-before-1900"),
    pytest.param(S, {"dob": "03/02/1991"}, "input.dob", id="S-dob-not-iso"),
    pytest.param(S, {"email": "not-an-email"}, "input.email", id="S-email"),
    pytest.param(S, {"email": "lena@example"}, "input.email", id="S-email-without-domain"),
    pytest.param(S, {"mobile": "12345"}, "input.mobile", id="S-mobile-short"),
    pytest.param(S, {"mobile": "0422832849"}, "input.mobile", id="S-mobile-not-international"),
    pytest.param(S, {"address.street": MISSING}, "input.address.street", id="S-address-without-street"),
    pytest.param(S, {"address.country": MISSING}, "input.address.country", id="S-address-without-country"),
    pytest.param(S, {"address.suburb": "null"}, "input.address.suburb", id="S-address-placeholder"),
    pytest.param(S, {"idDoc.docNumber": MISSING}, "input.idDoc.docNumber", id="S-idDoc-without-number"),
    pytest.param(S, {"idDoc.expiryDate": "2030/01/01"}, "input.idDoc.expiryDate", id="S-idDoc-expiry-not-iso"),
    pytest.param(S, {"idDoc.type": MISSING}, "input.idDoc.type", id="S-idDoc-without-type"),
    pytest.param(S, {"middleName": "M" * 76}, "input.middleName", id="S-middleName-76"),
    pytest.param(S, {"externalId": "s\u00f8-1"}, "input.externalId", id="S-externalId-non-ascii"),
    # createRecipient
    pytest.param(R, {"bsb": "12345"}, "input.bsb", id="R-bsb-5-digits"),
    pytest.param(R, {"bsb": "12345a"}, "input.bsb", id="R-bsb-with-letter"),
    pytest.param(R, {"accountNo": "123"}, "input.accountNo", id="R-accountNo-3-digits"),
    pytest.param(R, {"accountNo": MISSING}, "input.accountNo", id="R-accountNo-missing"),
    pytest.param(R, {"accountIdType": MISSING}, "input.accountIdType", id="R-accountIdType-missing"),
    pytest.param(R, {"currency": MISSING}, "input.currency", id="R-currency-missing"),
    pytest.param(R, {"accountIdType": "IBAN", "currency": "EUR", "bsb": MISSING, "accountNo": MISSING}, "input.iban", id="R-iban-missing"),
    pytest.param(R, {"accountIdType": "IBAN", "currency": "EUR", "bsb": MISSING, "accountNo": MISSING, "iban": "DE00"}, "input.iban", id="R-iban-malformed"),
    pytest.param(R, {"accountIdType": "IBAN", "currency": "GBP", "bsb": MISSING, "accountNo": MISSING, "iban": "GB29NWBK60161331926819", "bic": "NWBK"}, "input.bic", id="R-bic-malformed"),
    pytest.param(R, {"accountIdType": "ACC_NO", "currency": "AED", "bsb": MISSING}, "input.bic", id="R-acc-no-without-bic"),
    pytest.param(R, {"accountIdType": "ABA", "currency": "USD", "bsb": MISSING, "aba": "026009593"}, "input.bic", id="R-aba-without-bic"),
    pytest.param(R, {"accountIdType": "SORT_CODE", "currency": "GBP", "bsb": MISSING, "bic": "NWBKGB2L"}, "input.sortCode", id="R-sort-code-missing"),
    pytest.param(R, {"firstName": "Ben.eu"}, "input.firstName", id="R-firstName-domain-like"),
    pytest.param(R, {"firstName": "Zo\u00eb"}, "input.firstName", id="R-firstName-non-ascii"),
    pytest.param(R, {"lastName": "N" * 76}, "input.lastName", id="R-lastName-76"),
    pytest.param(R, {**NO_NAMES, "companyName": "A"}, "input.companyName", id="R-companyName-1-char"),
    pytest.param(R, {**NO_NAMES, "companyName": "<script>"}, "input.companyName", id="R-companyName-angle-bracket"),
    pytest.param(R, {"email": "not-an-email"}, "input.email", id="R-email"),
    pytest.param(R, {"mobile": "12345"}, "input.mobile", id="R-mobile"),
    pytest.param(R, {"dob": years_ago(18, days=-1)}, "input.dob", id="R-dob-under-18"),
    pytest.param(R, {"address.street": MISSING}, "input.address.street", id="R-address-without-street"),
    pytest.param(R, {"nickName": "nil"}, "input.nickName", id="R-nickName-placeholder"),
    # createSubClient
    *[
        pytest.param(C, {f"address.{part}": MISSING}, f"input.address.{part}", id=f"C-address-without-{part}")
        for part in ("street", "suburb", "state", "postcode", "country")
    ],
    pytest.param(C, {"address": MISSING}, "input.address", id="C-address-missing"),
    pytest.param(C, {"dob": years_ago(70)}, "input.dob", id="C-dob-over-65"),
    pytest.param(C, {"dob": years_ago(65)}, "input.dob", id="C-dob-65-today"),
    pytest.param(C, {"dob": years_ago(18, days=-1)}, "input.dob", id="C-dob-under-18"),
    pytest.param(C, {"firstName": MISSING}, "input.firstName", id="C-firstName-missing"),
    pytest.param(C, {"lastName": "Brown7"}, "input.lastName", id="C-lastName-digit"),
    pytest.param(C, {"email": "not-an-email"}, "input.email", id="C-email"),
    pytest.param(C, {"mobile": "12345"}, "input.mobile", id="C-mobile"),
    pytest.param(C, {"legalName": "Acme <Pty>", "businessNumber": "51824753556"}, "input.legalName", id="C-legalName-angle-bracket"),
    pytest.param(C, {"postalAddress": {"suburb": "Sydney", "country": "AU"}}, "input.postalAddress.street", id="C-postalAddress-without-street"),
    pytest.param(C, {"idDoc.docNumber": MISSING}, "input.idDoc.docNumber", id="C-idDoc-without-number"),
    pytest.param(C, {"externalId": "N/A"}, "input.externalId", id="C-externalId-placeholder"),
]  # fmt: skip


@pytest.mark.parametrize(("operation", "changes", "field"), CASES)
def test_bad_input_is_bad_user_input_naming_the_field_and_stores_nothing(
    sandbox, operation, changes, field
):
    if operation == W:
        sandbox.fund("1000.00")
    before = state(sandbox)
    document, base = OPERATIONS[operation]
    envelope = sandbox.gql(document, {"input": patched(base, changes)})
    assert_bad_user_input(envelope, field)
    assert state(sandbox) == before


@pytest.mark.parametrize("operation", OPERATIONS)
def test_the_valid_inputs_the_cases_start_from_are_accepted(sandbox, operation):
    if operation == W:
        sandbox.fund("1000.00")
    document, base = OPERATIONS[operation]
    reply = sandbox.data(document, {"input": base})[operation]
    assert reply["success"] is True, reply


@pytest.mark.parametrize(
    ("operation", "changes"),
    [
        pytest.param(W, {"recipient.firstName": "M"}, id="W-inline-recipient"),
        pytest.param(W, sender_with(firstName="L"), id="W-inline-sender"),
        pytest.param(S, {"firstName": "L"}, id="S"),
        pytest.param(R, {"firstName": "M"}, id="R"),
        pytest.param(C, {"firstName": "A"}, id="C"),
    ],
)
def test_a_single_character_first_name_an_initial_is_accepted(sandbox, operation, changes):
    if operation == W:
        sandbox.fund("1000.00")
    document, base = OPERATIONS[operation]
    reply = sandbox.data(document, {"input": patched(base, changes)})[operation]
    assert reply["success"] is True, reply


@pytest.mark.parametrize(
    ("operation", "changes"),
    [
        pytest.param(W, {"externalReference": "R" * 18}, id="W-reference-18-for-bsb"),
        pytest.param(W, {"recipient": PAYID_RECIPIENT, "externalReference": "R" * 280}, id="W-reference-280-for-payid"),
        pytest.param(W, {"amount": 0.01}, id="W-amount-one-cent"),
        pytest.param(W, {"amount": 12.5}, id="W-amount-one-decimal"),
        pytest.param(W, {"recipient.accountNo": "1234"}, id="W-accountNo-4-digits"),
        pytest.param(W, {"recipient.accountNo": "AB12CD34"}, id="W-accountNo-letters"),
        pytest.param(W, {"recipient.lastName": "L" * 75}, id="W-lastName-75"),
        pytest.param(W, {"recipient.lastName": "O'Brien-Smith"}, id="W-lastName-apostrophe-hyphen"),
        pytest.param(S, {**NO_NAMES, "companyName": "AB"}, id="S-companyName-2-chars"),
        pytest.param(S, {"mobile": "0049301234567"}, id="S-mobile-leading-00"),
        pytest.param(S, {"dob": years_ago(18)}, id="S-dob-18-today"),
        pytest.param(R, {"accountIdType": "IBAN", "currency": "GBP", "bsb": MISSING, "accountNo": MISSING, "iban": "GB29NWBK60161331926819"}, id="R-iban-without-bic"),
        pytest.param(R, {"accountIdType": "ACC_NO", "currency": "AED", "bsb": MISSING, "bic": "EBILAEAD"}, id="R-acc-no-with-bic"),
        pytest.param(C, {"dob": years_ago(65, days=-1)}, id="C-dob-64"),
    ],
)  # fmt: skip
def test_values_at_the_edge_of_the_rules_are_accepted(sandbox, operation, changes):
    if operation == W:
        sandbox.fund("1000.00")
    document, base = OPERATIONS[operation]
    reply = sandbox.data(document, {"input": patched(base, changes)})[operation]
    assert reply["success"] is True, reply


# --- refundDeposit ------------------------------------------------------------------------------

REFUND = (
    "mutation R($id: ID, $input: RefundDepositInput) {"
    " refundDeposit(id: $id, input: $input) { success code message } }"
)


@pytest.mark.parametrize(
    ("amount", "field"),
    [
        pytest.param(0, "input.amount", id="zero"),
        pytest.param(-10, "input.amount", id="negative"),
        pytest.param(1.001, "input.amount", id="three-decimals"),
    ],
)
def test_refund_deposit_with_a_bad_amount_is_bad_user_input_and_refunds_nothing(
    sandbox, amount, field
):
    deposit = sandbox.fund("100.00")
    before = state(sandbox)
    envelope = sandbox.gql(
        REFUND, {"id": deposit["id"], "input": {"amount": amount, "reason": "paid twice"}}
    )
    assert_bad_user_input(envelope, field)
    assert state(sandbox) == before
    assert sandbox.deposit_status(deposit["id"]) == "CONFIRMED"
    assert sandbox.deliveries(event="deposit_refunding") == []


def test_refund_deposit_with_a_non_ascii_reason_is_bad_user_input(sandbox):
    deposit = sandbox.fund("100.00")
    before = state(sandbox)
    envelope = sandbox.gql(
        REFUND,
        {"id": deposit["id"], "input": {"amount": 10, "reason": "doppelt gezahlt \u2013 bitte"}},
    )
    assert_bad_user_input(envelope, "input.reason")
    assert state(sandbox) == before


@pytest.mark.parametrize("bad_id", ["123", None])
def test_refund_deposit_with_a_malformed_or_missing_id_is_bad_user_input(sandbox, bad_id):
    sandbox.fund("100.00")
    before = state(sandbox)
    assert_bad_user_input(sandbox.gql(REFUND, {"id": bad_id, "input": {"amount": 10}}), "id")
    assert state(sandbox) == before


# --- Malformed ids (§2.1) -----------------------------------------------------------------------

MALFORMED_IDS = [
    "123",
    "65F0C0FFEE0000000000AA01",  # uppercase hex
    "65f0c0ffee0000000000aa0",  # 23 characters
    "65f0c0ffee0000000000aa0g",  # not hex
    "",
    None,  # missing: `id: ID` is nullable in the SDL (decision §5.2), the resolver requires it
]
SINGLE_OBJECT_QUERIES = ["deposit", "withdrawal", "payment", "sender", "recipient", "subClient"]


@pytest.mark.parametrize("query", SINGLE_OBJECT_QUERIES)
def test_a_malformed_or_missing_id_on_a_single_object_query_is_bad_user_input(sandbox, query):
    for bad_id in MALFORMED_IDS:
        envelope = sandbox.gql(f"query Q($id: ID) {{ {query}(id: $id) {{ id }} }}", {"id": bad_id})
        try:
            assert_bad_user_input(envelope, "id")
        except AssertionError as failure:
            raise AssertionError(f"{query}(id: {bad_id!r}): {failure}") from None


def test_a_well_formed_unknown_id_is_null_not_an_error(sandbox):
    for query in SINGLE_OBJECT_QUERIES:
        data = sandbox.data(
            f"query Q($id: ID) {{ {query}(id: $id) {{ id }} }}", {"id": "65f0c0ffee0000000000aa01"}
        )
        assert data == {query: None}


@pytest.mark.parametrize(
    "document",
    [
        pytest.param('mutation { updateSender(id: "123", input: {firstName: "Lena", lastName: "Fischer"}) { success } }', id="updateSender"),
        pytest.param('mutation { deleteSender(id: "123") { success } }', id="deleteSender"),
        pytest.param('mutation { updateRecipient(id: "123", input: {firstName: "Mia"}) { success } }', id="updateRecipient"),
        pytest.param('mutation { deleteRecipient(id: "123") { success } }', id="deleteRecipient"),
    ],
)  # fmt: skip
def test_a_malformed_id_on_an_update_or_delete_is_bad_user_input(sandbox, document):
    assert_bad_user_input(sandbox.gql(document), "id")


# --- Updates refuse bad input the same way and leave the stored party as it was ------------------


def test_update_sender_with_a_bad_field_is_bad_user_input_and_changes_nothing(sandbox):
    document, base = OPERATIONS[S]
    sender_id = sandbox.data(document, {"input": base})[S]["sender"]["id"]
    read = "query Q($id: ID) { sender(id: $id) { email mobile } }"
    before = sandbox.data(read, {"id": sender_id})
    envelope = sandbox.gql(
        "mutation U($id: ID, $input: SenderInput!) { updateSender(id: $id, input: $input) { success } }",
        {"id": sender_id, "input": {**base, "email": "not-an-email"}},
    )
    assert_bad_user_input(envelope, "input.email")
    assert sandbox.data(read, {"id": sender_id}) == before


def test_update_recipient_cannot_change_the_account_id_type(sandbox):
    document, base = OPERATIONS[R]
    recipient_id = sandbox.data(document, {"input": base})[R]["recipient"]["id"]
    read = "query Q($id: ID) { recipient(id: $id) { accountIdType bsb accountNo payid } }"
    before = sandbox.data(read, {"id": recipient_id})
    envelope = sandbox.gql(
        "mutation U($id: ID, $input: RecipientInput!) { updateRecipient(id: $id, input: $input) { success } }",
        {"id": recipient_id, "input": {"accountIdType": "PAYID", "payid": "mia@example.com"}},
    )
    assert_bad_user_input(envelope, "input.accountIdType")
    assert sandbox.data(read, {"id": recipient_id}) == before


def test_update_recipient_with_a_bad_bsb_is_bad_user_input_and_changes_nothing(sandbox):
    document, base = OPERATIONS[R]
    recipient_id = sandbox.data(document, {"input": base})[R]["recipient"]["id"]
    read = "query Q($id: ID) { recipient(id: $id) { bsb accountNo } }"
    before = sandbox.data(read, {"id": recipient_id})
    envelope = sandbox.gql(
        "mutation U($id: ID, $input: RecipientInput!) { updateRecipient(id: $id, input: $input) { success } }",
        {"id": recipient_id, "input": {"bsb": "12345"}},
    )
    assert_bad_user_input(envelope, "input.bsb")
    assert sandbox.data(read, {"id": recipient_id}) == before
