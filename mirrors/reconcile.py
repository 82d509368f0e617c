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
from django.db.models import Q
from django.utils import timezone

from flashfx.client import FlashFXClient

from .apply import Outcome, Remote
from .models import BalanceCheck, BalanceSnapshot, DriftItem, DriftReport
from .registry import MirrorSpec, registry
from .sync import iso

log = logging.getLogger(__name__)


def reconcile(
    *,
    client: FlashFXClient,
    since: datetime,
    until: datetime | None = None,
    entities: list[str] | None = None,
) -> DriftReport:
    """Compare every entity created in [since, until] with FlashFX, fix what can be fixed, prove balances."""
    until = until or timezone.now()
    names = entities or registry.names()
    report = DriftReport.objects.create(window_start=since, window_end=until, entities=names)
    try:
        for name in names:
            _reconcile_entity(client, registry.get(name), report, since, until)
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
    client: FlashFXClient, spec: MirrorSpec, report: DriftReport, since: datetime, until: datetime
) -> None:
    model = spec.model
    observed_at = timezone.now()
    remote = {
        r.id: r for r in spec.fetch_many(client, minCreatedAt=iso(since), maxCreatedAt=iso(until))
    }
    local = {
        o.flashfx_id: o
        # Q, not keywords: the column is the entity's, not the Mirror base's the type names.
        for o in model.objects.filter(
            Q(flashfx_created_at__gte=since) & Q(flashfx_created_at__lte=until)
        )
    }
    report.compared += len(remote.keys() | local.keys())
    context = spec.batch_context(remote.values())
    for flashfx_id in sorted(remote.keys() - local.keys()):
        version = spec.remote(remote[flashfx_id], observed_at, context)
        _resolve(report, spec.name, model, version, DriftItem.Kind.MISSING_LOCALLY, {})
    drifted = remote.keys() ^ local.keys()
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
        version = spec.remote(remote[flashfx_id], observed_at, context)
        obj = local[flashfx_id]
        differences = {
            f: [_plain(getattr(obj, f)), _plain(version.fields[f])]
            for f in spec.compared
            if getattr(obj, f) != version.fields[f]
        }
        if differences:
            drifted.add(flashfx_id)
            _resolve(report, spec.name, model, version, DriftItem.Kind.CONFLICT, differences)
    # Open items of entities this run compared and found in agreement are settled: the drift a
    # person was asked to look at is gone (FlashFX lists the row again, or sync caught up).
    agreed = (remote.keys() | local.keys()) - drifted
    if agreed:
        DriftItem.objects.filter(
            entity=spec.name,
            flashfx_id__in=agreed,
            resolution=DriftItem.Resolution.FLAGGED,
            settled="",
        ).update(
            settled=DriftItem.Settled.SUPERSEDED,
            settled_at=timezone.now(),
            settled_note=f"Reconciliation #{report.pk} found no difference any more.",
        )


def _resolve(report, entity: str, model, version: Remote, kind: str, differences: dict) -> None:
    """Re-apply FlashFX's version as the authority; what the apply rule still will not take
    (a refused or stale version) is flagged for a person instead of being called resolved."""
    with transaction.atomic():
        applied = registry.get(entity).apply_version(
            version, authoritative=True, source="reconcile"
        )
        taken = applied.outcome not in (Outcome.REFUSED, Outcome.STALE)
        DriftItem.objects.create(
            report=report,
            entity=entity,
            flashfx_id=version.flashfx_id,
            kind=kind,
            differences=differences,
            resolution=DriftItem.Resolution.APPLIED if taken else DriftItem.Resolution.FLAGGED,
            note=(
                f"FlashFX's version re-applied ({applied.outcome})"
                if taken
                else f"FlashFX's version not taken ({applied.outcome}): {applied.obj.anomaly}"[:300]
            ),
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
    """The balances the mirrored movements add up to, by each spec's `balance_effect`."""
    totals: dict[str, Implied] = defaultdict(Implied)
    for spec in registry.all():
        if spec.balance_effect is None:
            continue
        for row in spec.model.objects.all().iterator():
            if (effect := spec.balance_effect(row)) is not None:
                totals[effect.currency].cleared += effect.cleared
                totals[effect.currency].pending += effect.pending
    return totals


def balance_snapshot(*, client: FlashFXClient) -> list[BalanceSnapshot]:
    """FlashFX's balances as read now, one row per currency (beat, for the dashboard)."""
    reported = client.balances()
    with transaction.atomic():
        return [
            BalanceSnapshot.objects.create(
                currency=b.currency, cleared=b.cleared, pending=b.pending
            )
            for b in reported
        ]


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
