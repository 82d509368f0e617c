"""Login, tokens and logout as the sandbox answers them (docs/flashfx.md §1.2, §1.3; decisions §5.7-§5.10)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable
from typing import Any

import pytest
from sandbox_payloads import API_EMAIL, API_PASSWORD, loads

Sandbox = Any  # the conftest's Sandbox helper (the `sandbox` fixture)

LOGIN = (
    "mutation Login($input: LoginInput!) { login(input: $input) { success code message token } }"
)
LOGOUT = "mutation { logout { success code message } }"
PROTECTED = "{ balances { currency cleared pending } }"


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def jwt_part(token: str, index: int) -> dict:
    """Decode one segment of a JWT (0 = header, 1 = payload) by hand: base64url, then JSON."""
    segment = token.split(".")[index]
    return json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))


def forge_token(claims: dict, key: bytes, alg: str = "HS256") -> str:
    header = b64url(json.dumps({"alg": alg, "typ": "JWT"}).encode())
    payload = b64url(json.dumps(claims).encode())
    signing_input = f"{header}.{payload}".encode()
    if alg == "none":
        return f"{header}.{payload}."
    signature = hmac.new(key, signing_input, hashlib.sha256).digest()
    return f"{header}.{payload}.{b64url(signature)}"


def allow_quick_logins(sandbox: Sandbox, **config: object) -> None:
    """The fixture has just logged in; lift the one-login-per-second rule for this test."""
    sandbox.configure(login_interval_seconds=0, **config)


def login_reply(sandbox: Sandbox, **fields: object) -> dict:
    variables = {"input": {"email": API_EMAIL, "password": API_PASSWORD, **fields}}
    return sandbox.data(LOGIN, variables, token=None)["login"]


def assert_unauthenticated(response) -> None:
    assert response.status_code == 200, response.text
    envelope = loads(response.content)
    assert "data" in envelope and envelope["data"] is None, envelope
    assert envelope["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED", envelope


# --- Login ------------------------------------------------------------------------------------


def test_login_returns_a_jwt_that_lives_four_hours_by_default(sandbox):
    token = sandbox.token
    assert token.count(".") == 2
    assert jwt_part(token, 0)["alg"] == "HS256"
    payload = jwt_part(token, 1)
    assert isinstance(payload["iat"], int) and isinstance(payload["exp"], int)
    assert payload["exp"] - payload["iat"] == 14400
    assert abs(payload["iat"] - time.time()) < 60


def test_login_reply_is_success_with_code_success_and_message_ok(sandbox):
    allow_quick_logins(sandbox)
    reply = login_reply(sandbox)
    assert (reply["success"], reply["code"], reply["message"]) == (True, "SUCCESS", "OK")
    assert reply["token"] and reply["token"] != sandbox.token


def test_token_expiry_follows_token_ttl_seconds(sandbox):
    allow_quick_logins(sandbox, token_ttl_seconds=2)
    payload = jwt_part(login_reply(sandbox)["token"], 1)
    assert payload["exp"] - payload["iat"] == 2


def test_wrong_password_is_invalid_credentials_without_a_token(sandbox):
    allow_quick_logins(sandbox)
    reply = login_reply(sandbox, password="not-the-password")
    assert reply["success"] is False
    assert reply["code"] == "INVALID_CREDENTIALS"
    assert reply["token"] is None


def test_unknown_email_is_invalid_credentials_without_a_token(sandbox):
    reply = login_reply(sandbox, email="nobody@sandbox.local")
    assert (reply["success"], reply["code"], reply["token"]) == (False, "INVALID_CREDENTIALS", None)


def test_a_second_login_within_one_second_is_http_429_with_the_documented_body(sandbox):
    # The fixture logged in a moment ago with the same email.
    response = sandbox.post(
        LOGIN, {"input": {"email": API_EMAIL, "password": API_PASSWORD}}, token=None
    )
    assert response.status_code == 429, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert response.headers["retry-after"] == "1"  # decision §5.9
    body = loads(response.content)
    assert set(body) == {"success", "code", "message", "retrySecs"}, body
    assert body["success"] is False
    assert body["code"] == "TOO_MANY_REQUESTS"
    assert isinstance(body["message"], str) and body["message"]
    assert body["retrySecs"] == int(response.headers["retry-after"])


def test_the_login_limit_is_per_email_whatever_the_case(sandbox):
    response = sandbox.post(
        LOGIN, {"input": {"email": API_EMAIL.upper(), "password": API_PASSWORD}}, token=None
    )
    assert response.status_code == 429, response.text


def test_a_login_after_the_interval_works(sandbox):
    time.sleep(1.1)
    reply = login_reply(sandbox)
    assert reply["success"] is True and reply["token"]


def test_a_throttled_login_does_not_restart_the_interval(sandbox):
    time.sleep(0.3)
    refused = sandbox.post(
        LOGIN, {"input": {"email": API_EMAIL, "password": API_PASSWORD}}, token=None
    )
    assert refused.status_code == 429
    time.sleep(0.8)  # over 1 s after the fixture's login, under 1 s after the refused one
    assert login_reply(sandbox)["success"] is True


def test_affiliation_fp_lux_is_unregistered(sandbox):
    allow_quick_logins(sandbox)
    reply = login_reply(sandbox, affiliation="FP_LUX")
    assert (reply["success"], reply["code"], reply["token"]) == (False, "UNREGISTERED", None)


def test_affiliation_fp_aus_logs_in(sandbox):
    allow_quick_logins(sandbox)
    reply = login_reply(sandbox, affiliation="FP_AUS")
    assert (reply["success"], reply["code"]) == (True, "SUCCESS")
    assert reply["token"]


# --- Tokens that do not authenticate ------------------------------------------------------------


def _missing(sandbox: Sandbox) -> str | None:
    return None


def _garbage(sandbox: Sandbox) -> str | None:
    return "Bearer this-is-not-a-jwt"


def _basic_scheme(sandbox: Sandbox) -> str | None:
    credentials = base64.b64encode(f"{API_EMAIL}:{API_PASSWORD}".encode()).decode()
    return f"Basic {credentials}"


def _token_in_basic_scheme(sandbox: Sandbox) -> str | None:
    return f"Basic {sandbox.token}"


def _bearer_without_token(sandbox: Sandbox) -> str | None:
    return "Bearer"


def _signed_with_another_key(sandbox: Sandbox) -> str | None:
    claims = jwt_part(sandbox.token, 1)  # the real claims, only the key differs
    return "Bearer " + forge_token(claims, b"some-other-signing-key")


def _unsigned_alg_none(sandbox: Sandbox) -> str | None:
    return "Bearer " + forge_token(jwt_part(sandbox.token, 1), b"", alg="none")


def _tampered_payload(sandbox: Sandbox) -> str | None:
    header, _, signature = sandbox.token.split(".")
    claims = jwt_part(sandbox.token, 1)
    claims["exp"] += 3600
    return f"Bearer {header}.{b64url(json.dumps(claims).encode())}.{signature}"


def _expired(sandbox: Sandbox) -> str | None:
    allow_quick_logins(sandbox, token_ttl_seconds=1)
    token = login_reply(sandbox)["token"]
    time.sleep(1.6)  # exp = floor(login time) + 1 is then in the past
    return f"Bearer {token}"


def _logged_out(sandbox: Sandbox) -> str | None:
    reply = sandbox.data(LOGOUT)["logout"]
    assert reply["success"] is True, reply
    return f"Bearer {sandbox.token}"


NOT_AUTHENTICATING: dict[str, Callable[[Sandbox], str | None]] = {
    "missing": _missing,
    "garbage": _garbage,
    "basic-scheme": _basic_scheme,
    "jwt-in-basic-scheme": _token_in_basic_scheme,
    "bearer-without-token": _bearer_without_token,
    "signed-with-another-key": _signed_with_another_key,
    "alg-none": _unsigned_alg_none,
    "tampered-payload": _tampered_payload,
    "expired": _expired,
    "after-logout": _logged_out,
}


@pytest.mark.parametrize("case", NOT_AUTHENTICATING)
def test_a_protected_query_without_a_valid_token_is_unauthenticated(sandbox, case):
    authorization = NOT_AUTHENTICATING[case](sandbox)
    headers = {"authorization": authorization} if authorization else {}
    response = sandbox.post(PROTECTED, token=None, headers=headers)
    assert_unauthenticated(response)


def test_a_protected_mutation_without_a_token_is_unauthenticated_and_does_nothing(sandbox):
    response = sandbox.post(
        "mutation S($input: SenderInput!) { createSender(input: $input) { success } }",
        {"input": {"firstName": "Lena", "lastName": "Fischer"}},
        token=None,
    )
    assert_unauthenticated(response)
    assert sandbox.data("{ senders(input: {}) { id } }")["senders"] == []


def test_logout_needs_a_token(sandbox):
    assert_unauthenticated(sandbox.post(LOGOUT, token=None))


def test_logout_revokes_only_the_token_it_was_sent_with(sandbox):
    allow_quick_logins(sandbox)
    first, second = sandbox.token, login_reply(sandbox)["token"]
    reply = sandbox.data(LOGOUT, token=first)["logout"]
    assert (reply["success"], reply["code"]) == (True, "SUCCESS")
    assert_unauthenticated(sandbox.post(PROTECTED, token=first))
    assert sandbox.data(PROTECTED, token=second)["balances"] == []


def test_logging_out_twice_is_refused_the_second_time(sandbox):
    sandbox.data(LOGOUT)
    assert_unauthenticated(sandbox.post(LOGOUT))


# --- What needs no token --------------------------------------------------------------------


def test_introspection_needs_no_token(sandbox):
    data = sandbox.data("{ __schema { queryType { name } mutationType { name } } }", token=None)
    assert data["__schema"] == {
        "queryType": {"name": "Query"},
        "mutationType": {"name": "Mutation"},
    }


def test_typename_needs_no_token(sandbox):
    assert sandbox.data("{ __typename }", token=None) == {"__typename": "Query"}


def test_introspection_does_not_open_protected_fields_in_the_same_request(sandbox):
    response = sandbox.post("{ __schema { queryType { name } } balances { currency } }", token=None)
    assert_unauthenticated(response)
