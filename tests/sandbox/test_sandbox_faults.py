"""Faults on demand (POST /_sandbox/faults): what each mode answers and what it does to state."""

from __future__ import annotations

from decimal import Decimal

import httpx
import pytest
from sandbox_payloads import CREATE_WITHDRAWAL, WITHDRAWAL, loads, wait_until

WITHDRAWALS = (
    "query W($input: WithdrawalQueryInput) { withdrawals(input: $input) { id externalId amount } }"
)
FEE = Decimal("1.00")  # the sandbox's default flat withdrawal fee (docs/flashfx.md §5.15)


def payout(external_id: str) -> dict:
    return {"input": {**WITHDRAWAL, "externalId": external_id}}


def send_payout(sandbox, external_id: str, *, timeout: float = 10.0) -> httpx.Response:
    """createWithdrawal on a fresh connection, so a dropped or timed-out one is never reused."""
    return httpx.post(
        sandbox.url,
        json={"query": CREATE_WITHDRAWAL, "variables": payout(external_id)},
        headers={"authorization": f"Bearer {sandbox.token}"},
        timeout=timeout,
    )


def withdrawals_with(sandbox, external_id: str) -> list[dict]:
    return sandbox.data(WITHDRAWALS, {"input": {"externalId": external_id}})["withdrawals"]


def all_withdrawals(sandbox) -> list[dict]:
    return sandbox.data(WITHDRAWALS, {"input": {}})["withdrawals"]


@pytest.fixture
def funded(sandbox):
    sandbox.fund("1000.00")
    assert sandbox.balance() == (Decimal("1000.00"), Decimal("0.00"))
    return sandbox


# --- Modes that answer instead of executing ---------------------------------------------------


def _http_500(response: httpx.Response, mix: dict) -> None:
    assert response.status_code == 500


def _html_502(response: httpx.Response, mix: dict) -> None:
    assert response.status_code == 502
    assert response.headers["content-type"].startswith("text/html")
    assert "<html" in response.text.lower() and "502" in response.text


def _rate_limit_429(response: httpx.Response, mix: dict) -> None:
    assert response.status_code == 429
    assert response.headers["retry-after"] == str(mix["retry_after_seconds"])
    assert response.headers["content-type"].startswith("application/json")
    body = loads(response.content)
    assert body == {
        "success": False,
        "code": "TOO_MANY_REQUESTS",
        "message": body["message"],
        "retrySecs": mix["retry_after_seconds"],
    }
    assert isinstance(body["message"], str) and body["message"]


def _graphql_error(response: httpx.Response, mix: dict) -> None:
    assert response.status_code == 200
    envelope = loads(response.content)
    assert "data" in envelope and envelope["data"] is None, envelope
    assert envelope["errors"][0]["extensions"]["code"] == "INTERNAL_SERVER_ERROR", envelope


EARLY_ANSWERS = {
    "http_500": ({"http_500": 1.0}, _http_500),
    "html_502": ({"html_502": 1.0}, _html_502),
    "rate_limit_429": ({"rate_limit_429": 1.0, "retry_after_seconds": 7}, _rate_limit_429),
    "graphql_error": ({"graphql_error": 1.0}, _graphql_error),
}


@pytest.mark.parametrize("mode", EARLY_ANSWERS)
def test_a_fault_that_answers_early_leaves_the_mutation_without_effect(funded, mode):
    mix, check = EARLY_ANSWERS[mode]
    funded.faults(**mix)
    response = send_payout(funded, f"fault-{mode}")
    check(response, mix)

    funded.faults()  # clear, then look
    assert all_withdrawals(funded) == []
    assert funded.balance() == (Decimal("1000.00"), Decimal("0.00"))
    assert funded.deliveries(event="withdrawal_initiated") == []


def test_rate_limit_fault_defaults_to_the_documented_59_seconds(sandbox):
    sandbox.faults(rate_limit_429=1.0)
    response = sandbox.post("{ balances { currency } }")
    assert response.status_code == 429
    assert response.headers["retry-after"] == "59"
    assert loads(response.content)["retrySecs"] == 59


def test_faults_hit_requests_without_a_token_too(sandbox):
    sandbox.faults(http_500=1.0)
    assert sandbox.post("{ balances { currency } }", token=None).status_code == 500


# --- slow and commit_then_drop: the request takes effect although the client saw no answer -------


def test_slow_times_the_client_out_and_the_mutation_still_takes_effect(funded):
    funded.faults(slow=1.0, slow_seconds=1.5, operations=["createWithdrawal"], limit=1)
    with pytest.raises(httpx.ReadTimeout):
        send_payout(funded, "slow-1", timeout=0.5)

    rows = wait_until(
        lambda: withdrawals_with(funded, "slow-1"), timeout=5, what="the slow withdrawal to appear"
    )
    assert len(rows) == 1 and rows[0]["amount"] == Decimal("250")
    assert funded.balance()[0] == Decimal("1000.00") - Decimal("250") - FEE


def test_slow_answers_normally_once_the_wait_is_over(funded):
    funded.faults(slow=1.0, slow_seconds=0.3, operations=["createWithdrawal"])
    response = send_payout(funded, "slow-2", timeout=5)
    assert response.status_code == 200, response.text
    reply = loads(response.content)["data"]["createWithdrawal"]
    assert (reply["success"], reply["withdrawal"]["status"]) == (True, "INITIALISED")


def test_commit_then_drop_cuts_the_connection_after_the_withdrawal_is_committed(funded):
    funded.faults(commit_then_drop=1.0, operations=["createWithdrawal"])
    with pytest.raises(httpx.TransportError) as raised:
        send_payout(funded, "dropped-1")
    assert not isinstance(raised.value, httpx.TimeoutException), repr(raised.value)

    funded.faults()
    rows = withdrawals_with(funded, "dropped-1")
    assert len(rows) == 1, rows
    assert len(all_withdrawals(funded)) == 1
    assert funded.balance()[0] == Decimal("1000.00") - Decimal("250") - FEE  # debited once


# --- Which requests get a fault ---------------------------------------------------------------


def test_operations_restricts_faults_to_those_root_fields(funded):
    funded.faults(http_500=1.0, operations=["createWithdrawal"])
    balances = funded.post("{ balances { currency cleared } }")
    assert balances.status_code == 200, balances.text
    assert loads(balances.content)["data"]["balances"][0]["cleared"] == Decimal("1000")
    assert send_payout(funded, "restricted-1").status_code == 500


def test_operations_match_a_root_field_even_behind_an_alias(funded):
    funded.faults(http_500=1.0, operations=["balances"])
    assert funded.post("{ mine: balances { currency } }").status_code == 500
    assert funded.post("{ withdrawals { id } }").status_code == 200


def test_limit_injects_exactly_that_many_faults_then_stops(sandbox):
    sandbox.faults(http_500=1.0, limit=2)
    statuses = [sandbox.post("{ balances { currency } }").status_code for _ in range(5)]
    assert statuses == [500, 500, 200, 200, 200]
    assert sandbox.control("faults").json()["limit"] == 0


def test_limit_counts_only_the_requests_that_got_a_fault(sandbox):
    sandbox.faults(http_500=1.0, limit=1, operations=["withdrawals"])
    assert sandbox.post("{ balances { currency } }").status_code == 200
    assert sandbox.post("{ withdrawals { id } }").status_code == 500
    assert sandbox.post("{ withdrawals { id } }").status_code == 200


def test_no_fault_mix_means_no_faults(sandbox):
    assert sandbox.control("faults").json()["http_500"] == 0
    assert all(sandbox.post("{ balances { currency } }").status_code == 200 for _ in range(5))


# --- Refused settings -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "mix",
    [
        pytest.param({"http_500": 1.5}, id="share-above-1"),
        pytest.param({"http_500": -0.1}, id="negative-share"),
        pytest.param({"http_500": "0.5"}, id="share-as-string"),
        pytest.param({"timeout_storm": 0.5}, id="unknown-mode"),
        pytest.param({"http_500": 0.6, "html_502": 0.6}, id="shares-over-1"),
        pytest.param(
            {"http_500": 0.5, "operations": "createWithdrawal"}, id="operations-not-a-list"
        ),
        pytest.param({"http_500": 0.5, "limit": -1}, id="negative-limit"),
        pytest.param({"slow": 0.5, "slow_seconds": -1}, id="negative-slow-seconds"),
    ],
)
def test_invalid_fault_settings_are_400_and_keep_the_previous_mix(sandbox, mix):
    previous = sandbox.faults(graphql_error=0.25, operations=["quote"], limit=3)
    response = sandbox.control("faults", mix)
    assert response.status_code == 400, response.text
    assert "error" in response.json()
    assert sandbox.control("faults").json() == previous
