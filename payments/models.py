"""Mirrors of money movements at FlashFX: deposits, withdrawals and international payments.

Each holds the provider's own status (`flashfx_status`, exactly as received) and its documented
fields as typed columns: money as Decimal plus a currency. What keeps them true (sync runs,
drift reports, balance checks) lives in mirrors/.
"""

from __future__ import annotations

from django.db import models

from mirrors.base import Mirror, StatusOrder, money


class Transfer(Mirror):
    """What a deposit, a withdrawal and a payment share: a status, a sub-client, a creation time."""

    flashfx_status = models.CharField(max_length=24)
    currency = models.CharField(max_length=3)
    external_reference = models.CharField(max_length=300, blank=True)
    sub_client = models.ForeignKey(
        "parties.SubClient",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="%(class)ss",  # deposits, withdrawals, payments
    )
    sub_client_flashfx_id = models.CharField(max_length=24, blank=True)
    flashfx_created_at = models.DateTimeField(null=True, blank=True, db_index=True)

    FINAL: frozenset[str] = frozenset()

    class Meta(Mirror.Meta):
        abstract = True
        ordering = ["-flashfx_created_at", "-id"]


class Deposit(Transfer):
    """A pay-in to the company's BSB + account number (docs/flashfx.md §3.2)."""

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

    status_message = models.CharField(max_length=300, blank=True)
    amount = money()
    total_fee = money(null=True, blank=True)
    sender_account_name = models.CharField(max_length=300, blank=True)
    sender_bank_name = models.CharField(max_length=300, blank=True)
    sender_bsb = models.CharField(max_length=6, blank=True)
    sender_account_no = models.CharField(max_length=34, blank=True)
    cleared_at = models.DateTimeField(null=True, blank=True)
    refund_amount = money(null=True, blank=True)
    refund_reason = models.CharField(max_length=300, blank=True)
    refunded_at = models.DateTimeField(null=True, blank=True)
    rail = models.CharField(max_length=16, blank=True)
    rail_service = models.CharField(max_length=32, blank=True)

    class Meta(Transfer.Meta):
        permissions = [("reject_deposit", "Can reject (refund) a deposit")]


class Withdrawal(Transfer):
    """A local AUD payout (docs/flashfx.md §3.3). Staff call it a payout (docs/architecture.md)."""

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

    status_message = models.CharField(max_length=300, blank=True)
    reject_code = models.CharField(max_length=64, blank=True)
    amount = money()
    total_fee = money(null=True, blank=True)
    recipient_flashfx_id = models.CharField(max_length=24, blank=True)
    recipient_name = models.CharField(max_length=300, blank=True)
    recipient_bsb = models.CharField(max_length=6, blank=True)
    recipient_account_no = models.CharField(max_length=34, blank=True)
    recipient_payid = models.CharField(max_length=254, blank=True)
    cleared_at = models.DateTimeField(null=True, blank=True)
    rejected_at = models.DateTimeField(null=True, blank=True)
    refunded_at = models.DateTimeField(null=True, blank=True)
    refund_amount = money(null=True, blank=True)
    refund_reason = models.CharField(max_length=300, blank=True)
    rail = models.CharField(max_length=16, blank=True)
    rail_service = models.CharField(max_length=32, blank=True)

    class Meta(Transfer.Meta):
        permissions = [
            ("create_payout", "Can start a payout"),
            ("approve_payout", "Can approve someone else's payout"),
        ]


class Payment(Transfer):
    """An international FX payment (docs/flashfx.md §3.6)."""

    STATUS_ORDER = StatusOrder(
        ranks={"INITIALISING": 0, "OPEN": 1, "CLOSED": 2, "FAILED": 2, "CANCELLED": 2}
    )
    FINAL = frozenset({"CLOSED", "FAILED", "CANCELLED"})

    size = money(null=True, blank=True)
    currency = models.CharField(max_length=3, blank=True)  # the side `size` is in; may be absent
    from_currency = models.CharField(max_length=3)
    to_currency = models.CharField(max_length=3)
    from_amount = money(null=True, blank=True)
    to_amount = money(null=True, blank=True)
    recipient_flashfx_id = models.CharField(max_length=24, blank=True)
    recipient_name = models.CharField(max_length=300, blank=True)

    class Meta(Transfer.Meta):
        permissions = [
            ("create_payment", "Can start an international payment"),
            ("approve_payment", "Can approve someone else's payment"),
        ]
