"""Reconciliation: compare the mirror with FlashFX field by field, and prove the balance.

A drift report lists what is missing locally, missing remotely, or conflicting. Conflicts and
rows missing locally are resolved by re-applying FlashFX's version through the same apply rule,
as the authority (ordering checks off: FlashFX's current answer is the truth); what we cannot
fix from here (a row FlashFX no longer has) is flagged for a person. Every resolution is recorded.

The balance proof compares the balance FlashFX reports with the one the mirror implies. It is
exact for an account mirrored since its first deposit; for an older account the difference is
the opening balance, and what matters is that it does not move.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from backoffice.mirror import Remote, apply_remote
from flashfx.client import FlashFXClient
from parties import services as parties_services
from parties.models import Recipient, Sender, SubClient

from ..models import (
    BalanceCheck,
    BalanceSnapshot,
    Deposit,
    DriftItem,
    DriftReport,
    Payment,
    Withdrawal,
)
from . import mirror
from .sync import ENTITIES, iso

log = logging.getLogger(__name__)

# The fields compared for each entity (the issue names status, amount, fee, refund amount and
# cleared/refunded times for money; parties compare what identifies the account).
COMPARED = {
    Deposit: (
        "flashfx_status",
        "amount",
        "total_fee",
        "refund_amount",
        "cleared_at",
        "refunded_at",
    ),
    Withdrawal: (
        "flashfx_status",
        "amount",
        "total_fee",
        "refund_amount",
        "reject_code",
        "cleared_at",
        "refunded_at",
    ),
    Payment: ("flashfx_status", "from_amount", "to_amount"),
    SubClient: ("flashfx_status", "full_name", "bsb", "account_no"),
    Sender: ("first_name", "last_name", "company_name", "email"),
    Recipient: (
        "account_id_type",
        "currency",
        "bsb",
        "account_no",
        "payid",
        "iban",
        "display_name",
    ),
}
BUILDERS = {
    Deposit: lambda r, t: mirror.transfer_remote(Deposit, r, t),
    Withdrawal: lambda r, t: mirror.transfer_remote(Withdrawal, r, t),
    Payment: lambda r, t: mirror.transfer_remote(Payment, r, t),
    SubClient: parties_services.sub_client_remote,
    Sender: parties_services.sender_remote,
    Recipient: parties_services.recipient_remote,
}


def reconcile(
    *,
    client: FlashFXClient,
    since: datetime,
    until: datetime | None = None,
    entities: list[str] | None = None,
) -> DriftReport:
    """Compare every entity created in [since, until] with FlashFX, fix what can be fixed, prove balances."""
    until = until or timezone.now()
    names = entities or list(ENTITIES)
    report = DriftReport.objects.create(window_start=since, window_end=until, entities=names)
    try:
        for name in names:
            _reconcile_entity(client, ENTITIES[name], report, since, until)
        balance_proof(client=client, report=report)
    except Exception as exc:
        report.error = f"{type(exc).__name__}: {exc}"
        report.finished_at = timezone.now()
        report.save(update_fields=["error", "finished_at"])
        log.exception("reconciliation %s failed", report.pk)
        raise
    report.finished_at = timezone.now()
    report.save(update_fields=["compared", "finished_at"])
    return report


def _reconcile_entity(
    client: FlashFXClient, spec, report: DriftReport, since: datetime, until: datetime
) -> None:
    model = spec.model
    observed_at = timezone.now()
    remote = {
        r.id: r
        for r in spec.fetch(client, {"minCreatedAt": iso(since), "maxCreatedAt": iso(until)})
    }
    local = {
        o.flashfx_id: o
        for o in model.objects.filter(flashfx_created_at__gte=since, flashfx_created_at__lte=until)
    }
    report.compared += len(remote.keys() | local.keys())
    for flashfx_id in sorted(remote.keys() - local.keys()):
        version = BUILDERS[model](remote[flashfx_id], observed_at)
        _resolve(report, spec.name, model, version, DriftItem.Kind.MISSING_LOCALLY, {})
    for flashfx_id in sorted(local.keys() - remote.keys()):
        DriftItem.objects.create(
            report=report,
            entity=spec.name,
            flashfx_id=flashfx_id,
            kind=DriftItem.Kind.MISSING_REMOTELY,
            resolution=DriftItem.Resolution.FLAGGED,
            note="FlashFX no longer lists it; left for a person to check",
        )
    for flashfx_id in sorted(remote.keys() & local.keys()):
        version = BUILDERS[model](remote[flashfx_id], observed_at)
        obj = local[flashfx_id]
        differences = {
            f: [_plain(getattr(obj, f)), _plain(version.fields[f])]
            for f in COMPARED[model]
            if getattr(obj, f) != version.fields[f]
        }
        if differences:
            _resolve(report, spec.name, model, version, DriftItem.Kind.CONFLICT, differences)


def _resolve(report, entity: str, model, version: Remote, kind: str, differences: dict) -> None:
    with transaction.atomic():
        applied = apply_remote(model, version, authoritative=True)
        DriftItem.objects.create(
            report=report,
            entity=entity,
            flashfx_id=version.flashfx_id,
            kind=kind,
            differences=differences,
            resolution=DriftItem.Resolution.APPLIED,
            note=f"FlashFX's version re-applied ({applied.outcome})",
        )
    log.warning("reconciliation: %s %s %s %s", kind, entity, version.flashfx_id, differences)


def _plain(value):
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return iso(value)
    return value


@dataclass
class Implied:
    cleared: Decimal = Decimal("0.00")
    pending: Decimal = Decimal("0.00")


def implied_balances() -> dict[str, Implied]:
    """The balances the mirrored movements add up to (the sandbox's ledger rules, API.md §3.3.3, §5.22-24)."""
    totals: dict[str, Implied] = defaultdict(Implied)
    for d in Deposit.objects.all().iterator():
        if d.flashfx_status in ("INITIALISED", "REVIEWING"):
            totals[d.currency].pending += d.amount
        elif d.cleared_at is not None:  # cleared: in, less its fee and whatever was refunded
            refunded = (
                (d.refund_amount or 0) if d.flashfx_status in ("REFUNDING", "REFUNDED") else 0
            )
            totals[d.currency].cleared += d.amount - (d.total_fee or 0) - refunded
    for w in Withdrawal.objects.all().iterator():
        totals[w.currency].cleared -= w.amount + (w.total_fee or 0)
        if w.flashfx_status in ("REFUNDED", "CANCELLED"):  # the amount comes back, the fee does not
            totals[w.currency].cleared += w.amount
    for p in Payment.objects.exclude(from_amount=None).iterator():
        if p.flashfx_status not in ("FAILED", "CANCELLED"):
            totals[p.from_currency].cleared -= p.from_amount
    return totals


def balance_proof(
    *, client: FlashFXClient, report: DriftReport | None = None
) -> list[BalanceCheck]:
    """Snapshot FlashFX's balances and record each against the mirror's implied balance."""
    reported = client.balances()
    implied = implied_balances()
    checks = []
    with transaction.atomic():
        for balance in reported:
            BalanceSnapshot.objects.create(
                currency=balance.currency, cleared=balance.cleared, pending=balance.pending
            )
            mine = implied.get(balance.currency, Implied())
            checks.append(
                BalanceCheck.objects.create(
                    report=report,
                    currency=balance.currency,
                    reported_cleared=balance.cleared,
                    implied_cleared=mine.cleared,
                    reported_pending=balance.pending,
                    implied_pending=mine.pending,
                )
            )
    for check in checks:
        if not check.balanced:
            log.warning(
                "balance proof %s: FlashFX %s/%s, mirror %s/%s",
                check.currency,
                check.reported_cleared,
                check.reported_pending,
                check.implied_cleared,
                check.implied_pending,
            )
    return checks
