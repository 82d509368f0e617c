"""The SDL (flashfx/schema.graphql) and what the sandbox serves: the same schema, request-level errors."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from graphql import (
    GraphQLEnumType,
    GraphQLSchema,
    build_client_schema,
    build_schema,
    get_introspection_query,
    print_schema,
)
from sandbox_payloads import BSB_RECIPIENT, CREATE_WITHDRAWAL, loads

SDL_PATH = Path(__file__).resolve().parents[2] / "flashfx" / "schema.graphql"

QUERIES = {
    "balances", "statement", "deposits", "deposit", "withdrawals", "withdrawal", "senders",
    "sender", "recipients", "recipient", "payments", "payment", "quote", "subClients", "subClient",
}  # fmt: skip
MUTATIONS = {
    "login", "logout", "refundDeposit", "createWithdrawal", "createSender", "updateSender",
    "deleteSender", "createRecipient", "updateRecipient", "deleteRecipient", "createPayment",
    "createSubClient", "confirmationOfPayee",
}  # fmt: skip

# docs/flashfx.md §3, plus the §5 decisions the SDL takes (named where they add a value).
DOCUMENTED_ENUMS = {
    # §3.2, plus CANCELLED (decision §5.21).
    "DepositStatus": {"INITIALISED", "REVIEWING", "CONFIRMED", "REFUNDING", "REFUNDED", "CANCELLED"},
    # §3.3.3
    "WithdrawalStatus": {
        "INITIALISED", "REVIEWING", "PENDING", "CONFIRMED", "FAILED", "REFUNDED", "CANCELLED",
    },
    # §3.6.3
    "PaymentStatus": {"INITIALISING", "OPEN", "CLOSED", "FAILED", "CANCELLED"},
    # §3.3.4, plus FRAUD from the 2024 list.
    "RejectCode": {
        "CANCELLATION_REQUESTED_BY_PARTICIPANT", "CANCELLATION_BY_RECIPIENT_FI",
        "COMPLIANCE_DECLINED", "COMPLIANCE_DECLINED_EXTERNAL", "SENDER_INADEQUATE_DATA",
        "SENDER_INVALID_ADDRESS", "SENDER_INCOMPLETE_ADDRESS", "RECIPIENT_INADEQUATE_DATA",
        "RECIPIENT_INVALID_ADDRESS", "RECIPIENT_INCOMPLETE_ADDRESS", "DATA_ENQUIRY_TIME_ELAPSED",
        "DATA_ENQUIRY_RESPONSE_INADEQUATE", "SOURCE_OF_FUNDS_INADEQUATE", "DUPLICATE_TRANSACTION",
        "TECHNICAL_ISSUE", "RECIPIENT_ACCOUNT_CLOSED", "RECIPIENT_INVALID_ACCOUNT_NUMBER",
        "RECIPIENT_INVALID_BANK_CODE", "RECIPIENT_INVALID_ACCOUNT",
        "RECIPIENT_COUNTRY_NOT_SUPPORTED", "RECIPIENT_CURRENCY_NOT_SUPPORTED", "EXPIRED", "FRAUD",
    },
    # §3.5 (PH_CASH, RIPPLE, BPAY, FIN_BTN and INTERAC were removed).
    "AccountIdType": {"BSB", "PAYID", "IBAN", "ACC_NO", "ABA", "CLABE", "IFSC", "CNAPS", "SORT_CODE"},
}  # fmt: skip
# §2.4: the currencies seen in examples and FromCurrency's; the full list is decision §5.39.
DOCUMENTED_CURRENCIES = {
    "AUD",
    "USD",
    "EUR",
    "GBP",
    "HKD",
    "CNY",
    "AED",
    "PHP",
    "CAD",
    "CHF",
    "NZD",
    "SGD",
}
REMOVED_CURRENCIES = {"XRP"}
REMOVED_ACCOUNT_ID_TYPES = {"PH_CASH", "RIPPLE", "BPAY", "FIN_BTN", "INTERAC"}


@pytest.fixture(scope="module")
def sdl_schema() -> GraphQLSchema:
    return build_schema(SDL_PATH.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def served_schema(sandbox_url) -> GraphQLSchema:
    """What the sandbox says about itself, asked without a token (decision §5.8)."""
    response = httpx.post(sandbox_url, json={"query": get_introspection_query()}, timeout=10)
    assert response.status_code == 200, response.text
    envelope = response.json()
    assert "errors" not in envelope, envelope["errors"]
    return build_client_schema(envelope["data"])


def enum_values(schema: GraphQLSchema, name: str) -> set[str]:
    enum = schema.get_type(name)
    assert isinstance(enum, GraphQLEnumType), f"{name} is not an enum"
    return set(enum.values)


def error_code(response: httpx.Response) -> str:
    return loads(response.content)["errors"][0]["extensions"]["code"]


# --- The SDL and the served schema ----------------------------------------------------------------


def test_the_sdl_builds_with_graphql_core(sdl_schema):
    assert sdl_schema.query_type is not None and sdl_schema.query_type.name == "Query"
    assert sdl_schema.mutation_type is not None and sdl_schema.mutation_type.name == "Mutation"
    assert sdl_schema.subscription_type is None


def test_the_sandbox_serves_exactly_the_sdl(sdl_schema, served_schema):
    assert print_schema(served_schema) == print_schema(sdl_schema)


def test_introspection_without_a_token_is_answered(sandbox):
    response = sandbox.post(get_introspection_query(), token=None)
    assert response.status_code == 200
    assert loads(response.content)["data"]["__schema"]["queryType"]["name"] == "Query"


def test_every_query_named_by_the_foundation_issue_is_served(served_schema):
    assert served_schema.query_type is not None
    assert QUERIES - set(served_schema.query_type.fields) == set()


def test_every_mutation_named_by_the_foundation_issue_is_served(served_schema):
    assert served_schema.mutation_type is not None
    assert MUTATIONS - set(served_schema.mutation_type.fields) == set()


@pytest.mark.parametrize("name", DOCUMENTED_ENUMS)
def test_enum_holds_the_documented_values(served_schema, name):
    assert enum_values(served_schema, name) == DOCUMENTED_ENUMS[name]


def test_removed_account_id_types_are_gone(served_schema):
    assert enum_values(served_schema, "AccountIdType") & REMOVED_ACCOUNT_ID_TYPES == set()


def test_currency_iso3_holds_the_documented_currencies_and_not_xrp(served_schema):
    values = enum_values(served_schema, "CurrencyIso3")
    assert DOCUMENTED_CURRENCIES - values == set()
    assert values & REMOVED_CURRENCIES == set()
    assert all(len(code) == 3 and code.isupper() for code in values)


def test_from_currency_is_the_2024_list(served_schema):
    assert enum_values(served_schema, "FromCurrency") == {
        "AUD", "CAD", "CHF", "EUR", "GBP", "NZD", "SGD", "USD",
    }  # fmt: skip


def test_login_input_requires_email_and_password_only(served_schema):
    login_input = served_schema.get_type("LoginInput")
    required = {name for name, f in login_input.fields.items() if str(f.type).endswith("!")}
    assert required == {"email", "password"}
    assert enum_values(served_schema, "Affiliation") == {"FP_AUS", "FP_LUX"}


# --- Request-level errors (decision §5.17): HTTP 400 with a code ----------------------------------


def test_a_syntax_error_is_400_graphql_parse_failed(sandbox):
    response = sandbox.post("{ balances { currency }")
    assert response.status_code == 400, response.text
    assert error_code(response) == "GRAPHQL_PARSE_FAILED"
    assert loads(response.content)["data"] is None


def test_an_unknown_field_is_400_graphql_validation_failed(sandbox):
    response = sandbox.post("{ balances { currency colour } }")
    assert response.status_code == 400, response.text
    assert error_code(response) == "GRAPHQL_VALIDATION_FAILED"
    assert "colour" in loads(response.content)["errors"][0]["message"]


def test_an_unknown_operation_is_400_graphql_validation_failed(sandbox):
    response = sandbox.post(
        'mutation { disableSubClient(id: "65f0c0ffee0000000000aa01") { success } }'
    )
    assert response.status_code == 400, response.text
    assert error_code(response) == "GRAPHQL_VALIDATION_FAILED"


def test_a_variable_of_the_wrong_type_is_400_bad_user_input_and_does_nothing(sandbox):
    sandbox.fund("500.00")
    response = sandbox.post(
        CREATE_WITHDRAWAL,
        {"input": {"amount": "250", "currency": "AUD", "recipient": BSB_RECIPIENT}},
    )
    assert response.status_code == 400, response.text
    assert error_code(response) == "BAD_USER_INPUT"
    assert "amount" in loads(response.content)["errors"][0]["message"]
    assert sandbox.data("{ withdrawals { id } }")["withdrawals"] == []
    assert sandbox.balance() == (Decimal("500.00"), Decimal("0.00"))


def test_an_unknown_enum_value_in_a_variable_is_400_bad_user_input(sandbox):
    response = sandbox.post(
        "query B($c: [CurrencyIso3]) { balances(currencies: $c) { currency } }", {"c": ["XRP"]}
    )
    assert response.status_code == 400, response.text
    assert error_code(response) == "BAD_USER_INPUT"


def test_a_missing_required_variable_is_400_bad_user_input(sandbox):
    response = sandbox.post(
        "mutation L($input: LoginInput!) { login(input: $input) { success } }", {}, token=None
    )
    assert response.status_code == 400, response.text
    assert error_code(response) == "BAD_USER_INPUT"


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"this is not json", id="not-json"),
        pytest.param(b'{"query": "{ balances { currency } }"', id="truncated-json"),
        pytest.param(b"\xff\xfe\x00", id="not-utf8"),
    ],
)
def test_a_body_that_is_not_json_is_400(sandbox, body):
    response = sandbox.http.post(
        sandbox.url,
        content=body,
        headers={"content-type": "application/json", "authorization": f"Bearer {sandbox.token}"},
    )
    assert response.status_code == 400, response.text
    assert error_code(response) == "BAD_REQUEST"


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param([], id="a-list"),
        pytest.param({}, id="no-query"),
        pytest.param({"query": 42}, id="query-not-a-string"),
        pytest.param(
            {"query": "{ balances { currency } }", "variables": [1]}, id="variables-not-an-object"
        ),
    ],
)
def test_json_that_is_not_a_graphql_request_is_400_bad_request(sandbox, payload):
    response = sandbox.http.post(
        sandbox.url, json=payload, headers={"authorization": f"Bearer {sandbox.token}"}
    )
    assert response.status_code == 400, response.text
    assert error_code(response) == "BAD_REQUEST"
