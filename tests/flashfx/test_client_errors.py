from __future__ import annotations

import socket
from decimal import Decimal

import pytest
from harness import API_EMAIL, API_PASSWORD, wait_until

from flashfx.client import FlashFXClient
from flashfx.errors import FlashFXRejected, FlashFXUnavailable, OutcomeUnknown
from flashfx.tokens import MemoryTokenStore

# Each sandbox fault mode (flashfx/sandbox/README.md "Faults on demand") against the client's
# error classes (flashfx/errors.py): what a query does (retried within its budget), what a
# mutation does (never retried; OutcomeUnknown when it may have taken effect).

RECIPIENT = {"accountIdType": "BSB", "currency": "AUD", "bsb": "062000", "accountNo": "12345678"}
RECIPIENT |= {"firstName": "Mia", "lastName": "Ng"}
EARLY_FAULTS = {  # answered before anything is executed
    "http_500": ("HTTP_500", 500),
    "html_502": ("HTTP_502", 502),
    "rate_limit_429": ("TOO_MANY_REQUESTS", 429),
    "graphql_error": ("INTERNAL_SERVER_ERROR", None),
}


def make_client(url: str, **options) -> FlashFXClient:
    defaults = {
        "connect_timeout": 2,
        "read_timeout": 5,
        "query_retry_budget_seconds": 1.0,
        "backoff_base_seconds": 0.05,
    }
    return FlashFXClient(
        url, API_EMAIL, API_PASSWORD, token_store=MemoryTokenStore(), **(defaults | options)
    )


@pytest.fixture
def funded(sandbox):
    sandbox.configure(login_interval_seconds=0.0)
    sandbox.fund("1000.00")
    return sandbox


@pytest.fixture
def client(funded):
    with make_client(funded.url) as client:
        client.login()  # before any fault, so that faults hit the call under test
        yield client


def payout(external_id: str, amount: str = "25.00") -> dict:
    return {
        "amount": Decimal(amount),
        "currency": "AUD",
        "recipient": RECIPIENT,
        "externalId": external_id,
        "idempotencyKey": external_id,
    }


def withdrawals_with(client: FlashFXClient, external_id: str) -> list:
    return client.withdrawals(externalId=external_id)


@pytest.mark.parametrize("mode", EARLY_FAULTS)
def test_a_mutation_that_meets_an_early_fault_is_unavailable_and_not_retried(funded, client, mode):
    code, status = EARLY_FAULTS[mode]
    funded.faults(**{mode: 1.0, "retry_after_seconds": 0}, operations=["createWithdrawal"])

    with pytest.raises(FlashFXUnavailable) as raised:
        client.create_withdrawal(payout(f"early-{mode}"))

    assert (raised.value.code, raised.value.status_code) == (code, status)
    assert raised.value.operation == "CreateWithdrawal"
    assert client.stats.retries == 0
    funded.faults()
    assert withdrawals_with(client, f"early-{mode}") == []  # nothing was executed


@pytest.mark.parametrize("mode", EARLY_FAULTS)
def test_a_query_that_keeps_meeting_an_early_fault_is_retried_then_unavailable(
    funded, client, mode
):
    code, _ = EARLY_FAULTS[mode]
    funded.faults(**{mode: 1.0, "retry_after_seconds": 0}, operations=["balances"])

    with pytest.raises(FlashFXUnavailable) as raised:
        client.balances()

    assert raised.value.code == code
    assert client.stats.retries >= 1


@pytest.mark.parametrize("mode", EARLY_FAULTS)
def test_a_query_that_meets_one_early_fault_succeeds_on_retry(funded, client, mode):
    funded.faults(**{mode: 1.0, "retry_after_seconds": 0}, operations=["balances"], limit=1)

    (balance,) = client.balances()

    assert balance.cleared == Decimal("1000.00")
    assert client.stats.retries == 1


def test_a_429_carries_its_retry_after_and_is_not_retried_beyond_the_budget(funded, client):
    funded.faults(rate_limit_429=1.0, retry_after_seconds=7, operations=["balances"])

    with pytest.raises(FlashFXUnavailable) as raised:
        client.balances()

    assert raised.value.retry_after == 7.0 and raised.value.status_code == 429
    assert client.stats.retries == 0  # waiting 7 s would exceed the 1 s budget


def test_a_slow_query_times_out_and_is_unavailable_after_its_budget(funded):
    # Generous margins (1 s timeout, 3 s delay) so a busy machine's slow login is not mistaken for it.
    with make_client(funded.url, read_timeout=1.0, query_retry_budget_seconds=0.5) as client:
        client.login()
        funded.faults(slow=1.0, slow_seconds=3.0, operations=["balances"])
        with pytest.raises(FlashFXUnavailable) as raised:
            client.balances()
    assert raised.value.code == "READ_TIMEOUT"


def test_a_slow_mutation_is_outcome_unknown_and_did_take_effect(funded):
    with make_client(funded.url, read_timeout=1.0) as client:
        client.login()
        funded.faults(slow=1.0, slow_seconds=3.0, operations=["createWithdrawal"], limit=1)

        with pytest.raises(OutcomeUnknown) as raised:
            client.create_withdrawal(payout("slow-1"))

        assert raised.value.code == "READ_TIMEOUT"
        assert client.stats.retries == 0
        (created,) = wait_until(lambda: withdrawals_with(client, "slow-1"), timeout=10)
        assert created.amount == Decimal("25.00")


def test_commit_then_drop_is_outcome_unknown_and_the_withdrawal_exists(funded, client):
    funded.faults(commit_then_drop=1.0, operations=["createWithdrawal"], limit=1)

    with pytest.raises(OutcomeUnknown) as raised:
        client.create_withdrawal(payout("dropped-1"))

    assert raised.value.code in {"CONNECTION_CLOSED", "READ_ERROR"}
    (created,) = withdrawals_with(client, "dropped-1")
    assert created.amount == Decimal("25.00")
    (balance,) = client.balances()
    assert balance.cleared == Decimal("1000.00") - Decimal("25.00") - created.total_fee
    # Repeating it with the same idempotencyKey returns the same withdrawal, not a second one.
    assert client.create_withdrawal(payout("dropped-1")).id == created.id
    assert len(client.withdrawals()) == 1


def test_a_query_whose_connection_drops_is_retried(funded, client):
    funded.faults(commit_then_drop=1.0, operations=["balances"], limit=1)

    (balance,) = client.balances()

    assert balance.cleared == Decimal("1000.00")
    assert client.stats.retries == 1


def _closed_port() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}/"


def test_no_connection_is_unavailable_even_for_a_mutation(funded):
    """A connect error means nothing reached FlashFX: safe to retry, so not OutcomeUnknown."""
    store = MemoryTokenStore()
    with make_client(funded.url) as online:
        store.put(online.login())
    offline = FlashFXClient(
        _closed_port(), API_EMAIL, API_PASSWORD, token_store=store, connect_timeout=1
    )
    with offline, pytest.raises(FlashFXUnavailable) as raised:
        offline.create_withdrawal(payout("offline-1"))
    assert raised.value.code == "CONNECT_ERROR"


def test_insufficient_funds_is_rejected_with_its_code(funded, client):
    with pytest.raises(FlashFXRejected) as raised:
        client.create_withdrawal(payout("too-much", "5000.00"))
    assert raised.value.code == "INSUFFICIENT_FUNDS"
    assert raised.value.operation == "CreateWithdrawal"
    assert withdrawals_with(client, "too-much") == []


def test_the_same_idempotency_key_with_other_input_is_rejected(funded, client):
    first = client.create_withdrawal(payout("key-1", "10.00"))
    assert client.create_withdrawal(payout("key-1", "10.00")).id == first.id  # a replay

    with pytest.raises(FlashFXRejected) as raised:
        client.create_withdrawal(payout("key-1", "11.00"))

    assert raised.value.code == "DUPLICATE_IDEMPOTENCY_KEY"
    assert [w.id for w in client.withdrawals()] == [first.id]


def test_bad_user_input_is_rejected_naming_the_field(funded, client):
    with pytest.raises(FlashFXRejected) as raised:
        client.create_withdrawal(payout("bad-bsb") | {"recipient": RECIPIENT | {"bsb": "12"}})
    assert raised.value.code == "BAD_USER_INPUT"
    assert raised.value.field == "input.recipient.bsb"

    with pytest.raises(FlashFXRejected) as raised:
        client.withdrawal("not-an-object-id")
    assert (raised.value.code, raised.value.field) == ("BAD_USER_INPUT", "id")


def test_business_failures_of_other_mutations_keep_their_codes(funded, client):
    (deposit,) = client.deposits()
    with pytest.raises(FlashFXRejected) as raised:
        client.refund_deposit(deposit.id, amount=Decimal("1000.01"))
    assert raised.value.code == "INVALID_AMOUNT"

    with pytest.raises(FlashFXRejected) as raised:
        client.update_sender("65f0c0ffee0000000000e001", {"firstName": "Nobody"})
    assert raised.value.code == "NOT_FOUND"


def test_floats_and_naive_datetimes_are_refused_before_anything_is_sent(funded, client):
    from datetime import datetime

    with pytest.raises(TypeError):
        client.create_withdrawal(payout("float") | {"amount": 0.1})
    with pytest.raises(ValueError):
        client.withdrawals(minCreatedAt=datetime(2026, 1, 1))  # noqa: DTZ001 (the point)
    assert withdrawals_with(client, "float") == []
