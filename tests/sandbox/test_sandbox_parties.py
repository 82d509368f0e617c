from __future__ import annotations

import re

import pytest
from sandbox_payloads import BSB_RECIPIENT as MIA_NG
from sandbox_payloads import PAYID_RECIPIENT, SENDER, SUB_CLIENT, force, hold

# Senders, recipients and sub-clients in the sandbox: docs/flashfx.md §3.4, §3.5, §3.9, §4.6, §5.25, §5.41.

SENDER_FIELDS = (
    "id nickName firstName lastName companyName email mobile externalId address { street country }"
)
RECIPIENT_FIELDS = (
    "id nickName displayName accountIdType currency country firstName lastName companyName email"
    " bsb accountNo payid iban bic sortCode externalId"
)
SUB_CLIENT_FIELDS = (
    "id fullName legalName tradingAsName businessNumber clientType status bsb accountNo externalId"
    " primaryContact { firstName lastName email }"
)
LENA = {**SENDER, "mobile": "+49 30 1234567", "externalId": "snd-lena"}
ACME = {
    "companyName": "Acme Trading Pty Ltd",
    "businessNumber": "51824753556",
    "email": "accounts@acme.example",
    "externalId": "snd-acme",
    "address": {
        "street": "1 Martin Place",
        "suburb": "Sydney",
        "state": "NSW",
        "postcode": "2000",
        "country": "AU",
    },
}
BSB_RECIPIENT = {**MIA_NG, "externalId": "rcp-mia"}
IBAN_RECIPIENT = {
    "accountIdType": "IBAN",
    "currency": "EUR",
    "iban": "DE89370400440532013000",
    "firstName": "Jonas",
    "middleName": "K",
    "lastName": "Weber",
}
SORT_CODE_RECIPIENT = {
    "accountIdType": "SORT_CODE",
    "currency": "GBP",
    "sortCode": "601613",
    "accountNo": "31926819",
    "bic": "NWBKGB2L",
    "companyName": "Thames Tooling Ltd",
}
UNKNOWN_ID = "65f0c0ffee0000000000e001"


def create_sender(sandbox, data: dict) -> dict:
    return sandbox.data(
        "mutation S($input: SenderInput!) { createSender(input: $input)"
        f" {{ success code message sender {{ {SENDER_FIELDS} }} }} }}",
        {"input": data},
    )["createSender"]


def get_sender(sandbox, sender_id: str) -> dict | None:
    return sandbox.data(
        f"query S($id: ID) {{ sender(id: $id) {{ {SENDER_FIELDS} }} }}", {"id": sender_id}
    )["sender"]


def senders(sandbox, filters: dict) -> list[dict]:
    return sandbox.data(
        "query S($input: SenderQueryInput!) { senders(input: $input) { id } }", {"input": filters}
    )["senders"]


def create_recipient(sandbox, data: dict) -> dict:
    reply = sandbox.data(
        "mutation R($input: RecipientInput!) { createRecipient(input: $input)"
        f" {{ success code message recipient {{ {RECIPIENT_FIELDS} }} }} }}",
        {"input": data},
    )["createRecipient"]
    assert reply["success"] is True, reply
    assert reply["code"] == "SUCCESS"
    assert reply["message"] == "Recipient created"
    return reply["recipient"]


def get_recipient(sandbox, recipient_id: str) -> dict | None:
    return sandbox.data(
        f"query R($id: ID) {{ recipient(id: $id) {{ {RECIPIENT_FIELDS} }} }}", {"id": recipient_id}
    )["recipient"]


def recipients(sandbox, filters: dict) -> list[str]:
    rows = sandbox.data(
        "query R($input: RecipientQueryInput!) { recipients(input: $input) { id } }",
        {"input": filters},
    )["recipients"]
    return sorted(r["id"] for r in rows)


UPDATE_RECIPIENT = (
    "mutation U($id: ID, $input: RecipientInput!) { updateRecipient(id: $id, input: $input)"
    f" {{ success code message recipient {{ {RECIPIENT_FIELDS} }} }} }}"
)


def create_sub_client(sandbox, data: dict) -> dict:
    reply = sandbox.data(
        "mutation C($input: CreateSubClientInput!) { createSubClient(input: $input)"
        f" {{ success code message subClient {{ {SUB_CLIENT_FIELDS} }} }} }}",
        {"input": data},
    )["createSubClient"]
    assert reply["success"] is True, reply
    assert reply["code"] == "SUBCLIENT_CREATED"
    assert reply["message"] == "Sub-client was successfully created"
    return reply["subClient"]


def sub_clients(sandbox, filters: dict) -> list[str]:
    rows = sandbox.data(
        "query S($input: SubClientQueryInput) { subClients(input: $input) { id } }",
        {"input": filters},
    )["subClients"]
    return sorted(r["id"] for r in rows)


# --- Senders (§3.4) -------------------------------------------------------------------------------


def test_creating_an_individual_sender_derives_its_nick_name_from_first_and_last_name(sandbox):
    reply = create_sender(sandbox, LENA)
    assert reply["success"] is True
    assert reply["code"] == "CREATED"
    assert reply["message"] == "New sender created"
    sender = reply["sender"]
    assert re.fullmatch(r"[0-9a-f]{24}", sender["id"])
    assert sender["nickName"] == "LenaFische"
    assert sender["firstName"] == "Lena"
    assert get_sender(sandbox, sender["id"]) == sender


def test_creating_a_company_sender_derives_its_nick_name_from_the_company_name(sandbox):
    sender = create_sender(sandbox, ACME)["sender"]
    assert sender["nickName"] == "Acme Tradi"
    assert sender["companyName"] == "Acme Trading Pty Ltd"


def test_senders_can_be_filtered_by_email_and_external_id(sandbox):
    lena = create_sender(sandbox, LENA)["sender"]
    acme = create_sender(sandbox, ACME)["sender"]
    assert senders(sandbox, {"email": "lena@example.de"}) == [{"id": lena["id"]}]
    assert senders(sandbox, {"externalId": "snd-acme"}) == [{"id": acme["id"]}]
    assert senders(sandbox, {"email": "nobody@example.com"}) == []
    assert {s["id"] for s in senders(sandbox, {})} == {lena["id"], acme["id"]}


def test_updating_a_sender_replies_updated_and_stores_the_change(sandbox):
    sender = create_sender(sandbox, LENA)["sender"]
    reply = sandbox.data(
        "mutation U($id: ID, $input: SenderInput!) { updateSender(id: $id, input: $input)"
        f" {{ success code message sender {{ {SENDER_FIELDS} }} }} }}",
        {"id": sender["id"], "input": {**LENA, "email": "lena.f@example.de"}},
    )["updateSender"]
    assert reply["success"] is True
    assert reply["code"] == "UPDATED"
    assert reply["message"] == f"Sender {sender['id']} updated."
    assert reply["sender"]["email"] == "lena.f@example.de"
    assert get_sender(sandbox, sender["id"])["email"] == "lena.f@example.de"
    assert get_sender(sandbox, sender["id"])["nickName"] == "LenaFische"


def test_deleting_a_sender_replies_success_and_it_is_gone(sandbox):
    sender = create_sender(sandbox, LENA)["sender"]
    reply = sandbox.data(
        "mutation D($id: ID) { deleteSender(id: $id) { success code message sender { id } } }",
        {"id": sender["id"]},
    )["deleteSender"]
    assert reply["success"] is True
    assert reply["code"] == "SUCCESS"
    assert reply["message"] == "Sender deleted"
    assert get_sender(sandbox, sender["id"]) is None
    assert senders(sandbox, {}) == []


def test_updating_or_deleting_an_unknown_sender_is_not_found(sandbox):
    update = sandbox.data(
        "mutation U($id: ID, $input: SenderInput!) { updateSender(id: $id, input: $input)"
        " { success code sender { id } } }",
        {"id": UNKNOWN_ID, "input": LENA},
    )["updateSender"]
    delete = sandbox.data(
        "mutation D($id: ID) { deleteSender(id: $id) { success code sender { id } } }",
        {"id": UNKNOWN_ID},
    )["deleteSender"]
    for reply in (update, delete):
        assert reply["success"] is False
        assert reply["code"] == "NOT_FOUND"
        assert reply["sender"] is None


# --- Recipients (§3.5) ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "display_name", "country", "nick_name"),
    [
        (BSB_RECIPIENT, "Mia Ng", "AU", "MiaNg"),
        (PAYID_RECIPIENT, "Harbour Supplies Pty Ltd", "AU", "Harbour Su"),
        (IBAN_RECIPIENT, "Jonas K Weber", "DE", "JonasWeber"),
        (SORT_CODE_RECIPIENT, "Thames Tooling Ltd", "GB", "Thames Too"),
    ],
    ids=["BSB", "PAYID", "IBAN", "SORT_CODE"],
)
def test_creating_a_recipient_derives_display_name_country_and_nick_name(
    sandbox, data, display_name, country, nick_name
):
    recipient = create_recipient(sandbox, data)
    assert recipient["accountIdType"] == data["accountIdType"]
    assert recipient["currency"] == data["currency"]
    assert recipient["displayName"] == display_name
    assert recipient["country"] == country
    assert recipient["nickName"] == nick_name
    assert get_recipient(sandbox, recipient["id"]) == recipient


def test_recipients_can_be_filtered_by_account_id_type_currency_and_bsb(sandbox):
    mia = create_recipient(sandbox, BSB_RECIPIENT)
    other_bsb = create_recipient(
        sandbox, {**BSB_RECIPIENT, "bsb": "083000", "accountNo": "87654321"}
    )
    harbour = create_recipient(sandbox, PAYID_RECIPIENT)
    jonas = create_recipient(sandbox, IBAN_RECIPIENT)
    thames = create_recipient(sandbox, SORT_CODE_RECIPIENT)
    assert recipients(sandbox, {"accountIdType": "BSB"}) == sorted([mia["id"], other_bsb["id"]])
    assert recipients(sandbox, {"currency": "AUD"}) == sorted(
        [mia["id"], other_bsb["id"], harbour["id"]]
    )
    assert recipients(sandbox, {"currency": "GBP"}) == [thames["id"]]
    assert recipients(sandbox, {"bsb": "062000"}) == [mia["id"]]
    assert recipients(sandbox, {"accountIdType": "IBAN", "currency": "EUR"}) == [jonas["id"]]
    assert recipients(sandbox, {"accountIdType": "IBAN", "currency": "AUD"}) == []


def test_a_recipient_account_id_type_cannot_be_changed(sandbox):
    recipient = create_recipient(sandbox, BSB_RECIPIENT)
    envelope = sandbox.gql(
        UPDATE_RECIPIENT,
        {"id": recipient["id"], "input": {"accountIdType": "PAYID", "payid": "mia@example.com"}},
    )
    assert envelope["data"]["updateRecipient"] is None
    (error,) = envelope["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert "accountIdType" in error["message"]
    assert get_recipient(sandbox, recipient["id"]) == recipient


def test_updating_other_recipient_fields_works(sandbox):
    recipient = create_recipient(sandbox, BSB_RECIPIENT)
    reply = sandbox.data(
        UPDATE_RECIPIENT,
        {"id": recipient["id"], "input": {"email": "mia@example.com", "accountNo": "99990000"}},
    )["updateRecipient"]
    assert reply["success"] is True
    assert reply["code"] == "SUCCESS"
    assert reply["message"] == "Recipient updated"
    expected = {**recipient, "email": "mia@example.com", "accountNo": "99990000"}
    assert reply["recipient"] == expected
    assert get_recipient(sandbox, recipient["id"]) == expected


def test_deleting_a_recipient_replies_success_and_it_is_gone(sandbox):
    recipient = create_recipient(sandbox, BSB_RECIPIENT)
    reply = sandbox.data(
        "mutation D($id: ID) { deleteRecipient(id: $id) { success code message recipient { id } } }",
        {"id": recipient["id"]},
    )["deleteRecipient"]
    assert reply["success"] is True
    assert reply["code"] == "SUCCESS"
    assert reply["message"] == "Recipient deleted"
    assert get_recipient(sandbox, recipient["id"]) is None
    assert recipients(sandbox, {}) == []


def test_updating_or_deleting_an_unknown_recipient_is_not_found(sandbox):
    update = sandbox.data(
        UPDATE_RECIPIENT, {"id": UNKNOWN_ID, "input": {"email": "x@example.com"}}
    )["updateRecipient"]
    delete = sandbox.data(
        "mutation D($id: ID) { deleteRecipient(id: $id) { success code recipient { id } } }",
        {"id": UNKNOWN_ID},
    )["deleteRecipient"]
    for reply in (update, delete):
        assert reply["success"] is False
        assert reply["code"] == "NOT_FOUND"
        assert reply["recipient"] is None


# --- Sub-clients (§3.9) ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("extra", "client_type", "full_name"),
    [
        ({}, "INDIVIDUAL", "Ada Lovelace"),
        ({"legalName": "Lovelace Engines Pty Ltd"}, "INDIVIDUAL", "Ada Lovelace"),
        ({"businessNumber": "51824753556"}, "INDIVIDUAL", "Ada Lovelace"),
        (
            {"legalName": "Lovelace Engines Pty Ltd", "businessNumber": "51824753556"},
            "COMPANY",
            "Lovelace Engines Pty Ltd",
        ),
        (
            {
                "legalName": "Lovelace Engines Pty Ltd",
                "businessNumber": "51824753556",
                "tradingAsName": "Analytical Engines",
            },
            "COMPANY",
            "Analytical Engines",
        ),
    ],
    ids=["person", "legalName-only", "businessNumber-only", "company", "company-trading-as"],
)
def test_a_sub_client_is_a_company_only_with_legal_name_and_business_number(
    sandbox, extra, client_type, full_name
):
    sub_client = create_sub_client(sandbox, {**SUB_CLIENT, **extra})
    assert sub_client["clientType"] == client_type
    assert sub_client["fullName"] == full_name
    assert sub_client["primaryContact"] == {
        "firstName": "Ada",
        "lastName": "Lovelace",
        "email": "ada@example.com",
    }


def test_sub_clients_get_bsb_802919_and_distinct_seven_digit_account_numbers(sandbox):
    first = create_sub_client(sandbox, SUB_CLIENT)
    second = create_sub_client(sandbox, {**SUB_CLIENT, "firstName": "Grace", "externalId": "sc-2"})
    for sub_client in (first, second):
        assert sub_client["bsb"] == "802919"
        assert re.fullmatch(r"[0-9]{7}", sub_client["accountNo"])
    assert first["accountNo"] != second["accountNo"]


def test_a_sub_client_is_initiated_then_active_with_its_webhooks(sandbox):
    sub_client = create_sub_client(sandbox, SUB_CLIENT)
    assert sub_client["status"] == "INITIATED"
    sandbox.wait_for_status("subClient", sub_client["id"], "ACTIVE")
    initiated, active = sandbox.receiver.wait_for_events(
        sub_client["id"], ["subclient_initiated", "subclient_active"]
    )
    for request, status in ((initiated, "INITIATED"), (active, "ACTIVE")):
        payload = request.json
        assert payload["id"] == sub_client["id"]
        assert payload["fullName"] == "Ada Lovelace"
        assert payload["status"] == status
        assert payload["externalId"] == "sc-ada"
        assert payload["eventScheduledAt"].endswith("Z")


def test_a_sub_client_under_review_can_fail_kyc(sandbox):
    hold(sandbox)
    sub_client = create_sub_client(sandbox, SUB_CLIENT)
    force(sandbox, "subclients", sub_client["id"], "UNAPPROVED")
    force(sandbox, "subclients", sub_client["id"], "FAILED_KYC")
    sandbox.wait_for_status("subClient", sub_client["id"], "FAILED_KYC")
    received = sandbox.receiver.wait_for_events(
        sub_client["id"], ["subclient_initiated", "subclient_unapproved", "subclient_failed_kyc"]
    )
    assert [r.json["status"] for r in received] == ["INITIATED", "UNAPPROVED", "FAILED_KYC"]


def test_an_active_sub_client_can_be_deactivated_and_activated_again(sandbox):
    sub_client = create_sub_client(sandbox, SUB_CLIENT)
    sandbox.wait_for_status("subClient", sub_client["id"], "ACTIVE")
    force(sandbox, "subclients", sub_client["id"], "DEACTIVATED")
    force(sandbox, "subclients", sub_client["id"], "ACTIVE")
    sandbox.wait_for_status("subClient", sub_client["id"], "ACTIVE")
    received = sandbox.receiver.wait_for_events(
        sub_client["id"],
        ["subclient_initiated", "subclient_active", "subclient_deactivated", "subclient_active"],
    )
    assert [r.json["status"] for r in received] == ["INITIATED", "ACTIVE", "DEACTIVATED", "ACTIVE"]


SUB_CLIENT_PATHS = {
    "INITIATED": [],
    "ACTIVE": ["ACTIVE"],
    "UNAPPROVED": ["UNAPPROVED"],
    "FAILED_KYC": ["UNAPPROVED", "FAILED_KYC"],
    "DEACTIVATED": ["ACTIVE", "DEACTIVATED"],
}


@pytest.mark.parametrize("source", list(SUB_CLIENT_PATHS))
def test_any_sub_client_can_be_disabled_with_a_disabled_webhook(sandbox, source):
    hold(sandbox)
    sub_client = create_sub_client(sandbox, SUB_CLIENT)
    for step in SUB_CLIENT_PATHS[source]:
        force(sandbox, "subclients", sub_client["id"], step)
    force(sandbox, "subclients", sub_client["id"], "DISABLED")
    sandbox.wait_for_status("subClient", sub_client["id"], "DISABLED")
    events = ["subclient_initiated"] + [
        f"subclient_{s.lower()}" for s in [*SUB_CLIENT_PATHS[source], "DISABLED"]
    ]
    received = sandbox.receiver.wait_for_events(sub_client["id"], events)
    assert received[-1].json["status"] == "DISABLED"
    assert received[-1].json["fullName"] == "Ada Lovelace"


def test_a_disabled_sub_client_cannot_be_activated_by_a_forced_move(sandbox):
    hold(sandbox)
    sub_client = create_sub_client(sandbox, SUB_CLIENT)
    force(sandbox, "subclients", sub_client["id"], "DISABLED")
    response = sandbox.advance("subclients", sub_client["id"], "ACTIVE")
    assert response.status_code == 409, response.text
    sandbox.wait_for_status("subClient", sub_client["id"], "DISABLED")


def test_sub_clients_can_be_filtered_by_status(sandbox):
    hold(sandbox)
    initiated = create_sub_client(sandbox, SUB_CLIENT)
    active = create_sub_client(sandbox, {**SUB_CLIENT, "firstName": "Grace"})
    force(sandbox, "subclients", active["id"], "ACTIVE")
    disabled = create_sub_client(sandbox, {**SUB_CLIENT, "firstName": "Edith"})
    force(sandbox, "subclients", disabled["id"], "DISABLED")
    assert sub_clients(sandbox, {"status": "INITIATED"}) == [initiated["id"]]
    assert sub_clients(sandbox, {"status": "ACTIVE"}) == [active["id"]]
    assert sub_clients(sandbox, {"status": "DISABLED"}) == [disabled["id"]]
    assert sub_clients(sandbox, {"status": "DEACTIVATED"}) == []
    assert sub_clients(sandbox, {}) == sorted([initiated["id"], active["id"], disabled["id"]])
