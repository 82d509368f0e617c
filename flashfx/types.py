"""What the client returns: small typed objects, money as Decimal, times as aware UTC.

Each keeps the payload it was read from (`raw`, JSON-ready) so that mirrors can store it.
Statuses, reject codes and other enums stay plain strings: FlashFX says its lists "may grow"
(docs/flashfx.md §3.3.4), and an unknown value must be stored and flagged, never dropped.
No Django here: flashfx/ is the provider's side of the boundary.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any


def to_decimal(value: Any) -> Decimal | None:
    """A JSON number (read as Decimal or int by the client) as a Decimal; never via float."""
    if value is None:
        return None
    if isinstance(value, float):  # only if a caller parsed JSON without parse_float=Decimal
        raise TypeError("amounts must be parsed as Decimal, not float")
    return Decimal(value) if not isinstance(value, Decimal) else value


def required_decimal(value: Any, field: str) -> Decimal:
    """An amount the schema says is always there: a null is FlashFX breaking its contract,
    reported by name, never mirrored as a missing amount."""
    amount = to_decimal(value)
    if amount is None:
        raise ValueError(f"FlashFX sent no {field}")
    return amount


def to_datetime(value: str | None) -> datetime | None:
    """ISO-8601 from FlashFX ("2026-03-03T01:25:11.984Z") as an aware UTC datetime."""
    if not value:
        return None
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


_AS_IS = frozenset({str, int, bool, type(None), float})


def json_ready(value: Any) -> Any:
    """The raw payload with Decimals as strings, so it can go into a JSONField unchanged.

    Called on every row a sync reads: the common leaves (text, numbers, null) are kept
    without a call each.
    """
    kind = type(value)
    if kind is dict:
        return {k: v if type(v) in _AS_IS else json_ready(v) for k, v in value.items()}
    if kind is list:
        return [v if type(v) in _AS_IS else json_ready(v) for v in value]
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict):
        return {k: json_ready(v) for k, v in value.items()}
    if isinstance(value, list):
        return [json_ready(v) for v in value]
    return value


def _sub_client_id(data: dict) -> str | None:
    return (data.get("subClient") or {}).get("id")


@dataclass(frozen=True)
class Balance:
    currency: str
    cleared: Decimal
    pending: Decimal

    @classmethod
    def from_wire(cls, data: dict) -> Balance:
        return cls(
            data["currency"],
            to_decimal(data["cleared"]) or Decimal(0),
            to_decimal(data["pending"]) or Decimal(0),
        )


@dataclass(frozen=True)
class StatementLine:
    id: str | None
    created_at: datetime | None
    currency: str | None
    type: str | None
    description: str | None
    transaction_id: str | None
    debit: Decimal
    credit: Decimal
    balance: Decimal | None
    raw: dict = field(repr=False, compare=False)

    @classmethod
    def from_wire(cls, data: dict) -> StatementLine:
        return cls(
            id=data.get("id"),
            created_at=to_datetime(data.get("createdAt")),
            currency=data.get("currency"),
            type=data.get("type"),
            description=data.get("description"),
            transaction_id=data.get("transactionId"),
            debit=to_decimal(data.get("debit")) or Decimal(0),
            credit=to_decimal(data.get("credit")) or Decimal(0),
            balance=to_decimal(data.get("balance")),
            raw=json_ready(data),
        )


@dataclass(frozen=True)
class Deposit:
    id: str
    status: str
    status_message: str | None
    amount: Decimal
    currency: str
    total_fee: Decimal | None
    external_id: str | None
    external_reference: str | None
    sub_client_id: str | None
    created_at: datetime | None
    cleared_at: datetime | None
    refund_amount: Decimal | None
    refund_reason: str | None
    refunded_at: datetime | None
    sender: dict
    recipient: dict
    rail: str | None
    rail_service: str | None
    raw: dict = field(repr=False, compare=False)

    @classmethod
    def from_wire(cls, data: dict) -> Deposit:
        return cls(
            id=data["id"],
            status=data["status"],
            status_message=data.get("statusMessage"),
            amount=required_decimal(data["amount"], "amount"),
            currency=data["currency"],
            total_fee=to_decimal(data.get("totalFee")),
            external_id=data.get("externalId"),
            external_reference=data.get("externalReference"),
            sub_client_id=_sub_client_id(data),
            created_at=to_datetime(data.get("createdAt")),
            cleared_at=to_datetime(data.get("clearedAt")),
            refund_amount=to_decimal(data.get("refundAmount")),
            refund_reason=data.get("refundReason"),
            refunded_at=to_datetime(data.get("refundedAt")),
            sender=data.get("sender") or {},
            recipient=data.get("recipient") or {},
            rail=data.get("rail"),
            rail_service=data.get("railService"),
            raw=json_ready(data),
        )


@dataclass(frozen=True)
class Withdrawal:
    id: str
    status: str
    status_message: str | None
    reject_code: str | None
    amount: Decimal
    currency: str
    total_fee: Decimal | None
    external_id: str | None
    external_reference: str | None
    sub_client_id: str | None
    sender: dict | None
    recipient: dict | None
    created_at: datetime | None
    cleared_at: datetime | None
    rejected_at: datetime | None
    refunded_at: datetime | None
    refund_amount: Decimal | None
    refund_reason: str | None
    rail: str | None
    rail_service: str | None
    raw: dict = field(repr=False, compare=False)

    @classmethod
    def from_wire(cls, data: dict) -> Withdrawal:
        return cls(
            id=data["id"],
            status=data["status"],
            status_message=data.get("statusMessage"),
            reject_code=data.get("rejectCode"),
            amount=required_decimal(data["amount"], "amount"),
            currency=data["currency"],
            total_fee=to_decimal(data.get("totalFee")),
            external_id=data.get("externalId"),
            external_reference=data.get("externalReference"),
            sub_client_id=_sub_client_id(data),
            sender=data.get("sender"),
            recipient=data.get("recipient"),
            created_at=to_datetime(data.get("createdAt")),
            cleared_at=to_datetime(data.get("clearedAt")),
            rejected_at=to_datetime(data.get("rejectedAt")),
            refunded_at=to_datetime(data.get("refundedAt")),
            refund_amount=to_decimal(data.get("refundAmount")),
            refund_reason=data.get("refundReason"),
            rail=data.get("rail"),
            rail_service=data.get("railService"),
            raw=json_ready(data),
        )


@dataclass(frozen=True)
class Payment:
    id: str
    status: str
    size: Decimal | None
    currency: str | None
    from_currency: str
    to_currency: str
    from_amount: Decimal | None
    to_amount: Decimal | None
    external_id: str | None
    external_reference: str | None
    sub_client_id: str | None
    sender: dict | None
    recipient: dict | None
    created_at: datetime | None
    raw: dict = field(repr=False, compare=False)

    @classmethod
    def from_wire(cls, data: dict) -> Payment:
        return cls(
            id=data["id"],
            status=data["status"],
            size=to_decimal(data.get("size")),
            currency=data.get("currency"),
            from_currency=data["fromCurrency"],
            to_currency=data["toCurrency"],
            from_amount=to_decimal(data.get("fromAmount")),
            to_amount=to_decimal(data.get("toAmount")),
            external_id=data.get("externalId"),
            external_reference=data.get("externalReference"),
            sub_client_id=_sub_client_id(data),
            sender=data.get("sender"),
            recipient=data.get("recipient"),
            created_at=to_datetime(data.get("createdAt")),
            raw=json_ready(data),
        )


@dataclass(frozen=True)
class Quote:
    id: str | None
    symbol: str
    bid: Decimal
    ask: Decimal
    inverted: bool
    timestamp: datetime | None
    expire_at: datetime | None

    @classmethod
    def from_wire(cls, data: dict) -> Quote:
        return cls(
            id=data.get("id"),
            symbol=data["symbol"],
            bid=required_decimal(data["bid"], "bid"),
            ask=required_decimal(data["ask"], "ask"),
            inverted=bool(data.get("inverted")),
            timestamp=to_datetime(data.get("timestamp")),
            expire_at=to_datetime(data.get("expireAt")),
        )


@dataclass(frozen=True)
class Sender:
    id: str
    nick_name: str | None
    first_name: str | None
    middle_name: str | None
    last_name: str | None
    company_name: str | None
    email: str | None
    external_id: str | None
    country: str | None
    created_at: datetime | None
    raw: dict = field(repr=False, compare=False)

    @classmethod
    def from_wire(cls, data: dict) -> Sender:
        return cls(
            id=data["id"],
            nick_name=data.get("nickName"),
            first_name=data.get("firstName"),
            middle_name=data.get("middleName"),
            last_name=data.get("lastName"),
            company_name=data.get("companyName"),
            email=data.get("email"),
            external_id=data.get("externalId"),
            country=(data.get("address") or {}).get("country"),
            created_at=to_datetime(data.get("createdAt")),
            raw=json_ready(data),
        )


@dataclass(frozen=True)
class Recipient:
    id: str
    nick_name: str | None
    display_name: str | None
    account_id_type: str
    currency: str
    country: str | None
    first_name: str | None
    last_name: str | None
    company_name: str | None
    email: str | None
    bsb: str | None
    account_no: str | None
    payid: str | None
    iban: str | None
    bic: str | None
    external_id: str | None
    created_at: datetime | None
    raw: dict = field(repr=False, compare=False)

    @classmethod
    def from_wire(cls, data: dict) -> Recipient:
        return cls(
            id=data["id"],
            nick_name=data.get("nickName"),
            display_name=data.get("displayName"),
            account_id_type=data["accountIdType"],
            currency=data["currency"],
            country=data.get("country"),
            first_name=data.get("firstName"),
            last_name=data.get("lastName"),
            company_name=data.get("companyName"),
            email=data.get("email"),
            bsb=data.get("bsb"),
            account_no=data.get("accountNo"),
            payid=data.get("payid"),
            iban=data.get("iban"),
            bic=data.get("bic"),
            external_id=data.get("externalId"),
            created_at=to_datetime(data.get("createdAt")),
            raw=json_ready(data),
        )


@dataclass(frozen=True)
class SubClient:
    id: str
    status: str
    client_type: str | None
    full_name: str | None
    legal_name: str | None
    bsb: str | None
    account_no: str | None
    external_id: str | None
    created_at: datetime | None
    raw: dict = field(repr=False, compare=False)

    @classmethod
    def from_wire(cls, data: dict) -> SubClient:
        return cls(
            id=data["id"],
            status=data["status"],
            client_type=data.get("clientType"),
            full_name=data.get("fullName"),
            legal_name=data.get("legalName"),
            bsb=data.get("bsb"),
            account_no=data.get("accountNo"),
            external_id=data.get("externalId"),
            created_at=to_datetime(data.get("createdAt")),
            raw=json_ready(data),
        )


# Confirmation of Payee codes (docs/flashfx.md §3.13.2). The list "can change over time": an
# unknown code is kept as received (`known` is False), never dropped.
COP_CODES = frozenset(
    {
        "MATCH",
        "CLOSE_MATCH",
        "NOT_MATCH",
        "ACCOUNT_CLOSED",
        "ACCOUNT_NOT_FOUND",
        "ACCOUNT_TYPE_NOT_SUPPORTED",
        "COP_PLATFORM_ERROR",
        "COP_LIMIT_EXCEEDED",
        "COP_API_DISABLED",
    }
)
# Decision docs/flashfx.md §5.46: the name the bank holds, when a CLOSE_MATCH's message gives
# it, is the message's last double-quoted part (the sandbox writes it that way). FlashFX
# documents no field for it, only "review the message", so when the live API words it
# otherwise the name stays None and the message says it all.
_QUOTED_NAME = re.compile(r'"([^"]+)"[^"]*$')


@dataclass(frozen=True)
class CopResult:
    """The answer to a Confirmation of Payee check. Advisory: it never blocks a payout.

    `success` is False only when FlashFX refused to check (COP_API_DISABLED,
    COP_LIMIT_EXCEEDED); `code` says what the bank answered otherwise. `matched_name` is the
    name the bank holds, when the message gives it (a CLOSE_MATCH), else None.
    """

    success: bool
    code: str
    message: str | None
    billable: bool
    matched_name: str | None
    raw: dict = field(repr=False, compare=False)

    @property
    def known(self) -> bool:
        """False for a code FlashFX added after docs/flashfx.md §3.13.2 was written."""
        return self.code in COP_CODES

    @classmethod
    def from_wire(cls, data: dict) -> CopResult:
        message = data.get("message")
        code = data.get("code") or ""
        found = _QUOTED_NAME.search(message or "") if code == "CLOSE_MATCH" else None
        return cls(
            success=bool(data.get("success")),
            code=code,
            message=message,
            billable=bool(data.get("billable")),
            matched_name=found.group(1).strip() if found else None,
            raw=json_ready(data),
        )
