from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from harness import API_EMAIL, API_PASSWORD, wait_until

from flashfx import types
from flashfx.client import FlashFXClient
from flashfx.tokens import MemoryTokenStore

# Every public method against the sandbox, and what comes back: the dataclasses of
# flashfx/types.py, money as exact Decimals (docs/flashfx.md §2.4), datetimes aware UTC.

RECIPIENT = {"accountIdType": "BSB", "currency": "AUD", "bsb": "062000", "accountNo": "12345678"}
RECIPIENT |= {"firstName": "Mia", "lastName": "Ng", "externalId": "rcp-mia"}
GBP_RECIPIENT = {
    "accountIdType": "IBAN",
    "currency": "GBP",
    "iban": "GB29NWBK60161331926819",
    "firstName": "Oliver",
    "lastName": "Bennett",
}
SENDER = {
    "firstName": "Lena",
    "lastName": "Fischer",
    "email": "lena@example.de",
    "externalId": "snd-lena",
    "address": {"street": "Hauptstr 5", "suburb": "Berlin", "postcode": "10115", "country": "DE"},
}
SUB_CLIENT = {
    "firstName": "Ada",
    "lastName": "Lovelace",
    "email": "ada@example.com",
    "dob": "1985-12-10",
    "externalId": "sc-ada",
    "address": {
        "streetNo": "1",
        "street": "George St",
        "suburb": "Sydney",
        "state": "NSW",
        "postcode": "2000",
        "country": "AU",
    },
}
UNKNOWN_ID = "65f0c0ffee0000000000e001"


@pytest.fixture
def client(sandbox):
    sandbox.configure(login_interval_seconds=0.0)
    with FlashFXClient(
        sandbox.url,
        API_EMAIL,
        API_PASSWORD,
        token_store=MemoryTokenStore(),
        connect_timeout=2,
        read_timeout=10,
    ) as client:
        yield client


def assert_no_float(value) -> None:
    """Nowhere in a result, nested payloads included, is there a float."""
    if dataclasses.is_dataclass(value):
        for field in dataclasses.fields(value):
            assert_no_float(getattr(value, field.name))
    elif isinstance(value, dict):
        for item in value.values():
            assert_no_float(item)
    elif isinstance(value, list | tuple):
        for item in value:
            assert_no_float(item)
    else:
        assert not isinstance(value, float), value


def assert_utc(moment: datetime | None) -> None:
    assert moment is not None and moment.tzinfo is not None
    assert moment.utcoffset() == timedelta(0)


def test_decimal_amounts_survive_the_round_trip_exactly(sandbox, client):
    sandbox.fund("100.00")
    (before,) = client.balances(["AUD"])

    first = client.create_withdrawal(
        {"amount": Decimal("0.1"), "currency": "AUD", "recipient": RECIPIENT, "externalId": "a"}
    )
    second = client.create_withdrawal(
        {"amount": Decimal("0.2"), "currency": "AUD", "recipient": RECIPIENT, "externalId": "b"}
    )

    assert (first.amount, second.amount) == (Decimal("0.1"), Decimal("0.2"))
    assert type(first.amount) is Decimal and type(first.total_fee) is Decimal
    read_back = {w.external_id: w.amount for w in client.withdrawals()}
    assert read_back == {"a": Decimal("0.1"), "b": Decimal("0.2")}
    assert client.withdrawal(first.id).amount + client.withdrawal(second.id).amount == Decimal(
        "0.3"
    )
    (after,) = client.balances(["AUD"])
    assert type(after.cleared) is Decimal and type(after.pending) is Decimal
    expected = before.cleared - Decimal("0.1") - Decimal("0.2") - first.total_fee - second.total_fee
    assert after.cleared == expected == Decimal("97.70")
    for result in (before, after, first, second, *client.withdrawals()):
        assert_no_float(result)
    assert_utc(first.created_at)


def test_the_statement_lines_add_up_exactly(sandbox, client):
    sandbox.fund("10.00")
    client.create_withdrawal({"amount": Decimal("0.1"), "currency": "AUD", "recipient": RECIPIENT})

    lines = client.statement(datetime.now(UTC) - timedelta(hours=1))

    assert [line.type for line in lines] == ["DEPOSIT", "WITHDRAWAL", "WITHDRAWAL_FEE"]
    assert all(isinstance(line, types.StatementLine) for line in lines)
    assert sum(line.credit for line in lines) - sum(line.debit for line in lines) == Decimal("8.90")
    (balance,) = client.balances()
    assert lines[-1].balance == balance.cleared == Decimal("8.90")
    for line in lines:
        assert_no_float(line)
        assert_utc(line.created_at)
    assert client.statement((datetime.now(UTC) - timedelta(days=3)).date()) == []


def test_deposits_can_be_listed_read_and_refunded(sandbox, client):
    funding = sandbox.fund("50.25")

    (listed,) = client.deposits()
    assert isinstance(listed, types.Deposit)
    assert (listed.id, listed.amount, listed.status) == (
        funding["id"],
        Decimal("50.25"),
        "CONFIRMED",
    )
    assert client.deposit(funding["id"]) == listed
    assert client.deposit(UNKNOWN_ID) is None
    assert_utc(listed.cleared_at)

    refunded = client.refund_deposit(listed.id, amount=Decimal("0.25"), reason="paid twice")

    assert (refunded.status, refunded.refund_amount) == ("REFUNDING", Decimal("0.25"))
    assert refunded.refund_reason == "paid twice"
    assert client.deposits(statuses=["CONFIRMED"]) == []
    assert_no_float(refunded)


def test_withdrawals_can_be_filtered_by_time_and_status(sandbox, client):
    sandbox.fund("100.00")
    created = client.create_withdrawal(
        {"amount": Decimal("12.34"), "currency": "AUD", "recipient": RECIPIENT}
    )
    now = datetime.now(UTC)

    assert [w.id for w in client.withdrawals(minCreatedAt=now - timedelta(minutes=5))] == [
        created.id
    ]
    assert client.withdrawals(maxCreatedAt=now - timedelta(minutes=5)) == []
    settled = wait_until(lambda: client.withdrawals(statuses=["CONFIRMED"]), what="payout to clear")
    assert [w.id for w in settled] == [created.id]
    assert_utc(settled[0].cleared_at)
    assert client.withdrawal(UNKNOWN_ID) is None


def test_payments_and_quotes(sandbox, client):
    sandbox.fund("5000.00")
    quote = client.quote({"fromCurrency": "AUD", "toCurrency": "GBP", "size": Decimal("1000")})
    assert isinstance(quote, types.Quote) and quote.symbol == "AUDGBP"
    assert type(quote.bid) is Decimal and quote.bid < quote.ask
    assert_utc(quote.timestamp)

    payment = client.create_payment(
        {
            "fromCurrency": "AUD",
            "toCurrency": "GBP",
            "size": Decimal("1000.10"),
            "currency": "AUD",
            "reason": "BUSINESS",
            "sourceOfFunds": "BUSINESS_FUNDS",
            "recipient": GBP_RECIPIENT,
            "externalId": "pay-1",
        }
    )

    assert isinstance(payment, types.Payment)
    assert (payment.size, payment.from_amount) == (Decimal("1000.10"), Decimal("1000.10"))
    assert client.payment(payment.id).external_id == "pay-1"
    assert [p.id for p in client.payments(toCurrencies=["GBP"])] == [payment.id]
    assert client.payment(UNKNOWN_ID) is None
    (balance,) = client.balances(["AUD"])
    assert balance.cleared == Decimal("5000.00") - Decimal("1000.10")
    assert_no_float(payment)


def test_senders_round_trip(client):
    created = client.create_sender(SENDER)
    assert isinstance(created, types.Sender)
    assert (created.first_name, created.country, created.external_id) == ("Lena", "DE", "snd-lena")
    assert client.sender(created.id) == created
    assert [s.id for s in client.senders(email="lena@example.de")] == [created.id]

    updated = client.update_sender(created.id, {"lastName": "Fischer-Braun"})
    assert updated.last_name == "Fischer-Braun"

    deleted = client.delete_sender(created.id)
    assert deleted.id == created.id
    assert client.sender(created.id) is None
    assert client.senders() == []


def test_recipients_round_trip(client):
    created = client.create_recipient(RECIPIENT)
    assert isinstance(created, types.Recipient)
    assert (created.display_name, created.bsb, created.account_id_type) == (
        "Mia Ng",
        "062000",
        "BSB",
    )
    assert client.recipient(created.id) == created
    assert [r.id for r in client.recipients(bsb="062000")] == [created.id]

    updated = client.update_recipient(created.id, {"email": "mia@example.com"})
    assert updated.email == "mia@example.com"

    client.delete_recipient(created.id)
    assert client.recipient(created.id) is None


def test_sub_clients_and_their_deposits(sandbox, client):
    created = client.create_sub_client(SUB_CLIENT)
    assert isinstance(created, types.SubClient)
    assert (created.status, created.external_id) == ("INITIATED", "sc-ada")
    active = wait_until(
        lambda: (sc := client.sub_client(created.id)) and sc.status == "ACTIVE" and sc,
        what="the sub-client to become ACTIVE",
    )
    assert active.bsb == "802919" and active.account_no
    assert [s.id for s in client.sub_clients(externalId="sc-ada")] == [created.id]

    sandbox.receive_deposit("12.34", subClientId=created.id)
    (deposit,) = client.deposits(subClientId=created.id)
    assert deposit.sub_client_id == created.id and deposit.amount == Decimal("12.34")
