"""Mirrors of money movements at FlashFX: deposits, withdrawals and international payments.

Each holds the provider's own status (`flashfx_status`, exactly as received) and its documented
fields as typed columns: money as Decimal plus a currency. What keeps them true (sync runs,
drift reports, balance checks) lives in mirrors/.
"""

from __future__ import annotations

import secrets
import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.db.models.functions import Coalesce
from django.utils import timezone

from mirrors.base import Mirror, StatusOrder, money

# What the dashboard's money in and out leave out (MoneyRollup, backoffice/dashboard.py).
DEPOSIT_NOT_IN = ("CANCELLED",)
PAYOUT_NOT_OUT = ("FAILED", "REFUNDED", "CANCELLED")
PAYMENT_NOT_OUT = ("FAILED", "CANCELLED")


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
    OWN_FIELDS = frozenset({"review_state", "assignee_id", "third_party"})

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

    # Ours, beside FlashFX's status: the apply rule never writes these (payments/services/).
    class Review(models.TextChoices):
        NEW = "new"
        MATCHED = "matched"  # to an expected payment, automatically or confirmed by a person
        ACCEPTED = "accepted"
        FLAGGED = "flagged"  # needs a second look; the reason is a note
        REJECTED = "rejected"  # refunded at our request

    review_state = models.CharField(max_length=12, choices=Review, default=Review.NEW)
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="assigned_deposits",
        db_index=False,  # deposit_assignee_received leads with it: one index, not two
    )
    # Transfer's, without its single-column index: deposit_subclient_received leads with it.
    sub_client = models.ForeignKey(
        "parties.SubClient",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="deposits",
        db_index=False,
    )
    third_party = models.BooleanField(
        default=False,
        help_text="The payer's name matches neither the company nor the sub-client paid to.",
    )

    class Meta(Transfer.Meta):
        permissions = [
            ("reject_deposit", "Can reject (refund) a deposit"),
            ("review_deposit", "Can assign, note, accept, flag and match deposits"),
        ]
        # The queue (payments/selectors/deposits.py): "received" is the expression
        # COALESCE(flashfx_created_at, created_at), indexed as such so that sorting by it, a
        # date range and the keyset cursor all walk one index; each filter gets its own index
        # led by the filtered column and followed by the sort key, so a filtered page is an
        # index range read in order. Trigram indexes for the search are PostgreSQL-only and
        # live in migration 0005 alone.
        indexes = [
            models.Index(
                Coalesce("flashfx_created_at", "created_at"), "id", name="deposit_received"
            ),
            models.Index("amount", "id", name="deposit_amount"),
            models.Index(
                "flashfx_status",
                Coalesce("flashfx_created_at", "created_at"),
                "id",
                name="deposit_status_received",
            ),
            models.Index(
                "review_state",
                Coalesce("flashfx_created_at", "created_at"),
                "id",
                name="deposit_review_received",
            ),
            models.Index(
                "sub_client",
                Coalesce("flashfx_created_at", "created_at"),
                "id",
                name="deposit_subclient_received",
            ),
            models.Index(
                "assignee",
                Coalesce("flashfx_created_at", "created_at"),
                "id",
                name="deposit_assignee_received",
            ),
        ]

    def money_moved(self):
        """In: the amount on the day it was received (less nothing: fees go out on their own),
        unless cancelled; out: its fee, and what was refunded on the day it was."""
        moved = []
        received = self.flashfx_created_at or self.created_at
        if self.flashfx_status not in DEPOSIT_NOT_IN:
            moved.append(("deposits", self.currency, received, self.amount))
            if self.total_fee:
                moved.append(("fees", self.currency, received, self.total_fee))
        if self.flashfx_status == "REFUNDED" and self.refunded_at is not None:
            refunded = self.refund_amount if self.refund_amount is not None else self.amount
            moved.append(("refunds", self.currency, self.refunded_at, refunded))
        return moved


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

    def money_moved(self):
        """Out: the amount and its fee on the day it was made, unless it failed or came back."""
        if self.flashfx_status in PAYOUT_NOT_OUT or self.flashfx_created_at is None:
            return []
        moved = [("payouts", self.currency, self.flashfx_created_at, self.amount)]
        if self.total_fee:
            moved.append(("fees", self.currency, self.flashfx_created_at, self.total_fee))
        return moved


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

    def money_moved(self):
        """Out: the from side on the day it was made, unless it failed or was cancelled."""
        if (
            self.flashfx_status in PAYMENT_NOT_OUT
            or self.flashfx_created_at is None
            or self.from_amount is None
        ):
            return []
        return [("payments", self.from_currency, self.flashfx_created_at, self.from_amount)]


class DepositNote(models.Model):
    """A member's note on a deposit (why it is flagged, what the payer said). Append-only."""

    deposit = models.ForeignKey(Deposit, on_delete=models.CASCADE, related_name="notes")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    text = models.TextField(max_length=2000)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"Note on {self.deposit} by {self.author}"


class ExpectedPayment(models.Model):
    """A payment staff expect to arrive as a deposit, entered by hand or from a CSV upload.

    Matched at most once (the one-to-one `deposit`), and each deposit matches at most one.
    """

    class Source(models.TextChoices):
        FORM = "form"
        CSV = "csv"

    code = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    payer_name = models.CharField(max_length=300)
    amount = money()
    currency = models.CharField(max_length=3, default="AUD")
    reference = models.CharField(max_length=300, blank=True)
    due_on = models.DateField()
    sub_client = models.ForeignKey(
        "parties.SubClient",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="expected_payments",
    )
    source = models.CharField(max_length=8, choices=Source, default=Source.FORM)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    deposit = models.OneToOneField(
        Deposit,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="expected_payment",
    )
    matched_at = models.DateTimeField(null=True, blank=True)
    matched_by = models.ForeignKey(  # None with a deposit: matched automatically
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )

    class Meta:
        ordering = ["due_on", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(amount__gt=0), name="expected_payment_amount_positive"
            )
        ]
        indexes = [
            models.Index(
                fields=["amount", "currency"],
                condition=Q(deposit=None),
                name="expected_open_amount",
            ),
            models.Index(fields=["due_on"], condition=Q(deposit=None), name="expected_open_due"),
        ]

    def __str__(self) -> str:
        return f"{self.payer_name} {self.currency} {self.amount} due {self.due_on}"


class MatchProposal(models.Model):
    """A near match between an expected payment and a deposit, for a person to confirm or refuse."""

    class State(models.TextChoices):
        PROPOSED = "proposed"
        CONFIRMED = "confirmed"
        REFUSED = "refused"

    expected = models.ForeignKey(
        ExpectedPayment, on_delete=models.CASCADE, related_name="proposals"
    )
    deposit = models.ForeignKey(Deposit, on_delete=models.CASCADE, related_name="match_proposals")
    reason = models.CharField(max_length=200)  # e.g. "same amount, similar payer name"
    state = models.CharField(max_length=10, choices=State, default=State.PROPOSED)
    created_at = models.DateTimeField(default=timezone.now)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["expected", "deposit"], name="match_proposal_once")
        ]

    def __str__(self) -> str:
        return f"{self.deposit} ~ {self.expected} ({self.state})"


class Approval(models.Model):
    """Maker-checker: one member asks, another with `permission` approves or declines.

    Bound to what will be sent: `payload` is exactly that, and `payload_hash` its SHA-256 over
    canonical JSON, checked again before anything goes to FlashFX (payments/services/approvals.py).
    Reused by every money action that needs four eyes (deposit refunds, payouts, payments).
    """

    class State(models.TextChoices):
        PENDING = "pending"
        APPROVED = "approved"
        DECLINED = "declined"
        EXPIRED = "expired"
        CANCELLED = "cancelled"

    code = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    action = models.CharField(max_length=64)  # e.g. "deposit.refund"
    permission = models.CharField(max_length=100)  # what the checker needs, "app.codename"
    summary = models.CharField(max_length=300)  # what is asked, in words
    payload = models.JSONField()
    payload_hash = models.CharField(max_length=64)
    state = models.CharField(max_length=10, choices=State, default=State.PENDING)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    requested_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_note = models.CharField(max_length=500, blank=True)
    # How many distinct members must approve (never the requester): one ApprovalSignature
    # each; the last one decides. One for deposit refunds; payouts take it from their tier.
    required = models.PositiveSmallIntegerField(default=1)

    class Meta:
        ordering = ["-requested_at", "-id"]
        indexes = [
            models.Index(
                fields=["requested_at"], condition=Q(state="pending"), name="approval_pending"
            )
        ]
        constraints = [
            # A change of the payout policy is approved against the policy it replaces: one
            # waits at a time (payments/services/payout_policy.py).
            models.UniqueConstraint(
                fields=["action"],
                condition=Q(state="pending", action="payout.policy"),
                name="approval_one_pending_policy_change",
            )
        ]

    def __str__(self) -> str:
        return f"Approval of {self.action}: {self.summary} ({self.state})"


class DepositRefund(models.Model):
    """Our intent to reject (refund) a deposit, recorded before refundDeposit is called.

    awaiting_approval -> queued -> sending -> sent (FlashFX: REFUNDING) -> completed (REFUNDED);
    or declined / expired (the approval), refused (FlashFX said no, with its code), unknown
    (no answer: resolved by reading the deposit back) and failed (it never went out). At most
    one active refund per deposit, enforced by the database.
    """

    class State(models.TextChoices):
        AWAITING_APPROVAL = "awaiting_approval"
        QUEUED = "queued"
        SENDING = "sending"
        UNKNOWN = "unknown"
        SENT = "sent"
        COMPLETED = "completed"
        DECLINED = "declined"
        EXPIRED = "expired"
        REFUSED = "refused"
        FAILED = "failed"

    ACTIVE = (
        State.AWAITING_APPROVAL,
        State.QUEUED,
        State.SENDING,
        State.UNKNOWN,
        State.SENT,
        State.COMPLETED,
    )

    class Reason(models.TextChoices):
        UNKNOWN_PAYER = "unknown_payer", "Payer not known to us"
        NOT_EXPECTED = "not_expected", "Payment not expected"
        DUPLICATE = "duplicate", "Duplicate payment"
        WRONG_AMOUNT = "wrong_amount", "Wrong amount"
        WRONG_ACCOUNT = "wrong_account", "Paid to the wrong account"
        THIRD_PARTY = "third_party", "Third-party payment not accepted"
        COMPLIANCE = "compliance", "Compliance concern"
        OTHER = "other", "Other"

    code = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    deposit = models.ForeignKey(Deposit, on_delete=models.PROTECT, related_name="refunds")
    amount = money()
    currency = models.CharField(max_length=3)
    reason_code = models.CharField(max_length=16, choices=Reason)
    reason = models.CharField(max_length=280)  # the text sent to FlashFX
    state = models.CharField(max_length=20, choices=State)
    approval = models.OneToOneField(
        Approval, null=True, blank=True, on_delete=models.PROTECT, related_name="deposit_refund"
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    requested_at = models.DateTimeField(default=timezone.now)
    attempts = models.PositiveIntegerField(default=0)
    sent_at = models.DateTimeField(null=True, blank=True)  # when the call went out (last attempt)
    completed_at = models.DateTimeField(null=True, blank=True)
    error_code = models.CharField(max_length=64, blank=True)  # FlashFX's, or ours
    error_message = models.CharField(max_length=500, blank=True)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-requested_at", "-id"]
        permissions = [("approve_refund", "Can approve someone else's deposit refund")]
        constraints = [
            models.CheckConstraint(
                condition=Q(amount__gt=0), name="deposit_refund_amount_positive"
            ),
            models.UniqueConstraint(
                fields=["deposit"],
                condition=Q(
                    state__in=[
                        "awaiting_approval",
                        "queued",
                        "sending",
                        "unknown",
                        "sent",
                        "completed",
                    ]
                ),
                name="deposit_refund_one_active",
            ),
        ]

    def __str__(self) -> str:
        return f"Refund of {self.currency} {self.amount} on {self.deposit} ({self.state})"


class ApprovalSignature(models.Model):
    """One member's approval of an Approval that needs `required` of them, each a different
    member and never the requester (payments/services/approvals.py). Bound to the hash signed."""

    approval = models.ForeignKey(Approval, on_delete=models.CASCADE, related_name="signatures")
    signer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    payload_hash = models.CharField(max_length=64)
    signed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["signed_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["approval", "signer"], name="approval_signature_once")
        ]

    def __str__(self) -> str:
        return f"{self.signer} signed {self.approval_id}"


def new_payout_code() -> str:
    """ "PO-" and 10 characters of Crockford's base32 (no I, L, O, U): 50 random bits, read aloud
    without confusion. Our externalId and idempotencyKey at FlashFX (docs/flashfx.md §2.2, §2.3)."""
    alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
    return "PO-" + "".join(secrets.choice(alphabet) for _ in range(10))


class Payout(models.Model):
    """A payout a member proposes, others approve, and a worker sends to FlashFX exactly once
    (createWithdrawal, docs/flashfx.md §3.3.1); followed afterwards through its Withdrawal mirror.

    awaiting_approval -> approved -> submitting -> submitted, or declined / expired (the
    approval), cancelled (by its maker while awaiting approval) and submit_failed (FlashFX said
    no, with its code). Every move is a PayoutEvent and an audit event (payments/services/payouts.py).
    """

    class State(models.TextChoices):
        AWAITING_APPROVAL = "awaiting_approval", "Awaiting approval"
        APPROVED = "approved", "Approved"
        SUBMITTING = "submitting", "Submitting"
        SUBMITTED = "submitted", "Submitted"
        DECLINED = "declined", "Declined"
        EXPIRED = "expired", "Expired"
        CANCELLED = "cancelled", "Cancelled"
        SUBMIT_FAILED = "submit_failed", "Submit failed"

    # FlashFX's TransactionReason (flashfx/schema.graphql; docs/flashfx.md §5.39).
    class Reason(models.TextChoices):
        BUSINESS = "BUSINESS", "Business"
        SALARY = "SALARY", "Salary"
        GOODS = "GOODS", "Goods"
        SERVICES = "SERVICES", "Services"
        INVESTMENT = "INVESTMENT", "Investment"
        LOAN_REPAYMENT = "LOAN_REPAYMENT", "Loan repayment"
        PROPERTY = "PROPERTY", "Property"
        EDUCATION = "EDUCATION", "Education"
        TRAVEL = "TRAVEL", "Travel"
        FAMILY_SUPPORT = "FAMILY_SUPPORT", "Family support"
        PERSONAL = "PERSONAL", "Personal"
        GIFT = "GIFT", "Gift"
        OTHER = "OTHER", "Other"

    code = models.CharField(max_length=13, unique=True, default=new_payout_code, editable=False)
    recipient = models.ForeignKey(
        "parties.Recipient", on_delete=models.PROTECT, related_name="payouts"
    )
    sender = models.ForeignKey(
        "parties.Sender", null=True, blank=True, on_delete=models.PROTECT, related_name="payouts"
    )
    sub_client = models.ForeignKey(
        "parties.SubClient",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="payouts",
    )
    amount = money()
    currency = models.CharField(max_length=3, default="AUD")
    reference = models.CharField(max_length=18)  # externalReference: Direct Entry's 18 (§2.2)
    reason = models.CharField(max_length=20, choices=Reason)
    maker = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    state = models.CharField(max_length=20, choices=State, default=State.AWAITING_APPROVAL)
    approval = models.OneToOneField(  # the current one; earlier (voided) ones stay in the audit
        Approval, null=True, blank=True, on_delete=models.PROTECT, related_name="payout"
    )
    withdrawal = models.OneToOneField(
        Withdrawal, null=True, blank=True, on_delete=models.PROTECT, related_name="payout"
    )
    resent_from = models.ForeignKey(  # "Send again" after a TECHNICAL_ISSUE cancellation
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="resent_as"
    )
    error_code = models.CharField(max_length=64, blank=True)  # FlashFX's, on submit_failed
    error_message = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    # A payout of a batch file is approved with its batch, not one by one (approval is None
    # until a change voids the batch's binding and it is asked about on its own).
    batch = models.ForeignKey(
        "PayoutBatch", null=True, blank=True, on_delete=models.PROTECT, related_name="payouts"
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="payout_amount_positive"),
            models.CheckConstraint(  # FlashFX reports one of them (docs/flashfx.md §3.3.1)
                condition=Q(sender=None) | Q(sub_client=None), name="payout_one_reported_sender"
            ),
        ]
        indexes = [
            models.Index(fields=["created_at", "id"], name="payout_created"),
            models.Index(fields=["state", "created_at", "id"], name="payout_state_created"),
        ]

    def __str__(self) -> str:
        return f"Payout {self.code} {self.currency} {self.amount} ({self.state})"

    def get_absolute_url(self) -> str:
        from django.urls import reverse

        return reverse("payments:payout", args=[self.code])


class PayoutEvent(models.Model):
    """A move of a payout's workflow: from, to, who, when, and what it was about. Append-only."""

    payout = models.ForeignKey(Payout, on_delete=models.CASCADE, related_name="events")
    from_state = models.CharField(max_length=20, blank=True)  # "" when created
    to_state = models.CharField(max_length=20)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    at = models.DateTimeField(default=timezone.now)
    detail = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["at", "id"]

    def __str__(self) -> str:
        return f"{self.payout_id}: {self.from_state or '-'} -> {self.to_state}"


class Outbox(models.Model):
    """What must be sent for an approved money action, written by the transaction that gives
    the last approval: the request (less the key, which is the action's code) and the hash it
    was approved under. A worker claims it (approved -> submitting) before any call."""

    class State(models.TextChoices):
        APPROVED = "approved"
        SUBMITTING = "submitting"
        SUBMITTED = "submitted"
        SUBMIT_FAILED = "submit_failed"
        VOIDED = "voided"  # the hash no longer matched: nothing was sent

    request = models.JSONField()
    payload_hash = models.CharField(max_length=64)
    state = models.CharField(max_length=16, choices=State, default=State.APPROVED)
    attempts = models.PositiveIntegerField(default=0)  # calls made
    created_at = models.DateTimeField(default=timezone.now)
    claimed_at = models.DateTimeField(null=True, blank=True)
    done_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)

    class Meta:
        abstract = True
        ordering = ["created_at", "id"]


class PayoutOutbox(Outbox):
    """A payout's outbox row: the CreateWithdrawalInput. At most one live row per payout,
    enforced by the database."""

    payout = models.ForeignKey(Payout, on_delete=models.PROTECT, related_name="outbox")

    class Meta(Outbox.Meta):
        constraints = [
            models.UniqueConstraint(
                fields=["payout"],
                condition=Q(state__in=["approved", "submitting", "submitted"]),
                name="payout_outbox_one_live",
            )
        ]
        indexes = [
            models.Index(
                fields=["state", "claimed_at"],
                condition=Q(state__in=["approved", "submitting"]),
                name="payout_outbox_open",
            )
        ]

    def __str__(self) -> str:
        return f"Outbox of {self.payout_id} ({self.state})"


class PayoutPolicyVersion(models.Model):
    """An approval policy for payouts, in force from when a second admin approved it; the
    newest is the one in force, and before the first, settings' PAYOUT_APPROVAL_TIERS.

    Written only by the approval of its change (payments/services/payout_policy.py): who
    proposed it and who approved it are that Approval's requested_by and decided_by.
    """

    tiers = models.CharField(max_length=500)  # "10000.00:1,*:2" (payout_policy.parse_tiers)
    ttl_hours = models.PositiveSmallIntegerField()
    approval = models.OneToOneField(Approval, on_delete=models.PROTECT, related_name="+")
    in_force_from = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-in_force_from", "-id"]

    def __str__(self) -> str:
        return f"Payout policy {self.tiers} ({self.ttl_hours} h) from {self.in_force_from:%Y-%m-%d}"


def new_batch_code() -> str:
    """ "PB-" and 10 characters of Crockford's base32, as a payout's code (new_payout_code)."""
    return "PB-" + new_payout_code().removeprefix("PO-")


class PayoutBatchFile(models.Model):
    """An uploaded batch file (docs/batch-payouts.md), kept as uploaded: a batch made from it
    with its bad rows dropped needs no second upload, and the record shows what was sent.
    `rows_*`, `total` and `errors` are the last check's summary (payout_batches.batch_recheck)."""

    name = models.CharField(max_length=255)
    data = models.BinaryField()
    sha256 = models.CharField(max_length=64, db_index=True)
    size = models.PositiveIntegerField()
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    uploaded_at = models.DateTimeField(default=timezone.now)
    rows_checked = models.PositiveIntegerField(default=0)
    rows_clean = models.PositiveIntegerField(default=0)
    total = money(default=0)  # of the clean rows
    currency = models.CharField(max_length=3, default="AUD")
    errors = models.JSONField(default=list, blank=True)  # [{"row", "column", "message"}, ...]
    checked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-uploaded_at", "-id"]

    def __str__(self) -> str:
        return f"Batch file {self.name} ({self.size} bytes)"


class PayoutBatch(models.Model):
    """Payouts from one file, approved as one unit (its count and total) and sent through the
    payout pipeline (payments/services/payout_batches.py).

    awaiting_approval -> approved -> sending -> done, or declined / expired (the approval),
    cancelled (by its maker while it awaits approval). `payload_hash` is the hash its Approval
    is bound to: over every payout's own hash, so any change to one voids it.
    """

    class State(models.TextChoices):
        AWAITING_APPROVAL = "awaiting_approval", "Awaiting approval"
        APPROVED = "approved", "Approved"
        SENDING = "sending", "Sending"
        DONE = "done", "Done"
        DECLINED = "declined", "Declined"
        EXPIRED = "expired", "Expired"
        CANCELLED = "cancelled", "Cancelled"

    code = models.CharField(max_length=13, unique=True, default=new_batch_code, editable=False)
    state = models.CharField(max_length=20, choices=State, default=State.AWAITING_APPROVAL)
    file = models.ForeignKey(PayoutBatchFile, on_delete=models.PROTECT, related_name="batches")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    count = models.PositiveIntegerField()  # payouts (dropped rows not counted)
    total = money()
    currency = models.CharField(max_length=3, default="AUD")
    sender = models.ForeignKey(  # for the rows that name none
        "parties.Sender", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    dropped = models.PositiveIntegerField(default=0)  # bad rows the maker chose to drop
    approval = models.OneToOneField(
        Approval, null=True, blank=True, on_delete=models.PROTECT, related_name="payout_batch"
    )
    payload_hash = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    approved_at = models.DateTimeField(null=True, blank=True)
    done_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [models.CheckConstraint(condition=Q(total__gte=0), name="payout_batch_total")]
        indexes = [models.Index(fields=["state", "created_at"], name="payout_batch_state")]

    def __str__(self) -> str:
        return (
            f"Batch {self.code}: {self.count} payouts, {self.currency} {self.total} ({self.state})"
        )

    def get_absolute_url(self) -> str:
        from django.urls import reverse

        return reverse("payments:payout_batch", args=[self.code])


class PayoutBatchRow(models.Model):
    """One row of a batch's file: its number as the file shows it, its cells, and its payout.

    A row with bank details (a recipient to be created at FlashFX when the batch is sent) gets
    its payout then, under the code reserved here (`payout_code`); `payload_hash` is what the
    batch's approval binds for it. A dropped row keeps its errors and has no payout."""

    batch = models.ForeignKey(PayoutBatch, on_delete=models.CASCADE, related_name="rows")
    row_number = models.PositiveIntegerField()
    cells = models.JSONField(default=dict)
    payout_code = models.CharField(max_length=13, blank=True)
    payload_hash = models.CharField(max_length=64, blank=True)
    payout = models.OneToOneField(
        Payout, null=True, blank=True, on_delete=models.PROTECT, related_name="batch_row"
    )
    new_recipient = models.JSONField(null=True, blank=True)  # RecipientForm.recipient_fields()
    # A clean row's values as checked (batch_file.BatchRow), for a payout made when it is sent.
    amount = money(null=True, blank=True)
    reference = models.CharField(max_length=18, blank=True)
    reason = models.CharField(max_length=20, blank=True)
    sender = models.ForeignKey(  # the row's, or the batch's
        "parties.Sender", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    recipient = models.ForeignKey(  # named by the row, or created from its bank details
        "parties.Recipient", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    dropped = models.BooleanField(default=False)
    errors = models.JSONField(default=list, blank=True)  # a dropped row's: [{"column", "message"}]
    error = models.CharField(max_length=500, blank=True)  # why it was not sent (e.g. recipient)

    class Meta:
        ordering = ["batch", "row_number"]
        constraints = [
            models.UniqueConstraint(fields=["batch", "row_number"], name="payout_batch_row_once")
        ]

    def __str__(self) -> str:
        return f"Row {self.row_number} of batch {self.batch_id}"


def new_payment_order_code() -> str:
    """ "PM-" and 10 characters of Crockford's base32, as payouts' codes (new_payout_code): our
    externalId and idempotencyKey for createPayment (docs/flashfx.md §2.2, §5.13)."""
    return "PM-" + new_payout_code().removeprefix("PO-")


class PaymentOrder(models.Model):
    """An international payment a member proposes, others approve, and a worker sends to FlashFX
    exactly once (createPayment, docs/flashfx.md §3.6.1); followed afterwards through its
    Payment mirror (OPEN -> CLOSED / FAILED / CANCELLED, §3.6.3).

    The workflow is a payout's (Payout.State; payments/services/payment_orders.py). The
    amount is `size` in `size_currency` (the from or the to side). The maker's quote is kept as
    it was shown (`quoted_*`); the approval binds the amounts, never the rate: the rate is the
    one FlashFX applies at creation (§5.26), seen on `payment` when it settles.
    """

    State = Payout.State
    Reason = Payout.Reason  # FlashFX's TransactionReason, as on payouts (§5.39)

    # FlashFX's SourceOfFunds (flashfx/schema.graphql; docs/flashfx.md §3.6.1, §5.39).
    class SourceOfFunds(models.TextChoices):
        BUSINESS_FUNDS = "BUSINESS_FUNDS", "Business funds"
        SALARY = "SALARY", "Salary"
        SAVINGS = "SAVINGS", "Savings"
        INVESTMENT = "INVESTMENT", "Investment"
        GIFT = "GIFT", "Gift"
        LOAN = "LOAN", "Loan"
        INHERITANCE = "INHERITANCE", "Inheritance"
        PROPERTY_SALE = "PROPERTY_SALE", "Property sale"
        OTHER = "OTHER", "Other"

    code = models.CharField(
        max_length=13, unique=True, default=new_payment_order_code, editable=False
    )
    state = models.CharField(max_length=20, choices=State, default=State.AWAITING_APPROVAL)
    # Neither sender nor sub-client: the company itself sends it.
    sender = models.ForeignKey(
        "parties.Sender",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="payment_orders",
    )
    sub_client = models.ForeignKey(
        "parties.SubClient",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="payment_orders",
    )
    recipient = models.ForeignKey(
        "parties.Recipient", on_delete=models.PROTECT, related_name="payment_orders"
    )
    from_currency = models.CharField(max_length=3)
    to_currency = models.CharField(max_length=3)
    size = money()
    size_currency = models.CharField(max_length=3)  # from_currency or to_currency
    reason = models.CharField(max_length=20, choices=Reason)
    source_of_funds = models.CharField(max_length=20, choices=SourceOfFunds)
    reference = models.CharField(max_length=280)  # externalReference (§2.2)
    # The quote the maker saw when proposing it (indicative: nothing at FlashFX holds it).
    quoted_rate = models.DecimalField(max_digits=20, decimal_places=8)
    quoted_fee = money()
    quoted_from_amount = money()
    quoted_to_amount = money()
    quoted_at = models.DateTimeField()
    quote_expires_at = models.DateTimeField()
    approval = models.OneToOneField(  # the current one; earlier (voided) ones stay in the audit
        Approval, null=True, blank=True, on_delete=models.PROTECT, related_name="payment_order"
    )
    payment = models.OneToOneField(
        Payment, null=True, blank=True, on_delete=models.PROTECT, related_name="order"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    error_code = models.CharField(max_length=64, blank=True)  # FlashFX's, on submit_failed
    error_message = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(size__gt=0), name="payment_order_size_positive"),
            models.CheckConstraint(  # FlashFX takes one of them (docs/flashfx.md §3.6.1)
                condition=Q(sender=None) | Q(sub_client=None),
                name="payment_order_one_reported_sender",
            ),
            models.CheckConstraint(
                condition=Q(size_currency=models.F("from_currency"))
                | Q(size_currency=models.F("to_currency")),
                name="payment_order_size_side",
            ),
        ]
        indexes = [
            models.Index(fields=["created_at", "id"], name="payment_order_created"),
            models.Index(fields=["state", "created_at", "id"], name="payment_order_state_created"),
        ]

    def __str__(self) -> str:
        return (
            f"Payment {self.code} {self.size_currency} {self.size} "
            f"{self.from_currency}->{self.to_currency} ({self.state})"
        )

    def get_absolute_url(self) -> str:
        from django.urls import reverse

        return reverse("payments:payment", args=[self.code])


class PaymentOrderEvent(models.Model):
    """A move of a payment order's workflow, or FlashFX's news of its payment: from, to, who,
    when, what it was about. Append-only."""

    order = models.ForeignKey(PaymentOrder, on_delete=models.CASCADE, related_name="events")
    from_state = models.CharField(max_length=20, blank=True)  # "" when created
    to_state = models.CharField(max_length=20)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    at = models.DateTimeField(default=timezone.now)
    detail = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["at", "id"]

    def __str__(self) -> str:
        return f"{self.order_id}: {self.from_state or '-'} -> {self.to_state}"


class PaymentOrderOutbox(Outbox):
    """A payment order's outbox row: the PaymentInput (its key is the order's code). At most
    one live row per order, enforced by the database."""

    order = models.ForeignKey(PaymentOrder, on_delete=models.PROTECT, related_name="outbox")

    class Meta(Outbox.Meta):
        constraints = [
            models.UniqueConstraint(
                fields=["order"],
                condition=Q(state__in=["approved", "submitting", "submitted"]),
                name="payment_order_outbox_one_live",
            )
        ]
        indexes = [
            models.Index(
                fields=["state", "claimed_at"],
                condition=Q(state__in=["approved", "submitting"]),
                name="payment_order_outbox_open",
            )
        ]

    def __str__(self) -> str:
        return f"Outbox of payment order {self.order_id} ({self.state})"


class ExportJob(models.Model):
    """An export too large to answer at once (more than EXPORT_ASYNC_ROWS rows): a worker writes
    the file under EXPORT_DIR, its owner downloads it until expires_at, then beat removes it
    (payments/exports/jobs.py)."""

    class State(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        DONE = "done", "Ready"
        FAILED = "failed", "Failed"
        EXPIRED = "expired", "Expired"

    code = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    list_name = models.CharField(max_length=40)  # payments.exports.registry name
    title = models.CharField(max_length=100)
    file_format = models.CharField(max_length=4)  # csv, xlsx
    filters = models.JSONField(default=dict, blank=True)  # as the list's filters() gave them
    columns = models.JSONField(default=list)  # column keys, in order
    zone = models.CharField(max_length=64)
    unmasked = models.BooleanField(default=False)  # the owner could see account numbers
    state = models.CharField(max_length=10, choices=State, default=State.QUEUED)
    rows_total = models.PositiveBigIntegerField(default=0)  # counted when asked
    rows_written = models.PositiveBigIntegerField(default=0)
    file_name = models.CharField(max_length=200, blank=True)  # under EXPORT_DIR
    size = models.PositiveBigIntegerField(default=0)
    error = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["owner", "created_at"], name="export_job_owner_created"),
            models.Index(fields=["state", "expires_at"], name="export_job_state_expires"),
        ]
        permissions = [
            # Exports mask account numbers (all but the last 3 characters) without it
            # (payments/exports/formatting.py); backoffice/roles.py grants it.
            ("view_account_number", "Can see full account numbers in exports"),
        ]

    def __str__(self) -> str:
        return f"Export {self.code} of {self.list_name} ({self.state})"

    @property
    def percent(self) -> int:
        if self.state == self.State.DONE:
            return 100
        if not self.rows_total:
            return 0
        return min(99, self.rows_written * 100 // self.rows_total)
