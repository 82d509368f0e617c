"""What keeps the mirrors true, and the shared FlashFX token.

Sync runs, drift reports, balance snapshots and balance checks record how the mirrors were
kept true (mirrors/sync.py, mirrors/reconcile.py); the token row lets every process share one
FlashFX login when there is no Redis (mirrors/client.py).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from .base import money


class FlashFXToken(models.Model):
    """The FlashFX token shared by every process, when there is no Redis (one row, pk=1).

    The row is also the login lock: the process that logs in holds `SELECT ... FOR UPDATE` on
    it (on SQLite, the IMMEDIATE transaction's write lock) for the whole login call, so the
    others wait, then reuse its token (mirrors/client.py, flashfx/tokens.py).
    """

    SINGLETON = 1

    id = models.PositiveSmallIntegerField(primary_key=True, default=SINGLETON, editable=False)
    token = models.TextField(blank=True)  # a bearer secret; empty when there is none
    issued_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "FlashFX token"
        constraints = [
            models.CheckConstraint(condition=models.Q(id=1), name="flashfx_token_singleton")
        ]

    def __str__(self) -> str:  # never the token itself
        return f"FlashFX token (expires {self.expires_at})" if self.token else "no FlashFX token"


class BalanceSnapshot(models.Model):
    """A balance as FlashFX reported it at one moment (docs/flashfx.md §3.1)."""

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
        permissions = [("run_reconciliation", "Can run a reconciliation now")]

    def __str__(self) -> str:
        return f"reconciliation {self.started_at:%Y-%m-%d %H:%M}"


class DriftItem(models.Model):
    class Kind(models.TextChoices):
        MISSING_LOCALLY = "missing_locally", "Missing in our mirror"
        MISSING_REMOTELY = "missing_remotely", "Missing at FlashFX"
        CONFLICT = "conflict", "Fields differ"

    class Resolution(models.TextChoices):
        APPLIED = "applied"  # the remote version was re-applied through the apply service
        FLAGGED = "flagged"  # left for a person: we cannot fix it from here

    class Settled(models.TextChoices):
        """How a person settled a flagged item (backoffice/reconciliation.py), audited."""

        REAPPLIED = "reapplied", "FlashFX's version re-applied"
        MARKED = "marked", "Marked resolved"
        SUPERSEDED = "superseded", "Settled with a later item of the same entity"

    report = models.ForeignKey(DriftReport, on_delete=models.CASCADE, related_name="items")
    entity = models.CharField(max_length=16)
    flashfx_id = models.CharField(max_length=24)
    kind = models.CharField(max_length=20, choices=Kind)
    differences = models.JSONField(default=dict)  # field -> [mirror value, FlashFX value]
    resolution = models.CharField(max_length=16, choices=Resolution)
    note = models.CharField(max_length=300, blank=True)
    # A flagged item stays open until a person settles it.
    settled = models.CharField(max_length=16, choices=Settled, blank=True)
    settled_at = models.DateTimeField(null=True, blank=True)
    settled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    settled_note = models.TextField(blank=True)

    class Meta:
        ordering = ["id"]
        permissions = [("resolve_driftitem", "Can settle a drift item")]
        indexes = [
            models.Index(
                fields=["entity", "flashfx_id"],
                condition=models.Q(resolution="flagged", settled=""),
                name="mirrors_drift_open_idx",
            )
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.entity} {self.flashfx_id}"

    @property
    def is_open(self) -> bool:
        return self.resolution == self.Resolution.FLAGGED and not self.settled


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


class StatusChange(models.Model):
    """A mirrored row created, or its FlashFX status moved: when, from what, and what told us.

    Written by the apply rule (mirrors/apply.py) in the transaction that applied the change,
    whatever brought it: a sync run, a webhook event, reconciliation or the reply to one of our
    own calls. Pages draw an entity's timeline from these, its webhook events and its audit
    events. Append-only.
    """

    entity = models.CharField(max_length=64)  # the model's label, e.g. "payments.deposit"
    flashfx_id = models.CharField("FlashFX id", max_length=24)
    old_status = models.CharField(max_length=24, blank=True)  # "" when the row was created
    new_status = models.CharField(max_length=24, blank=True)
    observed_at = models.DateTimeField(help_text="When FlashFX's version was observed or sent.")
    recorded_at = models.DateTimeField(default=timezone.now)
    source = models.CharField(max_length=64, blank=True)  # "sync", "webhook #12", "reply", ...

    class Meta:
        ordering = ["recorded_at", "id"]
        indexes = [models.Index(fields=["entity", "flashfx_id", "recorded_at"])]

    def __str__(self) -> str:
        return f"{self.entity} {self.flashfx_id}: {self.old_status or '—'} -> {self.new_status}"


class StatementLine(models.Model):
    """One line of a day's statement as FlashFX gave it, beside what our mirror holds for it;
    or a movement of that day only our mirror has. Kept as read (mirrors/statement.py): what
    FlashFX said, and when, stays on file after the mirror moves on."""

    class Match(models.TextChoices):
        MATCHED = "matched", "Matched"
        DIFFERS = "differs", "Amounts differ"
        ONLY_FLASHFX = "only_flashfx", "Only at FlashFX"
        ONLY_MIRROR = "only_mirror", "Only in our mirror"

    day = models.DateField()
    currency = models.CharField(max_length=3)
    position = models.PositiveIntegerField()  # FlashFX's order, then the mirror's extra lines
    fetched_at = models.DateTimeField()
    line_id = models.CharField("FlashFX line id", max_length=64, blank=True)
    created_at = models.DateTimeField(null=True, blank=True)
    type = models.CharField(max_length=32, blank=True)
    description = models.CharField(max_length=300, blank=True)
    transaction_id = models.CharField("FlashFX id", max_length=64, blank=True)
    debit = money(null=True, blank=True)
    credit = money(null=True, blank=True)
    balance = money(null=True, blank=True)
    entity = models.CharField(max_length=16, blank=True)  # the mirror it belongs to
    mirror_amount = money(null=True, blank=True)  # signed, as the line moves the balance
    match = models.CharField(max_length=16, choices=Match)

    class Meta:
        ordering = ["day", "currency", "position"]
        constraints = [
            models.UniqueConstraint(
                fields=["day", "currency", "position"], name="mirrors_statement_line_uniq"
            )
        ]

    def __str__(self) -> str:
        return f"{self.day} {self.currency} {self.type} {self.transaction_id}: {self.match}"

    @property
    def amount(self):
        """Signed, as the line moves the balance (credit minus debit); None for a mirror-only line."""
        if self.debit is None and self.credit is None:
            return None
        return (self.credit or 0) - (self.debit or 0)


class MoneyRollup(models.Model):
    """Money in and out per source, currency and UTC hour, kept by the apply rule in the same
    transaction as the mirror change it follows (mirrors/rollup.py): the dashboard's 30 days of
    charts read at most 720 hours per source, whatever the number of rows behind them."""

    source = models.CharField(max_length=16)  # deposits, fees, refunds, payouts, payments
    currency = models.CharField(max_length=3)
    hour = models.DateTimeField()  # the UTC hour's start
    amount = money()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["hour", "source", "currency"], name="mirrors_money_rollup_uniq"
            )
        ]

    def __str__(self) -> str:
        return f"{self.source} {self.currency} {self.hour:%Y-%m-%d %H}:00 {self.amount}"
