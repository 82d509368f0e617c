"""What the reconciliation pages, the dashboard and /metrics read about drift.

An item is open while it is flagged for a person and nobody has settled it. Reconciliation runs
every night and flags the same difference again until it is settled, so the pages show one open
item per entity (the latest), dated from the first report that found it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Count, Max, Min, Q, QuerySet
from django.utils import timezone

from .models import BalanceCheck, DriftItem, DriftReport

OPEN = Q(resolution=DriftItem.Resolution.FLAGGED, settled="")


def open_drift_items() -> QuerySet[DriftItem]:
    """Every open item (one entity may have several, from successive reports)."""
    return DriftItem.objects.filter(OPEN)


def open_drift_count() -> int:
    """How many entities have an open item: the dashboard's tile and the metrics gauge."""
    return open_drift_items().values("entity", "flashfx_id").distinct().count()


@dataclass(frozen=True)
class OpenEntity:
    item: DriftItem  # the latest open item: its differences are the current ones
    since: datetime  # when a report first found it (of the items still open)
    reports: int  # how many reports found it since


def open_entities(*, entity: str = "", kind: str = "") -> list[OpenEntity]:
    """One row per entity with an open item, oldest drift first."""
    items = open_drift_items()
    if entity:
        items = items.filter(entity=entity)
    if kind:
        items = items.filter(kind=kind)
    grouped = (
        items.values("entity", "flashfx_id")
        .annotate(latest=Max("id"), since=Min("report__started_at"), reports=Count("id"))
        .order_by("since", "entity", "flashfx_id")
    )
    groups = list(grouped[:500])  # a page: more than this is a problem to solve upstream
    latest = DriftItem.objects.select_related("report").in_bulk([g["latest"] for g in groups])
    return [
        OpenEntity(item=latest[g["latest"]], since=g["since"], reports=g["reports"]) for g in groups
    ]


def open_items_of(item: DriftItem) -> QuerySet[DriftItem]:
    """The open items of the same entity as `item` (settled together)."""
    return open_drift_items().filter(entity=item.entity, flashfx_id=item.flashfx_id)


def first_found(item: DriftItem) -> datetime:
    """When a report first found this entity's drift, among its items still open (or this one)."""
    since = open_items_of(item).aggregate(since=Min("report__started_at"))["since"]
    return since or item.report.started_at


OPEN_ITEMS = Q(items__resolution=DriftItem.Resolution.FLAGGED, items__settled="")


def recent_reports(limit: int = 30) -> list[DriftReport]:
    """The latest reports with how many items each found and how many of those are open."""
    return list(
        DriftReport.objects.annotate(
            item_count=Count("items"), open_count=Count("items", filter=OPEN_ITEMS)
        ).order_by("-started_at")[:limit]
    )


def balance_history(*, days: int = 30) -> dict[str, list[BalanceCheck]]:
    """The balance proofs of the last `days` days, per currency, oldest first."""
    since = timezone.now() - timedelta(days=days)
    history: dict[str, list[BalanceCheck]] = {}
    for check in BalanceCheck.objects.filter(checked_at__gte=since).order_by("checked_at"):
        history.setdefault(check.currency, []).append(check)
    return history
