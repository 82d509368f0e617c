"""What the dashboard (/) reads: balances, money in and out, work waiting, health.

Every tile is one function here, reading only our database (never FlashFX: balances come from
the snapshots beat takes, mirrors.tasks.snapshot_balances) with a fixed number of queries
whatever the data size: sums by day are grouped in SQL, one query per source, and each filter
walks an index that exists (named beside each query). The view shows a tile only to members
whose permissions allow what it reads (TILES).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db.models import Count, Exists, Max, Min, OuterRef, Q, Sum
from django.db.models.functions import Coalesce, TruncDate
from django.utils import timezone

from mirrors.models import BalanceSnapshot, MoneyRollup, SyncRun
from mirrors.registry import registry
from mirrors.selectors import open_drift_count
from payments.models import (
    DEPOSIT_NOT_IN,
    PAYMENT_NOT_OUT,
    PAYOUT_NOT_OUT,
    Approval,
    ApprovalSignature,
    Deposit,
    ExpectedPayment,
    Payment,
    Withdrawal,
)
from payments.services.matching import OPEN_REVIEW
from webhooks.models import InboundEvent

log = logging.getLogger(__name__)

DAYS = 30  # the charts' span, today included
ZERO = Decimal("0.00")
# Members have no zone of their own yet: the office's, as the issue asks (stored values stay UTC).
DEFAULT_ZONE = ZoneInfo("Australia/Sydney")

# Which permission each tile needs; a member sees the tiles all of whose permissions they hold.
TILES: dict[str, tuple[str, ...]] = {
    "balances": ("mirrors.view_balancesnapshot",),
    "money": ("payments.view_deposit",),  # and per series, below (MONEY_SOURCES)
    "work": ("payments.view_deposit",),  # and per row, below
    "health": ("mirrors.view_syncrun",),  # and per row, below
}


def member_zone(user: Any) -> ZoneInfo:
    """The zone a member reads days and times in."""
    return DEFAULT_ZONE


def tiles_for(user: Any) -> list[str]:
    return [name for name, perms in TILES.items() if user.has_perms(perms)]


def _day_start(day: date, zone: ZoneInfo) -> datetime:
    """Midnight of `day` in `zone`, as an aware instant (a DST change moves it, never a day)."""
    return datetime.combine(day, time.min, tzinfo=zone)


def _days(zone: ZoneInfo, now: datetime, days: int) -> list[date]:
    today = now.astimezone(zone).date()
    return [today - timedelta(days=n) for n in range(days - 1, -1, -1)]


# --- Balances -----------------------------------------------------------------------------------


@dataclass
class Balance:
    currency: str
    cleared: Decimal
    pending: Decimal
    read_at: datetime
    history: list[tuple[date, Decimal]] = field(default_factory=list)  # cleared, each day's last


def balances(*, zone: ZoneInfo, now: datetime | None = None, days: int = DAYS) -> list[Balance]:
    """FlashFX's last reported balance per currency, with the cleared balance at the end of each
    day of the last `days` (index: balancesnapshot taken_at). Two queries; three when no
    snapshot is that recent (then the last one ever is shown, without history)."""
    now = now or timezone.now()
    start = _day_start(_days(zone, now, days)[0], zone)
    last_of_day = list(
        BalanceSnapshot.objects.filter(taken_at__gte=start, taken_at__lte=now)
        .annotate(day=TruncDate("taken_at", tzinfo=zone))
        .values("currency", "day")
        .annotate(last=Max("taken_at"))
        .order_by()
    )
    if last_of_day:
        wanted = {(r["currency"], r["last"]) for r in last_of_day}
        rows = [
            s
            for s in BalanceSnapshot.objects.filter(taken_at__in={last for _, last in wanted})
            if (s.currency, s.taken_at) in wanted
        ]
    else:  # nothing this month: the latest reading ever, per currency
        latest = BalanceSnapshot.objects.order_by("-taken_at", "-id").first()
        rows = list(BalanceSnapshot.objects.filter(taken_at=latest.taken_at)) if latest else []
    found: dict[str, Balance] = {}
    for snap in sorted(rows, key=lambda s: (s.currency, s.taken_at, s.pk)):
        day = snap.taken_at.astimezone(zone).date()
        balance = found.get(snap.currency)
        if balance is None:
            balance = found[snap.currency] = Balance(
                snap.currency, snap.cleared, snap.pending, snap.taken_at
            )
        balance.cleared, balance.pending, balance.read_at = (
            snap.cleared,
            snap.pending,
            snap.taken_at,
        )
        if last_of_day:
            balance.history = [h for h in balance.history if h[0] != day] + [(day, snap.cleared)]
    return sorted(found.values(), key=lambda b: (b.currency != "AUD", b.currency))


# --- Money in and out ---------------------------------------------------------------------------

# (key, label, direction, permission)
MONEY_SOURCES = (
    ("deposits", "Deposits", "in", "payments.view_deposit"),
    ("payouts", "Payouts", "out", "payments.view_withdrawal"),
    ("payments", "Payments", "out", "payments.view_payment"),
    ("refunds", "Refunds", "out", "payments.view_deposit"),
    ("fees", "Fees", "out", "payments.view_deposit"),
)
# What counts as money moved: a cancelled deposit never arrived; a payout that failed, was
# refunded or cancelled came back or never left; a payment that failed or was cancelled too.


@dataclass
class Flow:
    """One currency's money per source and day, oldest day first."""

    currency: str
    days: list[date]
    series: dict[str, list[Decimal]]  # source key -> one amount per day
    sources: list[tuple[str, str, str]]  # (key, label, direction) the member may see

    def total(self, key: str) -> Decimal:
        return sum(self.series[key], ZERO)

    def today(self, key: str) -> Decimal:
        return self.series[key][-1]

    def rows(self) -> list[dict[str, Any]]:
        return [
            {
                "key": k,
                "label": label,
                "direction": d,
                "today": self.today(k),
                "total": self.total(k),
            }
            for k, label, d in self.sources
        ]

    def net(self, which: str) -> Decimal:
        """In less out, today or over the span."""
        pick = self.today if which == "today" else self.total
        return sum(
            (pick(k) if d == "in" else -pick(k) for k, _, d in self.sources),
            ZERO,
        )


def money_flows(
    *, user: Any, zone: ZoneInfo, now: datetime | None = None, days: int = DAYS
) -> list[Flow]:
    """Deposits in; payouts, payments, refunds and fees out, per currency and local day, over the
    last `days` days (today last): one query over the hourly roll-up (MoneyRollup), or, for a
    zone whose days start mid-hour, one grouped query per source over the rows."""
    now = now or timezone.now()
    day_list = _days(zone, now, days)
    start, end = _day_start(day_list[0], zone), _day_start(day_list[-1] + timedelta(days=1), zone)
    allowed = [s for s in MONEY_SOURCES if user.has_perm(s[3])]
    keys = [s[0] for s in allowed]
    sums: dict[str, dict[tuple[str, date], Decimal]] = {k: defaultdict(Decimal) for k in keys}

    def add(key: str, rows: Any, amount: str = "amount", currency: str = "currency") -> None:
        for r in rows:
            if r[amount] is not None:
                sums[key][(r[currency], r["day"])] += r[amount]

    if hours_are_whole(zone, day_list):
        # The roll-up: at most 24 rows per source and day, whatever the rows behind them.
        rows = (
            MoneyRollup.objects.filter(hour__gte=start, hour__lt=end, source__in=keys)
            .annotate(day=TruncDate("hour", tzinfo=zone))
            .values("source", "currency", "day")
            .annotate(amount=Sum("amount"))
            .order_by()
        )
        for r in rows:
            sums[r["source"]][(r["currency"], r["day"])] += r["amount"]
    else:
        _money_from_rows(keys, sums, add, start=start, end=end, zone=zone)
    return _flows(sums, keys, allowed, day_list)


def hours_are_whole(zone: ZoneInfo, days: list[date]) -> bool:
    """Whether every day in `days` starts on a UTC hour in `zone` (Sydney, London, UTC...; not
    India's or Lord Howe's half hours): then the hourly roll-up adds up to its days exactly."""
    return all(
        _day_start(day, zone).utcoffset().total_seconds() % 3600 == 0  # type: ignore[union-attr]
        for day in [*days, days[-1] + timedelta(days=1)]
    )


def _money_from_rows(keys, sums, add, *, start: datetime, end: datetime, zone: ZoneInfo) -> None:
    """The same sums read from the rows (a zone whose days start mid-hour): one grouped query
    per source, bounded by the window's index but growing with the rows in it."""
    if "deposits" in keys:  # index: deposit_received (the same COALESCE expression)
        received = Coalesce("flashfx_created_at", "created_at")
        rows = list(
            Deposit.objects.annotate(received=received)
            .filter(received__gte=start, received__lt=end)
            .exclude(flashfx_status__in=DEPOSIT_NOT_IN)
            .annotate(day=TruncDate(received, tzinfo=zone))
            .values("currency", "day")
            .annotate(amount=Sum("amount"), fees=Sum("total_fee"))
            .order_by()
        )
        add("deposits", rows)
        add("fees", rows, "fees")
    if "refunds" in keys:  # index: deposit_status_received (led by flashfx_status)
        add(
            "refunds",
            Deposit.objects.filter(
                flashfx_status="REFUNDED", refunded_at__gte=start, refunded_at__lt=end
            )
            .annotate(day=TruncDate("refunded_at", tzinfo=zone))
            .values("currency", "day")
            .annotate(amount=Sum(Coalesce("refund_amount", "amount")))
            .order_by(),
        )
    if "payouts" in keys:  # index: flashfx_created_at
        rows = list(
            Withdrawal.objects.filter(flashfx_created_at__gte=start, flashfx_created_at__lt=end)
            .exclude(flashfx_status__in=PAYOUT_NOT_OUT)
            .annotate(day=TruncDate("flashfx_created_at", tzinfo=zone))
            .values("currency", "day")
            .annotate(amount=Sum("amount"), fees=Sum("total_fee"))
            .order_by()
        )
        add("payouts", rows)
        if "fees" in keys:
            add("fees", rows, "fees")
    if "payments" in keys:  # index: flashfx_created_at; what leaves is the from side
        add(
            "payments",
            Payment.objects.filter(flashfx_created_at__gte=start, flashfx_created_at__lt=end)
            .exclude(flashfx_status__in=PAYMENT_NOT_OUT)
            .annotate(day=TruncDate("flashfx_created_at", tzinfo=zone))
            .values("day", "from_currency")
            .annotate(amount=Sum("from_amount"))
            .order_by(),
            currency="from_currency",
        )


def _flows(sums, keys, allowed, day_list) -> list[Flow]:
    currencies = {c for by_day in sums.values() for c, _ in by_day} or {"AUD"}
    sources = [(k, label, d) for k, label, d, _ in allowed]
    flows = [
        Flow(
            currency=c,
            days=day_list,
            series={
                k: [sums[k].get((c, d), ZERO).quantize(Decimal("0.01")) for d in day_list]
                for k in keys
            },
            sources=sources,
        )
        for c in currencies
    ]
    return sorted(flows, key=lambda f: (f.currency != "AUD", f.currency))


# --- Work waiting -------------------------------------------------------------------------------


@dataclass
class Waiting:
    label: str
    count: int
    oldest: datetime | date | None  # when the one waiting longest arrived, or was due
    url: str

    @property
    def oldest_is_due_date(self) -> bool:
        return self.oldest is not None and not isinstance(self.oldest, datetime)


# Approval actions in words, and the list where each kind waits.
APPROVAL_KINDS = {
    "payout.send": ("Payouts", "/payouts/waiting/"),
    "payout.batch": ("Payout batches", "/payouts/batches/?state=awaiting_approval"),
    "payment.send": ("Payments", "/payments/?state=awaiting_approval"),
    "deposit.refund": ("Deposit refunds", "/approvals/"),
    "payout.policy": ("Payout policy changes", "/approvals/"),
}


def deposits_to_review() -> list[Waiting]:
    """New and flagged deposits, with the oldest received (index: deposit_review_received)."""
    received = Coalesce("flashfx_created_at", "created_at")
    rows = {
        r["review_state"]: r
        for r in Deposit.objects.filter(review_state__in=OPEN_REVIEW)
        .values("review_state")
        .annotate(n=Count("id"), oldest=Min(received))
        .order_by()
    }
    return [
        Waiting(
            label,
            rows.get(state, {}).get("n", 0),
            rows.get(state, {}).get("oldest"),
            f"/deposits/?review={state}&sort=oldest",
        )
        for state, label in (
            (Deposit.Review.NEW, "New deposits to review"),
            (Deposit.Review.FLAGGED, "Flagged deposits"),
        )
    ]


def approvals_waiting(*, user: Any, now: datetime | None = None) -> dict[str, list[Waiting]]:
    """Pending approvals not past their time, per kind: those this member may sign now
    ("mine": someone else's, with the permission it needs, not signed by them yet) and the
    rest ("others"). One query (index: approval_pending)."""
    now = now or timezone.now()
    perms = user.get_all_permissions()
    signed = ApprovalSignature.objects.filter(approval=OuterRef("pk"), signer_id=user.pk)
    mine = Q(permission__in=perms) & ~Q(requested_by_id=user.pk) & Q(signed_by_me=False)
    rows = (
        Approval.objects.filter(state=Approval.State.PENDING, expires_at__gt=now)
        .annotate(signed_by_me=Exists(signed))
        .values("action")
        .annotate(
            mine=Count("id", filter=mine),
            mine_oldest=Min("requested_at", filter=mine),
            others=Count("id", filter=~mine),
            others_oldest=Min("requested_at", filter=~mine),
        )
        .order_by()
    )
    found: dict[str, list[Waiting]] = {"mine": [], "others": []}
    for r in sorted(
        rows,
        key=lambda r: (
            list(APPROVAL_KINDS).index(r["action"])
            if r["action"] in APPROVAL_KINDS
            else len(APPROVAL_KINDS)
        ),
    ):
        label, url = APPROVAL_KINDS.get(r["action"], (r["action"], "/approvals/"))
        for who in ("mine", "others"):
            if r[who]:
                target = url if who == "mine" else "/approvals/"
                found[who].append(Waiting(label, r[who], r[f"{who}_oldest"], target))
    return found


def expected_overdue(*, zone: ZoneInfo, now: datetime | None = None) -> Waiting:
    """Expected payments still unmatched after their due date (index: expected_open_due)."""
    today = (now or timezone.now()).astimezone(zone).date()
    found = ExpectedPayment.objects.filter(deposit=None, due_on__lt=today).aggregate(
        n=Count("id"), oldest=Min("due_on")
    )
    return Waiting("Overdue expected deposits", found["n"], found["oldest"], "/deposits/expected/")


# --- Health -------------------------------------------------------------------------------------


@dataclass
class Webhooks:
    last_received_at: datetime | None
    failed: int  # in the last 24 h
    quarantined: int  # in the last 24 h
    dead: int  # dead letters waiting for a person, whenever received


def webhook_health(*, now: datetime | None = None) -> Webhooks:
    """Two queries (index: inboundevent received_at; webhooks_status_received)."""
    now = now or timezone.now()
    since = now - timedelta(hours=24)
    S = InboundEvent.Status
    last = (
        InboundEvent.objects.filter(accepted=True)
        .order_by("-received_at")
        .values_list("received_at", flat=True)
        .first()
    )
    recent = Q(received_at__gte=since)
    counts = InboundEvent.objects.filter(
        Q(status__in=(S.FAILED, S.QUARANTINED), received_at__gte=since) | Q(status=S.DEAD)
    ).aggregate(
        failed=Count("id", filter=Q(status=S.FAILED) & recent),
        quarantined=Count("id", filter=Q(status=S.QUARANTINED) & recent),
        dead=Count("id", filter=Q(status=S.DEAD)),
    )
    return Webhooks(last, counts["failed"], counts["quarantined"], counts["dead"])


@dataclass
class Sync:
    entity: str
    last_ok: datetime | None
    last_failed: datetime | None

    @property
    def failing(self) -> bool:
        return self.last_failed is not None and (
            self.last_ok is None or self.last_failed > self.last_ok
        )


def sync_health() -> list[Sync]:
    """The last successful and the last failed sync run of every mirrored entity (one query)."""
    S = SyncRun.Status
    rows = {
        r["entity"]: r
        for r in SyncRun.objects.filter(status__in=(S.SUCCEEDED, S.FAILED))
        .values("entity")
        .annotate(
            ok=Max("finished_at", filter=Q(status=S.SUCCEEDED)),
            failed=Max(Coalesce("finished_at", "started_at"), filter=Q(status=S.FAILED)),
        )
        .order_by()
    }
    return [
        Sync(name, rows.get(name, {}).get("ok"), rows.get(name, {}).get("failed"))
        for name in registry.names()
    ]


def drift_items_open() -> int:
    """Entities whose drift waits for a person: the reconciliation page's open items, counted
    as it lists them (one per entity), as /metrics counts them too."""
    return open_drift_count()


QUEUES = ("celery",)  # the queues our workers consume (Celery's default; no routes are set)


def worker_queue_length(*, broker_url: str | None = None, queues: tuple[str, ...] = QUEUES):
    """Messages waiting in the workers' queues, read from the broker (Redis LLEN, or the
    filesystem transport's queue folder, both through kombu's own `queue_declare`); None when
    the broker cannot be read: the tile says "unknown" and the page still answers."""
    from .celery import app

    try:
        with app.connection_for_read(broker_url) as conn:
            conn.ensure_connection(max_retries=0, timeout=2.0)  # one attempt, as /readyz does
            channel = conn.default_channel
            # Not passive: a queue nobody published to yet does not exist on Redis (no key);
            # declaring it creates nothing there, and an empty folder on the filesystem.
            return sum(channel.queue_declare(queue=q).message_count for q in queues)
    except Exception as exc:  # any broker failure is "unknown" on the tile, logged here
        log.warning("dashboard: worker queue length unknown: %s: %s", type(exc).__name__, exc)
        return None


def broker_kind() -> str:
    return "Redis" if settings.REDIS_URL else "filesystem"


def as_utc(at: datetime) -> datetime:
    return at.astimezone(UTC)
