"""Confirmation of Payee in the sandbox (docs/flashfx.md §3.13.2, decision §5.46): FlashFX's UAT
keywords in `accountName`, ours for the codes UAT has none for, the two refusals, the limit, and
input rules like every other mutation's."""

from __future__ import annotations

import pytest
from sandbox_payloads import loads

COP = (
    "mutation C($input: CopInput!) {"
    " confirmationOfPayee(input: $input) { success code message billable } }"
)
ACCOUNT = {"accountIdType": "BSB", "bsb": "062000", "accountNo": "12345678"}


def confirm(sandbox, account_name: str, **fields) -> dict:
    variables = {"input": {**ACCOUNT, "accountName": account_name, **fields}}
    return sandbox.data(COP, variables)["confirmationOfPayee"]


def checks(sandbox) -> list[dict]:
    response = sandbox.control("cop-checks")
    assert response.status_code == 200, response.text
    return loads(response.content)


# --- FlashFX's UAT keywords (§3.13.2) ---------------------------------------------------------

DOCUMENTED = {
    "copimatch": "MATCH",
    "copijmatch": "MATCH",
    "copcmatch": "MATCH",
    "copiclosematch": "CLOSE_MATCH",
    "copijclosematch": "CLOSE_MATCH",
    "copcclosematch": "CLOSE_MATCH",
    "copinotmatch": "NOT_MATCH",
    "copcnotmatch": "NOT_MATCH",
    "copclosed": "ACCOUNT_CLOSED",
    "copnotfound": "ACCOUNT_NOT_FOUND",
    "coperror": "COP_PLATFORM_ERROR",
}


@pytest.mark.parametrize(("keyword", "code"), DOCUMENTED.items())
def test_each_documented_keyword_gives_its_code(sandbox, keyword, code):
    reply = confirm(sandbox, f"Mia {keyword} Ng")
    assert reply["code"] == code
    assert reply["success"] is True


@pytest.mark.parametrize("name", ["Test Copimatch", "John copimatch Smith", "COPIMATCH"])
def test_keywords_are_found_anywhere_in_any_case(sandbox, name):
    assert confirm(sandbox, name)["code"] == "MATCH"


def test_a_name_without_a_keyword_matches(sandbox):
    reply = confirm(sandbox, "Mia Ng")
    assert reply == {
        "success": True,
        "code": "MATCH",
        "message": "Account name matches",
        "billable": True,
    }


@pytest.mark.parametrize(
    ("name", "held"),
    [
        ("John copiclosematch Smith", "J SMITH"),
        ("Mary Anne copijclosematch Smith", "M A SMITH & ANOR"),
        ("Acme Trading copcclosematch", "ACME TRADING PTY LTD"),
        ("copiclosematch", "J CITIZEN"),
    ],
)
def test_a_close_match_names_the_account_name_the_bank_holds(sandbox, name, held):
    reply = confirm(sandbox, name)
    assert reply["code"] == "CLOSE_MATCH"
    assert reply["message"].endswith(f'"{held}"')
    assert checks(sandbox)[0]["bankAccountName"] == held


@pytest.mark.parametrize(
    ("code", "billable"),
    [
        ("MATCH", True),
        ("CLOSE_MATCH", True),
        ("NOT_MATCH", True),
        ("ACCOUNT_CLOSED", True),
        ("ACCOUNT_NOT_FOUND", True),
        ("COP_PLATFORM_ERROR", False),
    ],
)
def test_only_checks_the_bank_answered_are_billable(sandbox, code, billable):
    keyword = next(k for k, c in DOCUMENTED.items() if c == code)
    assert confirm(sandbox, keyword)["billable"] is billable


# --- Our keywords and settings for the codes UAT gives none (decision §5.46) -----------------


def test_copnotsupported_answers_account_type_not_supported_unbilled(sandbox):
    reply = confirm(sandbox, "Mia copnotsupported Ng")
    assert (reply["success"], reply["code"], reply["billable"]) == (
        True,
        "ACCOUNT_TYPE_NOT_SUPPORTED",
        False,
    )


def test_an_account_type_other_than_bsb_is_not_supported(sandbox):
    reply = sandbox.data(
        COP, {"input": {"accountIdType": "PAYID", "accountName": "Mia copimatch Ng"}}
    )["confirmationOfPayee"]
    assert (reply["code"], reply["billable"]) == ("ACCOUNT_TYPE_NOT_SUPPORTED", False)


@pytest.mark.parametrize(
    ("keyword", "code"), [("copdisabled", "COP_API_DISABLED"), ("coplimit", "COP_LIMIT_EXCEEDED")]
)
def test_the_refusal_keywords_answer_success_false_unbilled(sandbox, keyword, code):
    reply = confirm(sandbox, f"Mia {keyword} Ng")
    assert (reply["success"], reply["code"], reply["billable"]) == (False, code, False)


def test_cop_turned_off_answers_the_documented_cop_api_disabled(sandbox):
    sandbox.configure(cop_enabled=False)
    reply = confirm(sandbox, "Mia copimatch Ng")
    assert reply == {
        "success": False,
        "code": "COP_API_DISABLED",
        "message": "Confirmation Of Payee API is disabled. Please contact support.",
        "billable": False,
    }


def test_the_monthly_limit_counts_billable_checks_only(sandbox):
    sandbox.configure(cop_monthly_limit=2)
    assert confirm(sandbox, "coperror")["code"] == "COP_PLATFORM_ERROR"  # not billed
    assert confirm(sandbox, "Mia Ng")["code"] == "MATCH"
    assert confirm(sandbox, "copinotmatch")["code"] == "NOT_MATCH"
    over = confirm(sandbox, "Mia Ng")
    assert (over["success"], over["code"], over["billable"]) == (False, "COP_LIMIT_EXCEEDED", False)
    assert [c["billable"] for c in checks(sandbox)] == [False, True, True, False]


def test_every_check_is_kept_newest_first_with_what_was_asked(sandbox):
    confirm(sandbox, "Mia Ng")
    confirm(sandbox, "Ada copclosed Lovelace", bsb="802919", accountNo="1000001")
    newest, oldest = checks(sandbox)
    assert newest | {"id": None, "createdAt": None} == {
        "id": None,
        "createdAt": None,
        "accountIdType": "BSB",
        "bsb": "802919",
        "accountNo": "1000001",
        "accountName": "Ada copclosed Lovelace",
        "code": "ACCOUNT_CLOSED",
        "billable": True,
        "bankAccountName": None,
    }
    assert (oldest["accountName"], oldest["code"]) == ("Mia Ng", "MATCH")


# --- Auth, faults and input rules, as for every operation ---------------------------------------


def test_a_check_without_a_token_is_unauthenticated_and_not_kept(sandbox):
    envelope = sandbox.gql(COP, {"input": {**ACCOUNT, "accountName": "Mia Ng"}}, token=None)
    assert envelope["data"] is None
    assert envelope["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert checks(sandbox) == []


def test_an_injected_fault_can_target_confirmation_of_payee(sandbox):
    sandbox.faults(http_500=1.0, operations=["confirmationOfPayee"])
    response = sandbox.post(COP, {"input": {**ACCOUNT, "accountName": "Mia Ng"}})
    assert response.status_code == 500
    assert checks(sandbox) == []


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"bsb": None}, "input.bsb"),
        ({"bsb": "06200"}, "input.bsb"),
        ({"bsb": "06200A"}, "input.bsb"),
        ({"accountNo": None}, "input.accountNo"),
        ({"accountNo": "123"}, "input.accountNo"),
        ({"accountNo": "1234-5678"}, "input.accountNo"),
        ({"accountName": "   "}, "input.accountName"),
        ({"accountName": "x" * 141}, "input.accountName"),
        ({"accountName": "Zoë Ng"}, "input.accountName"),
        ({"accountName": "N/A"}, "input.accountName"),
    ],
)
def test_bad_input_is_bad_user_input_naming_the_field_and_nothing_is_kept(sandbox, changes, field):
    variables = {"input": {**ACCOUNT, "accountName": "Mia Ng", **changes}}
    envelope = sandbox.gql(COP, variables)
    error = envelope["errors"][0]
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": field}
    assert error["message"].startswith(f"{field}: ")
    assert checks(sandbox) == []


def test_a_missing_account_name_fails_schema_validation(sandbox):
    response = sandbox.post(COP, {"input": dict(ACCOUNT)})
    assert response.status_code == 400
    assert loads(response.content)["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
