"""Rows for the dashboard tests, as the mirrors and our workflows hold them (no sandbox needed:
these tests read the database, as the dashboard does)."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta
from decimal import Decimal

from mirrors import rollup
from mirrors.models import BalanceSnapshot, DriftItem, DriftReport, SyncRun
from payments.models import Approval, Deposit, ExpectedPayment, Payment, Withdrawal
from webhooks.models import InboundEvent

_seq = itertools.count(1)


def mirrored(row):
    """A row written here as the apply rule writes one: with its money in the roll-up."""
    rollup.follow([], row)
    return row


def deposit(at: datetime, amount: str = "100.00", **fields) -> Deposit:
    n = next(_seq)
    values = {
        "flashfx_id": f"DSH{n:07d}",
        "flashfx_status": "CONFIRMED",
        "currency": "AUD",
        "amount": Decimal(amount),
        "flashfx_created_at": at,
        "review_state": Deposit.Review.ACCEPTED,
    }
    values.update(fields)
    return mirrored(Deposit.objects.create(**values))


def withdrawal(at: datetime, amount: str = "50.00", **fields) -> Withdrawal:
    n = next(_seq)
    values = {
        "flashfx_id": f"WSH{n:07d}",
        "flashfx_status": "CONFIRMED",
        "currency": "AUD",
        "amount": Decimal(amount),
        "flashfx_created_at": at,
    }
    values.update(fields)
    return mirrored(Withdrawal.objects.create(**values))


def payment(at: datetime, amount: str = "70.00", **fields) -> Payment:
    n = next(_seq)
    values = {
        "flashfx_id": f"PSH{n:07d}",
        "flashfx_status": "CLOSED",
        "currency": "AUD",
        "from_currency": "AUD",
        "to_currency": "USD",
        "from_amount": Decimal(amount),
        "flashfx_created_at": at,
    }
    values.update(fields)
    return mirrored(Payment.objects.create(**values))


def approval(requested_by, *, action="payout.send", at: datetime, **fields) -> Approval:
    values = {
        "action": action,
        "permission": "payments.approve_payout",
        "summary": f"{action} #{next(_seq)}",
        "payload": {},
        "payload_hash": "0" * 64,
        "requested_by": requested_by,
        "requested_at": at,
        "expires_at": at + timedelta(days=2),
    }
    values.update(fields)
    return Approval.objects.create(**values)


def expected(created_by, *, due_on, amount: str = "10.00") -> ExpectedPayment:
    return ExpectedPayment.objects.create(
        payer_name=f"Payer {next(_seq)}",
        amount=Decimal(amount),
        due_on=due_on,
        created_by=created_by,
    )


def event(status: str, at: datetime, *, accepted: bool = True) -> InboundEvent:
    n = next(_seq)
    return InboundEvent.objects.create(
        accepted=accepted and status != InboundEvent.Status.QUARANTINED,
        request_id=f"req-{n}",
        status=status,
        event="deposit_confirmed",
        body=b"{}",
        body_sha256="0" * 64,
        body_size=2,
        received_at=at,
    )


def sync_run(entity: str, status: str, at: datetime) -> SyncRun:
    return SyncRun.objects.create(
        entity=entity, mode="incremental", until=at, status=status, started_at=at, finished_at=at
    )


def drift_item(resolution: str) -> DriftItem:
    report = DriftReport.objects.create(
        window_start="2026-01-01T00:00Z", window_end="2026-01-02T00:00Z"
    )
    return DriftItem.objects.create(
        report=report,
        entity="deposits",
        flashfx_id=f"D{next(_seq)}",
        kind=DriftItem.Kind.MISSING_REMOTELY,
        resolution=resolution,
    )


def snapshot(at: datetime, cleared: str, pending: str = "0.00", currency="AUD") -> BalanceSnapshot:
    return BalanceSnapshot.objects.create(
        currency=currency, cleared=Decimal(cleared), pending=Decimal(pending), taken_at=at
    )
