from __future__ import annotations

from decimal import Decimal
from urllib.parse import parse_qs, urlsplit

import pytest
from sandbox_payloads import BSB_RECIPIENT, created_withdrawal

# The sandbox's own controls: reset and seed, run-time config, forced moves, the HTML console.

ZERO = Decimal("0.00")
UNKNOWN_ID = "65f0c0ffee0000000000f001"
EVERYTHING = (
    "query { balances { currency cleared pending }"
    " deposits(input: {}) { id status amount }"
    " withdrawals(input: {}) { id }"
    " payments(input: {}) { id }"
    " senders(input: {}) { id }"
    " recipients(input: {}) { id currency country }"
    " subClients(input: {}) { id } }"
)


def everything(sandbox) -> dict:
    return sandbox.data(EVERYTHING)


def reset(sandbox, **payload) -> dict:
    response = sandbox.control("reset", payload)
    assert response.status_code == 200, response.text
    return response.json()


# --- Reset and seed --------------------------------------------------------------------------------


def test_reset_empties_balances_and_every_list(sandbox):
    sandbox.fund("500.00")
    created_withdrawal(sandbox, "10.00")
    sandbox.data(
        "mutation S($input: SenderInput!) { createSender(input: $input) { success } }",
        {"input": {"firstName": "Lena", "lastName": "Fischer"}},
    )
    sandbox.data(
        "mutation R($input: RecipientInput!) { createRecipient(input: $input) { success } }",
        {"input": BSB_RECIPIENT},
    )
    before = everything(sandbox)
    assert before["deposits"] and before["withdrawals"] and before["senders"]
    assert before["recipients"] and before["balances"]

    assert reset(sandbox) == {"status": "reset", "seeded": False}

    assert everything(sandbox) == {
        "balances": [],
        "deposits": [],
        "withdrawals": [],
        "payments": [],
        "senders": [],
        "recipients": [],
        "subClients": [],
    }
    assert sandbox.balance() == (ZERO, ZERO)


def test_reset_puts_the_run_time_config_back_to_its_defaults(sandbox):
    defaults = sandbox.control("config").json()
    sandbox.configure(step_delay_seconds=3600, withdrawal_fee="2.50")
    reset(sandbox)
    assert sandbox.control("config").json() == defaults


def test_reset_with_seed_loads_the_demo_data(sandbox):
    assert reset(sandbox, seed=True) == {"status": "reset", "seeded": True}
    data = everything(sandbox)
    assert len(data["senders"]) == 2
    assert len(data["recipients"]) == 3
    assert [r for r in data["recipients"] if r["currency"] != "AUD" and r["country"] != "AU"]
    assert len(data["deposits"]) == 4
    cleared, _ = sandbox.balance()
    assert cleared > 0


def test_seeding_again_does_not_duplicate_the_demo_data(sandbox):
    reset(sandbox, seed=True)
    first = everything(sandbox)
    reset(sandbox, seed=True)
    second = everything(sandbox)
    for name in ("senders", "recipients", "deposits", "withdrawals", "payments", "subClients"):
        assert len(second[name]) == len(first[name]), name
    assert len(second["senders"]) == 2
    assert len(second["recipients"]) == 3
    assert len(second["deposits"]) == 4
    assert sorted(d["amount"] for d in second["deposits"]) == sorted(
        d["amount"] for d in first["deposits"]
    )


# --- Config ------------------------------------------------------------------------------------------


def test_config_can_be_read_and_changed(sandbox):
    response = sandbox.control("config")
    assert response.status_code == 200
    config = response.json()
    assert config["withdrawal_fee"] == "1.00"
    assert config["step_delay_seconds"] == 0
    assert "api_password" not in config

    changed = sandbox.configure(withdrawal_fee="2.50")
    assert changed["withdrawal_fee"] == "2.50"
    assert sandbox.control("config").json()["withdrawal_fee"] == "2.50"
    sandbox.fund("100.00")
    assert created_withdrawal(sandbox, "10.00")["totalFee"] == Decimal("2.5")
    assert sandbox.balance() == (Decimal("87.50"), ZERO)


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"no_such_setting": 1}, "no_such_setting"),
        ({"step_delay_seconds": "fast"}, "step_delay_seconds"),
        ({"withdrawal_fee": 2}, "withdrawal_fee"),
    ],
    ids=["unknown-setting", "string-for-number", "number-for-string"],
)
def test_config_refuses_unknown_settings_and_wrong_types(sandbox, change, named):
    before = sandbox.control("config").json()
    response = sandbox.control("config", change)
    assert response.status_code == 400, response.text
    assert named in response.json()["error"]
    assert sandbox.control("config").json() == before


# --- Forced moves --------------------------------------------------------------------------------


def test_advancing_an_unknown_kind_is_404_with_the_kinds_named(sandbox):
    response = sandbox.advance("widgets", UNKNOWN_ID, "CONFIRMED")
    assert response.status_code == 404, response.text
    error = response.json()["error"]
    assert "widgets" in error
    for kind in ("deposits", "withdrawals", "payments", "subclients"):
        assert kind in error


@pytest.mark.parametrize("kind", ["deposits", "withdrawals", "payments", "subclients"])
def test_advancing_an_unknown_id_is_404_naming_it(sandbox, kind):
    response = sandbox.advance(kind, UNKNOWN_ID, "CANCELLED")
    assert response.status_code == 404, response.text
    assert UNKNOWN_ID in response.json()["error"]


def test_advancing_without_a_target_status_is_400(sandbox):
    sandbox.configure(step_delay_seconds=3600)
    deposit = sandbox.receive_deposit("10.00")
    response = sandbox.control(f"deposits/{deposit['id']}/advance", {})
    assert response.status_code == 400, response.text
    assert response.json()["field"] == "to"
    assert sandbox.deposit_status(deposit["id"]) == "INITIALISED"


def test_advancing_with_an_option_the_move_does_not_take_is_400(sandbox):
    sandbox.configure(step_delay_seconds=3600)
    deposit = sandbox.receive_deposit("10.00")
    response = sandbox.advance("deposits", deposit["id"], "CONFIRMED", rejectCode="EXPIRED")
    assert response.status_code == 400, response.text
    assert response.json()["field"] == "rejectCode"
    assert sandbox.deposit_status(deposit["id"]) == "INITIALISED"
    assert sandbox.balance() == (ZERO, Decimal("10.00"))


def test_advancing_with_an_unknown_reject_code_is_400(sandbox):
    sandbox.fund("100.00")
    sandbox.configure(step_delay_seconds=3600)
    withdrawal = created_withdrawal(sandbox, "10.00")
    assert sandbox.advance("withdrawals", withdrawal["id"], "REVIEWING").status_code == 200
    response = sandbox.advance("withdrawals", withdrawal["id"], "CANCELLED", rejectCode="NOPE")
    assert response.status_code == 400, response.text
    assert response.json()["field"] == "rejectCode"
    assert sandbox.withdrawal(withdrawal["id"])["status"] == "REVIEWING"


def test_advancing_to_a_status_that_does_not_exist_is_409(sandbox):
    sandbox.configure(step_delay_seconds=3600)
    deposit = sandbox.receive_deposit("10.00")
    response = sandbox.advance("deposits", deposit["id"], "BOGUS")
    assert response.status_code == 409, response.text
    assert "BOGUS" in response.json()["error"]
    assert sandbox.deposit_status(deposit["id"]) == "INITIALISED"


# --- The console ---------------------------------------------------------------------------------


def test_the_console_lists_a_deposit(sandbox):
    deposit = sandbox.receive_deposit("42.00", externalReference="console check")
    response = sandbox.http.get(sandbox.url + "console/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert deposit["id"] in response.text
    assert "console check" in response.text


def test_the_console_send_test_deposit_form_creates_a_deposit_and_redirects_back(sandbox):
    response = sandbox.http.post(
        sandbox.url + "console/deposit",
        data={
            "amount": "123.45",
            "externalReference": "from the console",
            "accountName": "Console Payer",
            "bsb": "062000",
            "accountNo": "11112222",
        },
    )
    assert response.status_code == 302
    location = urlsplit(response.headers["location"])
    assert location.path == "/console/"
    (message,) = parse_qs(location.query)["message"]
    rows = sandbox.data(
        "query { deposits(input: {}) { id amount externalReference sender { accountName bsb accountNo } } }"
    )["deposits"]
    assert len(rows) == 1
    (row,) = rows
    assert row["id"] in message
    assert row["amount"] == Decimal("123.45")
    assert row["externalReference"] == "from the console"
    assert row["sender"] == {
        "accountName": "Console Payer",
        "bsb": "062000",
        "accountNo": "11112222",
    }
    sandbox.wait_for_status("deposit", row["id"], "CONFIRMED")
    assert sandbox.balance() == (Decimal("123.45"), ZERO)
    page = sandbox.http.get(sandbox.url + "console/", params={"message": message})
    assert message in page.text


def test_a_bad_amount_on_the_console_form_redirects_with_an_error_and_creates_nothing(sandbox):
    response = sandbox.http.post(
        sandbox.url + "console/deposit",
        data={
            "amount": "abc",
            "accountName": "Console Payer",
            "bsb": "062000",
            "accountNo": "11112222",
        },
    )
    assert response.status_code == 302
    location = urlsplit(response.headers["location"])
    assert location.path == "/console/"
    (error,) = parse_qs(location.query)["error"]
    assert "amount" in error
    assert sandbox.data("query { deposits(input: {}) { id } }")["deposits"] == []
    assert sandbox.balance() == (ZERO, ZERO)
