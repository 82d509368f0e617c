"""Mirrors of money movements at FlashFX, and the records that keep them honest.

Deposits, withdrawals and payments hold the provider's own status (`flashfx_status`, exactly as
received) and its documented fields as typed columns: money as Decimal plus a currency.
Sync runs, drift reports and balance checks record how the mirror was kept true.
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from backoffice.mirror import Mirror, StatusOrder


def money(**kwargs) -> models.DecimalField:
    return models.DecimalField(max_digits=18, decimal_places=2, **kwargs)


class Deposit(Mirror):
    """A pay-in to the company's BSB + account number (API.md §3.2)."""

    STATUS_ORDER = StatusOrder(
        ranks={
            "INITIALISED": 0,
            "REVIEWING": 1,
            "CONFIRMED": 2,
            "REFUNDING": 3,
            "REFUNDED": 4,
            "CANCELLED": 4,
        }
    )
    FILL_ONCE = frozenset(
        {"cleared_at", "refund_amount", "refund_reason", "refunded_at", "total_fee"}
    )
    FINAL = frozenset({"REFUNDED", "CANCELLED"})

    flashfx_status = models.CharField(max_length=24)
    status_message = models.CharField(max_length=300, blank=True)
    amount = money()
    currency = models.CharField(max_length=3)
    total_fee = money(null=True, blank=True)
    external_reference = models.CharField(max_length=300, blank=True)
    sub_client = models.ForeignKey(
        "parties.SubClient",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="deposits",
    )
    sub_client_flashfx_id = models.CharField(max_length=24, blank=True)
    sender_account_name = models.CharField(max_length=300, blank=True)
    sender_bank_name = models.CharField(max_length=300, blank=True)
    sender_bsb = models.CharField(max_length=6, blank=True)
    sender_account_no = models.CharField(max_length=34, blank=True)
    flashfx_created_at = models.DateTimeField(null=True, blank=True, db_index=True)
    cleared_at = models.DateTimeField(null=True, blank=True)
    refund_amount = money(null=True, blank=True)
    refund_reason = models.CharField(max_length=300, blank=True)
    refunded_at = models.DateTimeField(null=True, blank=True)
    rail = models.CharField(max_length=16, blank=True)
    rail_service = models.CharField(max_length=32, blank=True)

    class Meta(Mirror.Meta):
        ordering = ["-flashfx_created_at", "-id"]
        permissions = [("reject_deposit", "Can reject (refund) a deposit")]


class Withdrawal(Mirror):
    """A local AUD payout (API.md §3.3)."""

    # §3.3.3, with CONFIRMED -> FAILED (a later bank return) and the rare FAILED -> PENDING retry.
    STATUS_ORDER = StatusOrder(
        ranks={
            "INITIALISED": 0,
            "REVIEWING": 1,
            "PENDING": 2,
            "CONFIRMED": 3,
            "FAILED": 4,
            "REFUNDED": 5,
            "CANCELLED": 5,
        },
        backward_edges=frozenset({("FAILED", "PENDING")}),
    )
    FILL_ONCE = frozenset(
        {
            "cleared_at",
            "rejected_at",
            "refunded_at",
            "refund_amount",
            "refund_reason",
            "reject_code",
            "total_fee",
        }
    )
    FINAL = frozenset({"REFUNDED", "CANCELLED"})

    flashfx_status = models.CharField(max_length=24)
    status_message = models.CharField(max_length=300, blank=True)
    reject_code = models.CharField(max_length=64, blank=True)
    amount = money()
    currency = models.CharField(max_length=3)
    total_fee = money(null=True, blank=True)
    external_reference = models.CharField(max_length=300, blank=True)
    sub_client = models.ForeignKey(
        "parties.SubClient",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="withdrawals",
    )
    sub_client_flashfx_id = models.CharField(max_length=24, blank=True)
    recipient_flashfx_id = models.CharField(max_length=24, blank=True)
    recipient_name = models.CharField(max_length=300, blank=True)
    recipient_bsb = models.CharField(max_length=6, blank=True)
    recipient_account_no = models.CharField(max_length=34, blank=True)
    recipient_payid = models.CharField(max_length=254, blank=True)
    flashfx_created_at = models.DateTimeField(null=True, blank=True, db_index=True)
    cleared_at = models.DateTimeField(null=True, blank=True)
    rejected_at = models.DateTimeField(null=True, blank=True)
    refunded_at = models.DateTimeField(null=True, blank=True)
    refund_amount = money(null=True, blank=True)
    refund_reason = models.CharField(max_length=300, blank=True)
    rail = models.CharField(max_length=16, blank=True)
    rail_service = models.CharField(max_length=32, blank=True)

    class Meta(Mirror.Meta):
        ordering = ["-flashfx_created_at", "-id"]
        permissions = [
            ("create_payout", "Can start a payout"),
            ("approve_payout", "Can approve someone else's payout"),
        ]


class Payment(Mirror):
    """An international FX payment (API.md §3.6)."""

    STATUS_ORDER = StatusOrder(
        ranks={"INITIALISING": 0, "OPEN": 1, "CLOSED": 2, "FAILED": 2, "CANCELLED": 2}
    )
    FINAL = frozenset({"CLOSED", "FAILED", "CANCELLED"})

    flashfx_status = models.CharField(max_length=24)
    size = money(null=True, blank=True)
    currency = models.CharField(max_length=3, blank=True)
    from_currency = models.CharField(max_length=3)
    to_currency = models.CharField(max_length=3)
    from_amount = money(null=True, blank=True)
    to_amount = money(null=True, blank=True)
    external_reference = models.CharField(max_length=300, blank=True)
    sub_client = models.ForeignKey(
        "parties.SubClient",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="payments",
    )
    sub_client_flashfx_id = models.CharField(max_length=24, blank=True)
    recipient_flashfx_id = models.CharField(max_length=24, blank=True)
    recipient_name = models.CharField(max_length=300, blank=True)
    flashfx_created_at = models.DateTimeField(null=True, blank=True, db_index=True)

    class Meta(Mirror.Meta):
        ordering = ["-flashfx_created_at", "-id"]
        permissions = [
            ("create_payment", "Can start an international payment"),
            ("approve_payment", "Can approve someone else's payment"),
        ]


class BalanceSnapshot(models.Model):
    """A balance as FlashFX reported it at one moment (API.md §3.1)."""

    currency = models.CharField(max_length=3)
    cleared = money()
    pending = money()
    taken_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-taken_at", "currency"]

    def __str__(self) -> str:
        return f"{self.currency} {self.cleared} at {self.taken_at:%Y-%m-%d %H:%M}"


class SyncRun(models.Model):
    """One pass of sync over one entity: what it asked for, what it found, what it changed."""

    class Status(models.TextChoices):
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        FAILED = "failed"

    entity = models.CharField(max_length=16, db_index=True)
    mode = models.CharField(max_length=16)  # full, incremental
    since = models.DateTimeField(null=True, blank=True)
    until = models.DateTimeField()
    status = models.CharField(max_length=16, choices=Status, default=Status.RUNNING)
    windows = models.PositiveIntegerField(default=0)
    fetched = models.PositiveIntegerField(default=0)
    created = models.PositiveIntegerField(default=0)
    updated = models.PositiveIntegerField(default=0)
    unchanged = models.PositiveIntegerField(default=0)
    stale = models.PositiveIntegerField(default=0)
    refused = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    # FlashFX ids sync created or updated (at most 1,000): changes no webhook had reported.
    changed_ids = models.JSONField(default=list, blank=True)
    silence_checked_at = models.DateTimeField(null=True, blank=True)
    silent_ids = models.JSONField(default=list, blank=True)  # of those, never reported by a webhook
    started_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-started_at"]

    def __str__(self) -> str:
        return f"sync {self.entity} {self.mode} {self.started_at:%Y-%m-%d %H:%M} {self.status}"


class DriftReport(models.Model):
    """One reconciliation: the mirror compared with FlashFX field by field over a window."""

    window_start = models.DateTimeField()
    window_end = models.DateTimeField()
    entities = models.JSONField(default=list)
    compared = models.PositiveIntegerField(default=0)
    started_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-started_at"]

    def __str__(self) -> str:
        return f"reconciliation {self.started_at:%Y-%m-%d %H:%M}"


class DriftItem(models.Model):
    class Kind(models.TextChoices):
        MISSING_LOCALLY = "missing_locally"
        MISSING_REMOTELY = "missing_remotely"
        CONFLICT = "conflict"

    class Resolution(models.TextChoices):
        APPLIED = "applied"  # the remote version was re-applied through the apply service
        FLAGGED = "flagged"  # left for a person: we cannot fix it from here

    report = models.ForeignKey(DriftReport, on_delete=models.CASCADE, related_name="items")
    entity = models.CharField(max_length=16)
    flashfx_id = models.CharField(max_length=24)
    kind = models.CharField(max_length=20, choices=Kind)
    differences = models.JSONField(default=dict)  # field -> [mirror value, FlashFX value]
    resolution = models.CharField(max_length=16, choices=Resolution)
    note = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.kind} {self.entity} {self.flashfx_id}"


class BalanceCheck(models.Model):
    """The balance FlashFX reports against the one the mirror implies (the balance proof)."""

    report = models.ForeignKey(
        DriftReport, null=True, blank=True, on_delete=models.CASCADE, related_name="balance_checks"
    )
    currency = models.CharField(max_length=3)
    reported_cleared = money()
    implied_cleared = money()
    reported_pending = money()
    implied_pending = money()
    checked_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-checked_at", "currency"]

    def __str__(self) -> str:
        return f"{self.currency} difference {self.cleared_difference}"

    @property
    def cleared_difference(self):
        return self.reported_cleared - self.implied_cleared

    @property
    def pending_difference(self):
        return self.reported_pending - self.implied_pending

    @property
    def balanced(self) -> bool:
        return self.cleared_difference == 0 and self.pending_difference == 0
