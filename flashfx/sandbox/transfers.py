"""Deposits, withdrawals, payments and quotes: the money-moving operations (docs/flashfx.md §3.2, §3.3, §3.6, §3.7)."""

from __future__ import annotations

import hashlib
import json
import secrets
from datetime import timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.db import transaction
from django.utils import timezone

from . import conf, ledger, machines, parties, validation, wire
from .errors import BadUserInput, BusinessFailure
from .models import (
    Balance,
    Deposit,
    IdempotencyRecord,
    LedgerEntry,
    Payment,
    Quote,
    Recipient,
    Sender,
    Withdrawal,
)

IDEMPOTENCY_TTL = timedelta(hours=24)  # decision §5.13
QUOTE_TTL = timedelta(seconds=120)  # decision §5.26
QUOTE_SPREAD = Decimal("0.005")
# Mid rates: units of the currency per 1 AUD. Fixtures, not markets; crosses go through AUD.
AUD_RATES = {
    "AUD": "1",
    "USD": "0.6550",
    "EUR": "0.6010",
    "GBP": "0.5170",
    "NZD": "1.0950",
    "SGD": "0.8720",
    "CAD": "0.9010",
    "CHF": "0.5720",
    "HKD": "5.1000",
    "CNY": "4.7400",
    "JPY": "98.50",
    "AED": "2.4050",
    "PHP": "37.950",
    "INR": "55.300",
    "MXN": "12.150",
    "IDR": "10450",
    "THB": "23.100",
    "VND": "16600",
    "KRW": "905.00",
    "MYR": "3.0400",
    "ZAR": "11.950",
    "SEK": "7.0100",
    "NOK": "7.1200",
    "DKK": "4.4800",
    "PLN": "2.6000",
    "FJD": "1.4700",
    "PGK": "2.5600",
    "WST": "1.7800",
    "XPF": "71.700",
    "LKR": "196.00",
    "NPR": "88.400",
    "PKR": "183.00",
    "BDT": "79.800",
    "KES": "84.600",
    "NGN": "1010.0",
    "BRL": "3.5600",
    "CLP": "615.00",
    "COP": "2650.0",
    "PEN": "2.4500",
    "TRY": "22.400",
    "ILS": "2.4200",
    "SAR": "2.4600",
    "QAR": "2.3900",
    "EGP": "32.100",
    "CZK": "15.100",
    "HUF": "236.00",
    "RON": "2.9900",
    "BGN": "1.1750",
    "UAH": "27.100",
    "TWD": "21.100",
}


# --- Shared -----------------------------------------------------------------------------------


def _list(queryset, filters: dict, *, status_field: str = "status") -> list:
    """statuses (one or many), subClientId, externalId, min/maxCreatedAt (decision §5.12)."""
    if filters.get("statuses"):
        queryset = queryset.filter(**{f"{status_field}__in": filters["statuses"]})
    if filters.get("subClientId"):
        queryset = queryset.filter(
            sub_client_id=validation.object_id("input.subClientId", filters["subClientId"])
        )
    if filters.get("externalId"):
        queryset = queryset.filter(external_id=filters["externalId"])
    if filters.get("toCurrencies"):
        queryset = queryset.filter(to_currency__in=filters["toCurrencies"])
    return list(validation.created_between(queryset, filters).select_related("sub_client"))


def _get(model, entity_id: Any):
    validation.object_id("id", entity_id)
    return model.objects.select_related("sub_client").filter(pk=entity_id).first()


def _fingerprint(data: dict) -> str:
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _replay(mutation: str, key: str | None, data: dict, model):
    """The entity an earlier call with this key created, or None (decision §5.13).

    Same key and same input: the original entity, nothing done again. Same key, other input:
    refused. Only successful creations are remembered, for 24 hours.
    """
    if not key:
        return None
    IdempotencyRecord.objects.filter(created_at__lt=timezone.now() - IDEMPOTENCY_TTL).delete()
    record = IdempotencyRecord.objects.filter(mutation=mutation, key=key).first()
    if record is None:
        return None
    if record.fingerprint != _fingerprint(data):
        raise BusinessFailure(
            "DUPLICATE_IDEMPOTENCY_KEY",
            f"idempotencyKey {key!r} was already used with different input",
        )
    return model.objects.select_related("sub_client").get(pk=record.entity_id)


def _remember(mutation: str, key: str | None, data: dict, entity_id: str) -> None:
    if key:
        IdempotencyRecord.objects.create(
            mutation=mutation, key=key, fingerprint=_fingerprint(data), entity_id=entity_id
        )


def _parties(field: str, data: dict) -> tuple[dict | None, dict, Any]:
    """Resolve sender / recipient / sub-client references into stored snapshots."""
    sender_choices = [k for k in ("senderId", "sender", "subClientId") if data.get(k) is not None]
    if len(sender_choices) > 1:
        raise BadUserInput(
            f"{field}.{sender_choices[1]}",
            f"give only one of senderId, sender or subClientId, not {' and '.join(sender_choices)}",
        )
    sender = None
    if data.get("senderId") is not None:
        validation.object_id(f"{field}.senderId", data["senderId"])
        stored = Sender.objects.filter(pk=data["senderId"]).first()
        if stored is None:
            raise BadUserInput(f"{field}.senderId", f"no sender {data['senderId']}")
        sender = parties.sender_to_graphql(stored)
    elif data.get("sender") is not None:
        sender = parties.sender_inline(validation.sender(f"{field}.sender", data["sender"]))
    sub_client = parties.sub_client_get(data.get("subClientId"), f"{field}.subClientId")

    if (data.get("recipientId") is None) == (data.get("recipient") is None):
        raise BadUserInput(f"{field}.recipientId", "give exactly one of recipientId or recipient")
    if data.get("recipientId") is not None:
        validation.object_id(f"{field}.recipientId", data["recipientId"])
        stored = Recipient.objects.filter(pk=data["recipientId"]).first()
        if stored is None:
            raise BadUserInput(f"{field}.recipientId", f"no recipient {data['recipientId']}")
        recipient = parties.recipient_to_graphql(stored)
    else:  # inline: not stored, id null (§3.3.1)
        recipient = {**parties.recipient_data(f"{field}.recipient", data["recipient"]), "id": None}
    return sender, recipient, sub_client


# --- Deposits ---------------------------------------------------------------------------------


def deposit_to_graphql(d: Deposit) -> dict[str, Any]:
    return {
        "id": d.id,
        "amount": d.amount,
        "currency": d.currency,
        "status": d.status,
        "statusMessage": d.status_message,
        "externalId": d.external_id,
        "externalReference": d.external_reference,
        "subClient": parties.sub_client_to_graphql(d.sub_client) if d.sub_client else None,
        "totalFee": d.total_fee,
        "createdAt": wire.timestamp(d.created_at),
        "clearedAt": wire.timestamp(d.cleared_at),
        "refundAmount": d.refund_amount,
        "refundReason": d.refund_reason or None,
        "refundedAt": wire.timestamp(d.refunded_at),
        "sender": d.sender,
        "recipient": d.recipient,
        "rail": d.rail,
        "railService": d.rail_service,
    }


def deposit_receive(data: dict) -> Deposit:
    """An incoming bank transfer, like FlashConnect's "Send test deposit" (§3.2).

    INITIALISED (pending balance), then CONFIRMED by the clock, or REVIEWING when `review` is set.
    """
    validation.strings("deposit", data)
    amount = validation.amount("amount", data.get("amount"))
    currency = data.get("currency") or "AUD"
    if currency != "AUD":
        raise BadUserInput("currency", "deposits are local AUD transfers only (§3.2)")
    reference = data.get("externalReference") or ""
    validation.text("externalReference", reference, max_length=280)
    sender = data.get("sender") or {}
    if not isinstance(sender, dict):
        raise BadUserInput("sender", "must be an object")
    validation.required("sender.accountName", sender.get("accountName"))
    if sender.get("bsb") is not None and not validation.BSB.match(sender["bsb"]):
        raise BadUserInput("sender.bsb", "must be exactly 6 digits")
    if sender.get("accountNo") is not None and not validation.ACCOUNT_NO.match(sender["accountNo"]):
        raise BadUserInput("sender.accountNo", "must be 4 to 34 letters or digits")
    sub_client = parties.sub_client_get(data.get("subClientId"), "subClientId")
    if sub_client is not None and sub_client.status in ("DEACTIVATED", "DISABLED"):
        raise BadUserInput(
            "subClientId",
            "deposits to a deactivated or disabled sub-client are not booked (§3.9.3)",
        )
    account = (
        {
            "accountName": sub_client.full_name,
            "bsb": sub_client.bsb,
            "accountNo": sub_client.account_no,
        }
        if sub_client
        else {
            "accountName": "Sandbox Client Pty Ltd",
            "bsb": parties.VAN_BSB,
            "accountNo": "1000000",
        }
    )
    with transaction.atomic():
        deposit = Deposit.objects.create(
            status="INITIALISED",
            status_message=machines.DEPOSIT_MESSAGES["INITIALISED"],
            amount=amount,
            currency=currency,
            total_fee=Decimal(conf.get_config()["deposit_fee"]),
            external_id=f"PR.{secrets.token_hex(2)}",
            external_reference=reference,
            sub_client=sub_client,
            sender={
                "accountName": sender.get("accountName"),
                "companyName": sender.get("companyName"),
                "bankName": sender.get("bankName") or "Sandbox Bank",
                "bankCountry": "AU",
                "bsb": sender.get("bsb"),
                "accountNo": sender.get("accountNo"),
            },
            recipient=account,
            rail="NPP",
            rail_service="NPP",
        )
        ledger.add_pending(currency, amount)
        machines.start(deposit, ["REVIEWING"] if data.get("review") else ["CONFIRMED"])
    return deposit


def deposits_import(data: dict) -> dict[str, Any]:
    """History for benchmarks and sync tests: `count` CONFIRMED deposits whose createdAt are
    spread evenly over [createdFrom, createdTo], written in bulk, with their ledger lines and
    balance, and no webhooks (they happened before anyone listened).
    """
    count = data.get("count")
    if not isinstance(count, int) or isinstance(count, bool) or not 1 <= count <= 200_000:
        raise BadUserInput("count", "must be a whole number from 1 to 200000")
    amount = validation.amount("amount", data.get("amount", "10.00"))
    start = validation.timestamp("createdFrom", data.get("createdFrom"))
    end = validation.timestamp("createdTo", data.get("createdTo"))
    if start is None or end is None or end < start:
        raise BadUserInput("createdTo", "createdFrom and createdTo are required, createdFrom first")
    step = (end - start) / max(count - 1, 1)
    with transaction.atomic():
        balance = Balance.objects.select_for_update().get_or_create(currency="AUD")[0]
        deposits, lines = [], []
        for n in range(count):
            created_at = start + step * n
            deposit = Deposit(
                status="CONFIRMED",
                status_message=machines.DEPOSIT_MESSAGES["CONFIRMED"],
                amount=amount,
                currency="AUD",
                total_fee=Decimal("0.00"),
                external_id=f"PR.{n:x}",
                external_reference=f"Imported {n}",
                created_at=created_at,
                cleared_at=created_at,
                sender={
                    "accountName": "History Payer",
                    "bankName": "Sandbox Bank",
                    "bankCountry": "AU",
                    "bsb": "062000",
                    "accountNo": "11112222",
                },
                recipient={
                    "accountName": "Sandbox Client Pty Ltd",
                    "bsb": parties.VAN_BSB,
                    "accountNo": "1000000",
                },
                rail="NPP",
                rail_service="NPP",
            )
            balance.cleared += amount
            deposits.append(deposit)
            lines.append(
                LedgerEntry(
                    currency="AUD",
                    kind="DEPOSIT",
                    description=deposit.external_reference,
                    transaction_id=deposit.id,
                    credit=amount,
                    balance_after=balance.cleared,
                    created_at=created_at,
                )
            )
        Deposit.objects.bulk_create(deposits, batch_size=1000)
        LedgerEntry.objects.bulk_create(lines, batch_size=1000)
        balance.save(update_fields=["cleared"])
    return {"created": count, "cleared": balance.cleared}


def deposit_refund(deposit_id: Any, data: dict | None) -> Deposit:
    """CONFIRMED -> REFUNDING (cleared balance debited), then REFUNDED by the clock (decision §5.23)."""
    data = data or {}
    validation.object_id("id", deposit_id)
    validation.strings("input", data)
    amount = validation.amount("input.amount", data.get("amount"), is_required=False)
    validation.text("input.reason", data.get("reason"), max_length=280)
    with transaction.atomic():
        deposit = Deposit.objects.select_related("sub_client").filter(pk=deposit_id).first()
        if deposit is None:
            raise BusinessFailure("NOT_FOUND", f"Deposit {deposit_id} not found")
        if deposit.status != "CONFIRMED":
            raise BusinessFailure(
                "INVALID_STATUS",
                f"Only a CONFIRMED deposit can be refunded; this one is {deposit.status}",
            )
        amount = amount or deposit.amount
        if amount > deposit.amount:
            raise BusinessFailure(
                "INVALID_AMOUNT", f"Refund {amount} is more than the deposit's {deposit.amount}"
            )
        deposit.plan = ["REFUNDED"]
        machines.transition(
            deposit, "REFUNDING", refund_amount=amount, refund_reason=data.get("reason")
        )
    return deposit


def deposits_list(filters: dict) -> list[Deposit]:
    return _list(Deposit.objects.all(), filters)


def deposit_get(deposit_id: Any) -> Deposit | None:
    return _get(Deposit, deposit_id)


# --- Withdrawals ------------------------------------------------------------------------------


def withdrawal_to_graphql(w: Withdrawal) -> dict[str, Any]:
    return {
        "id": w.id,
        "status": w.status,
        "statusMessage": w.status_message,
        "rejectCode": w.reject_code or None,
        "amount": w.amount,
        "currency": w.currency,
        "totalFee": w.total_fee,
        "sender": w.sender,
        "recipient": w.recipient,
        "subClient": parties.sub_client_to_graphql(w.sub_client) if w.sub_client else None,
        "externalId": w.external_id or None,
        "externalReference": w.external_reference or None,
        "callbackUri": w.callback_uri or None,
        "reason": w.reason or None,
        "createdAt": wire.timestamp(w.created_at),
        "clearedAt": wire.timestamp(w.cleared_at),
        "rejectedAt": wire.timestamp(w.rejected_at),
        "refundedAt": wire.timestamp(w.refunded_at),
        "refundAmount": w.refund_amount,
        "refundReason": w.refund_reason or None,
        "rail": w.rail,
        "railService": w.rail_service,
    }


def withdrawal_create(data: dict) -> Withdrawal:
    """A payout: INITIALISED with amount + fee debited at once (§3.3.3), then the clock's path.

    The path is the happy one unless a UAT keyword in externalReference picks another (§3.3.6).
    """
    validation.strings("input", data)
    amount = validation.amount("input.amount", data.get("amount"))
    validation.required("input.currency", data.get("currency"))
    if data["currency"] != "AUD":
        raise BadUserInput(
            "input.currency", "payouts are local AUD payouts; use createPayment abroad"
        )
    validation.text("input.externalId", data.get("externalId"), max_length=200)
    validation.text("input.callbackUri", data.get("callbackUri"), max_length=2000)
    sender, recipient, sub_client = _parties("input", data)
    if recipient["accountIdType"] not in ("BSB", "PAYID"):
        raise BadUserInput(
            "input.recipient.accountIdType", "an AUD payout goes to a BSB or PAYID account"
        )
    # Decision (§2.2): BSB payouts go by Direct Entry, whose reference holds 18 characters (the
    # bank would cut the rest); PayID goes by NPP, 280 characters.
    rail = "NPP" if recipient["accountIdType"] == "PAYID" else "BECS"
    reference = data.get("externalReference") or ""
    validation.text("input.externalReference", reference, max_length=18 if rail == "BECS" else 280)
    key = data.get("idempotencyKey")
    with transaction.atomic():
        if (original := _replay("createWithdrawal", key, data, Withdrawal)) is not None:
            return original
        fee = Decimal(conf.get_config()["withdrawal_fee"])
        ledger.require_funds("AUD", amount + fee)
        withdrawal = Withdrawal.objects.create(
            status="INITIALISED",
            status_message=machines.WITHDRAWAL_MESSAGES["INITIALISED"],
            amount=amount,
            currency="AUD",
            total_fee=fee,
            sender=sender,
            recipient=recipient,
            sub_client=sub_client,
            external_id=data.get("externalId") or "",
            external_reference=reference,
            callback_uri=data.get("callbackUri") or "",
            reason=data.get("reason") or "",
            rail=rail,
            rail_service="NPP" if rail == "NPP" else "DE",
        )
        ledger.debit(
            "AUD",
            amount,
            kind="WITHDRAWAL",
            description=f"Payout {reference}".strip(),
            transaction_id=withdrawal.id,
        )
        ledger.debit(
            "AUD",
            fee,
            kind="WITHDRAWAL_FEE",
            description=f"Payout fee {withdrawal.id}",
            transaction_id=withdrawal.id,
        )
        _remember("createWithdrawal", key, data, withdrawal.id)
        machines.start(withdrawal, machines.withdrawal_plan(reference))
    return withdrawal


def withdrawals_list(filters: dict) -> list[Withdrawal]:
    return _list(Withdrawal.objects.all(), filters)


def withdrawal_get(withdrawal_id: Any) -> Withdrawal | None:
    return _get(Withdrawal, withdrawal_id)


# --- Quotes and payments ----------------------------------------------------------------------


def mid_rate(from_currency: str, to_currency: str) -> Decimal:
    """Units of to_currency per unit of from_currency."""
    for currency, field in (
        (from_currency, "input.fromCurrency"),
        (to_currency, "input.toCurrency"),
    ):
        if currency not in AUD_RATES:
            raise BadUserInput(field, f"{currency} is not traded in the sandbox")
    return Decimal(AUD_RATES[to_currency]) / Decimal(AUD_RATES[from_currency])


def quote_create(data: dict) -> Quote:
    """bid/ask around the fixture mid rate; a tradable quote gets an id that lives 120 s (§5.26)."""
    validation.required("input.toCurrency", data.get("toCurrency"))
    validation.amount("input.size", data.get("size"), is_required=False)
    if data["fromCurrency"] == data["toCurrency"]:
        raise BadUserInput("input.toCurrency", "must differ from fromCurrency")
    mid = mid_rate(data["fromCurrency"], data["toCurrency"])
    tradeable = bool(data.get("tradeable") or data.get("tradable"))
    now = timezone.now()
    quote = Quote(
        symbol=f"{data['fromCurrency']}{data['toCurrency']}",
        bid=(mid * (1 - QUOTE_SPREAD)).quantize(Decimal("0.00000001")),
        ask=(mid * (1 + QUOTE_SPREAD)).quantize(Decimal("0.00000001")),
        applicability=data.get("applicability") or "",
        created_at=now,
        expire_at=now + QUOTE_TTL,
    )
    if tradeable:
        quote.save()
    return quote


def quote_to_graphql(quote: Quote, *, tradeable: bool) -> dict[str, Any]:
    return {
        "id": quote.id if tradeable else None,
        "bid": quote.bid,
        "ask": quote.ask,
        "symbol": quote.symbol,
        "timestamp": wire.timestamp(quote.created_at),
        "inverted": False,
        "expireAt": wire.timestamp(quote.expire_at),
        "applicability": quote.applicability or None,
    }


def _use_quote(quote_id: str, symbol: str) -> Decimal:
    validation.object_id("input.quoteId", quote_id)
    quote = Quote.objects.filter(pk=quote_id).first()
    if quote is None:
        raise BusinessFailure("NOT_FOUND", f"Quote {quote_id} not found")
    if quote.symbol != symbol:
        raise BadUserInput("input.quoteId", f"quote is for {quote.symbol}, not {symbol}")
    now = timezone.now()
    if quote.expire_at <= now or not Quote.objects.filter(pk=quote_id, used_at=None).update(
        used_at=now
    ):
        raise BusinessFailure("QUOTE_EXPIRED", f"Quote {quote_id} has expired or was already used")
    return quote.bid


def payment_to_graphql(p: Payment) -> dict[str, Any]:
    return {
        "id": p.id,
        "status": p.status,
        "size": p.size,
        "currency": p.currency,
        "fromCurrency": p.from_currency,
        "toCurrency": p.to_currency,
        "fromAmount": p.from_amount,
        "toAmount": p.to_amount,
        "sender": p.sender,
        "recipient": p.recipient,
        "subClient": parties.sub_client_to_graphql(p.sub_client) if p.sub_client else None,
        "sourceOfFunds": p.source_of_funds or None,
        "reason": p.reason or None,
        "externalId": p.external_id or None,
        "externalReference": p.external_reference or None,
        "callbackUri": p.callback_uri or None,
        "createdAt": wire.timestamp(p.created_at),
        "history": p.history,
    }


def payment_create(data: dict) -> Payment:
    """OPEN with the from-amount debited (decision §5.24); the clock converts, then closes it."""
    validation.strings("input", data)
    size = validation.amount("input.size", data.get("size"))
    validation.required("input.toCurrency", data.get("toCurrency"))
    from_currency, to_currency = data["fromCurrency"], data["toCurrency"]
    currency = data.get("currency") or from_currency
    if currency not in (from_currency, to_currency):
        raise BadUserInput("input.currency", "must be fromCurrency or toCurrency")
    validation.text("input.externalReference", data.get("externalReference"), max_length=280)
    validation.text("input.externalId", data.get("externalId"), max_length=200)
    validation.text("input.callbackUri", data.get("callbackUri"), max_length=2000)
    sender, recipient, sub_client = _parties("input", data)
    if recipient["currency"] != to_currency:
        raise BadUserInput(
            "input.toCurrency", f"the recipient's account is in {recipient['currency']}"
        )
    key = data.get("idempotencyKey")
    with transaction.atomic():
        if (original := _replay("createPayment", key, data, Payment)) is not None:
            return original
        rate = (
            _use_quote(data["quoteId"], f"{from_currency}{to_currency}")
            if data.get("quoteId")
            else (mid_rate(from_currency, to_currency) * (1 - QUOTE_SPREAD))
        )
        if currency == from_currency:
            from_amount, to_amount = size, (size * rate).quantize(wire.CENT, ROUND_HALF_UP)
        else:
            from_amount, to_amount = (size / rate).quantize(wire.CENT, ROUND_HALF_UP), size
        ledger.require_funds(from_currency, from_amount)
        payment = Payment.objects.create(
            status="OPEN",
            size=size,
            currency=currency,
            from_currency=from_currency,
            to_currency=to_currency,
            from_amount=from_amount,
            to_amount=to_amount,
            rate=rate.quantize(Decimal("0.00000001")),
            sender=sender,
            recipient=recipient,
            sub_client=sub_client,
            source_of_funds=data.get("sourceOfFunds") or "",
            reason=data.get("reason") or "",
            external_id=data.get("externalId") or "",
            external_reference=data.get("externalReference") or "",
            callback_uri=data.get("callbackUri") or "",
            status_message="Scheduled for immediate execution",
            history=[
                {
                    "createdAt": timezone.now().isoformat(),
                    "message": "Scheduled for immediate execution",
                }
            ],
        )
        ledger.debit(
            from_currency,
            from_amount,
            kind="PAYMENT",
            description=f"Payment {payment.id}",
            transaction_id=payment.id,
        )
        _remember("createPayment", key, data, payment.id)
        machines.start(payment, list(machines.PAYMENT_PLAN))
    return payment


def payments_list(filters: dict) -> list[Payment]:
    return _list(Payment.objects.all(), filters)


def payment_get(payment_id: Any) -> Payment | None:
    return _get(Payment, payment_id)
