from __future__ import annotations

import dataclasses

import pytest
from harness import API_EMAIL, API_PASSWORD, loads

from flashfx import types
from flashfx.client import FlashFXClient
from flashfx.errors import FlashFXRejected, FlashFXUnavailable, OutcomeUnknown
from flashfx.tokens import MemoryTokenStore

# FlashFXClient.confirmation_of_payee against the sandbox (docs/flashfx.md §3.13.2, decision
# §5.46): every code FlashFX answers is a CopResult, the two refusals included; what is not an
# answer raises as for every other call.

BSB, ACCOUNT_NO = "062000", "12345678"


@pytest.fixture
def client(sandbox):
    sandbox.configure(login_interval_seconds=0.0)
    with FlashFXClient(
        sandbox.url,
        API_EMAIL,
        API_PASSWORD,
        token_store=MemoryTokenStore(),
        connect_timeout=2,
        read_timeout=5,
        query_retry_budget_seconds=1.0,
        backoff_base_seconds=0.05,
    ) as client:
        client.login()  # before any fault, so that faults hit the call under test
        yield client


def confirm(client: FlashFXClient, account_name: str) -> types.CopResult:
    return client.confirmation_of_payee(bsb=BSB, account_no=ACCOUNT_NO, account_name=account_name)


def cop_checks(sandbox) -> list[dict]:
    return loads(sandbox.control("cop-checks").content)


def test_a_match_is_a_frozen_result_and_the_sandbox_saw_the_bsb_account(sandbox, client):
    result = confirm(client, "Mia Ng")

    assert (result.success, result.code, result.billable) == (True, "MATCH", True)
    assert result.message == "Account name matches"
    assert result.matched_name is None
    assert result.known is True
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.code = "NOT_MATCH"  # type: ignore[misc]
    [seen] = cop_checks(sandbox)
    assert (seen["accountIdType"], seen["bsb"], seen["accountNo"], seen["accountName"]) == (
        "BSB",
        BSB,
        ACCOUNT_NO,
        "Mia Ng",
    )


def test_a_close_match_carries_the_name_the_bank_holds(client):
    result = confirm(client, "John copiclosematch Smith")

    assert (result.success, result.code) == (True, "CLOSE_MATCH")
    assert result.matched_name == "J SMITH"
    assert "J SMITH" in (result.message or "")


@pytest.mark.parametrize(
    ("name", "code", "billable"),
    [
        ("Mia copinotmatch Ng", "NOT_MATCH", True),
        ("copclosed", "ACCOUNT_CLOSED", True),
        ("copnotfound", "ACCOUNT_NOT_FOUND", True),
        ("copnotsupported", "ACCOUNT_TYPE_NOT_SUPPORTED", False),
        ("coperror", "COP_PLATFORM_ERROR", False),
    ],
)
def test_every_other_answer_of_the_bank_is_a_result_without_a_name(client, name, code, billable):
    result = confirm(client, name)

    assert (result.success, result.code, result.billable) == (True, code, billable)
    assert result.matched_name is None


@pytest.mark.parametrize(
    ("name", "code"), [("copdisabled", "COP_API_DISABLED"), ("coplimit", "COP_LIMIT_EXCEEDED")]
)
def test_a_refusal_is_a_result_with_success_false_not_an_error(client, name, code):
    result = confirm(client, name)

    assert (result.success, result.code, result.billable) == (False, code, False)
    assert result.message


def test_cop_turned_off_at_flashfx_is_the_documented_disabled_result(sandbox, client):
    sandbox.configure(cop_enabled=False)

    result = confirm(client, "Mia Ng")

    assert (result.success, result.code, result.billable) == (False, "COP_API_DISABLED", False)
    assert result.message == "Confirmation Of Payee API is disabled. Please contact support."


def test_a_bad_bsb_is_rejected_naming_the_field(client):
    with pytest.raises(FlashFXRejected) as raised:
        client.confirmation_of_payee(bsb="62000", account_no=ACCOUNT_NO, account_name="Mia Ng")

    assert (raised.value.code, raised.value.field) == ("BAD_USER_INPUT", "input.bsb")
    assert raised.value.operation == "ConfirmationOfPayee"


def test_an_early_fault_is_unavailable_and_not_retried(sandbox, client):
    sandbox.faults(http_500=1.0, operations=["confirmationOfPayee"])

    with pytest.raises(FlashFXUnavailable) as raised:
        confirm(client, "Mia Ng")

    assert raised.value.code == "HTTP_500"
    assert client.stats.retries == 0
    assert cop_checks(sandbox) == []


def test_a_dropped_answer_is_outcome_unknown_and_asking_again_answers(sandbox, client):
    sandbox.faults(commit_then_drop=1.0, operations=["confirmationOfPayee"], limit=1)

    with pytest.raises(OutcomeUnknown):
        confirm(client, "Mia Ng")

    assert confirm(client, "Mia Ng").code == "MATCH"
    assert len(cop_checks(sandbox)) == 2  # the dropped one was checked (and billed) too


@pytest.mark.parametrize(
    ("reply", "matched_name"),
    [
        ({"code": "CLOSE_MATCH", "message": 'Close to the bank\'s "J SMITH"'}, "J SMITH"),
        ({"code": "CLOSE_MATCH", "message": "Account name partially matches"}, None),
        ({"code": "NOT_MATCH", "message": 'You asked for "Mia Ng"'}, None),
    ],
)
def test_the_matched_name_is_read_only_from_a_close_match_that_quotes_it(reply, matched_name):
    result = types.CopResult.from_wire({"success": True, "billable": True} | reply)
    assert result.matched_name == matched_name


def test_an_unknown_code_is_kept_and_flagged():
    result = types.CopResult.from_wire(
        {"success": True, "code": "PARTIAL_OPT_OUT", "message": "new", "billable": False}
    )
    assert (result.code, result.known) == ("PARTIAL_OPT_OUT", False)
