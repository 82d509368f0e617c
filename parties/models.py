"""Mirrors of the company's parties at FlashFX: senders, recipients and sub-clients (docs/flashfx.md §3.4, §3.5, §3.9)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from mirrors.base import Mirror, StatusOrder

# A recipient's bank details: a change to any of them starts its cooling period again.
BANK_DETAILS = ("bsb", "account_no", "payid", "iban", "bic")


class Sender(Mirror):
    """A remitter: the ultimate sender reported with a payout or payment."""

    nick_name = models.CharField(max_length=100, blank=True)
    first_name = models.CharField(max_length=75, blank=True)
    middle_name = models.CharField(max_length=75, blank=True)
    last_name = models.CharField(max_length=75, blank=True)
    company_name = models.CharField(max_length=256, blank=True)
    email = models.CharField(max_length=254, blank=True)
    country = models.CharField(max_length=2, blank=True)
    flashfx_created_at = models.DateTimeField(null=True, blank=True)
    # Ours: set when a member deleted it at FlashFX through our page. The row stays, so that
    # what pointed at it keeps its history; lists leave it out.
    deleted_at = models.DateTimeField(null=True, blank=True)

    OWN_FIELDS = frozenset({"deleted_at"})

    class Meta(Mirror.Meta):
        ordering = ["-flashfx_created_at", "-id"]
        permissions = [("manage_sender", "Can create, edit and delete senders at FlashFX")]

    @property
    def name(self) -> str:
        return self.company_name or " ".join(
            n for n in (self.first_name, self.middle_name, self.last_name) if n
        )


class Recipient(Mirror):
    """A beneficiary account (BSB, PayID, IBAN, ...)."""

    nick_name = models.CharField(max_length=100, blank=True)
    display_name = models.CharField(max_length=300, blank=True)
    account_id_type = models.CharField(max_length=16)
    currency = models.CharField(max_length=3)
    country = models.CharField(max_length=2, blank=True)
    first_name = models.CharField(max_length=75, blank=True)
    last_name = models.CharField(max_length=75, blank=True)
    company_name = models.CharField(max_length=256, blank=True)
    email = models.CharField(max_length=254, blank=True)
    bsb = models.CharField("BSB", max_length=6, blank=True)
    account_no = models.CharField(max_length=34, blank=True)
    payid = models.CharField("PayID", max_length=254, blank=True)
    iban = models.CharField("IBAN", max_length=34, blank=True)
    bic = models.CharField("BIC", max_length=11, blank=True)
    flashfx_created_at = models.DateTimeField(null=True, blank=True)
    # When we first saw these bank details (BANK_DETAILS): the recipient's creation, or the
    # last change to any of them, whoever made it (our page, FlashConnect, another system;
    # parties/mirrors.py works it out as each version is applied). Payouts to it are flagged
    # for PAYOUT_NEW_RECIPIENT_COOLING_HOURS after (parties.selectors.recipient_cooling_until).
    bank_details_changed_at = models.DateTimeField(null=True, blank=True)
    # Ours, as on Sender.
    deleted_at = models.DateTimeField(null=True, blank=True)

    OWN_FIELDS = frozenset({"deleted_at"})

    class Meta(Mirror.Meta):
        ordering = ["-flashfx_created_at", "-id"]
        permissions = [("manage_recipient", "Can create, edit and delete recipients at FlashFX")]

    @property
    def name(self) -> str:
        return (
            self.display_name
            or self.company_name
            or " ".join(n for n in (self.first_name, self.last_name) if n)
        )

    @property
    def bank_details(self) -> dict[str, str]:
        return {f: getattr(self, f) for f in BANK_DETAILS}


class SubClient(Mirror):
    """A client's customer with its own BSB + virtual account number (§3.9)."""

    # §3.9.4: temporary INITIATED/UNAPPROVED, then ACTIVE or FAILED_KYC; ACTIVE <-> DEACTIVATED.
    STATUS_ORDER = StatusOrder(
        ranks={
            "INITIATED": 0,
            "UNAPPROVED": 1,
            "ACTIVE": 2,
            "FAILED_KYC": 3,
            "DEACTIVATED": 3,
            "DISABLED": 4,
        },
        backward_edges=frozenset({("DEACTIVATED", "ACTIVE")}),
    )

    flashfx_status = models.CharField(max_length=24, blank=True)
    client_type = models.CharField(max_length=16, blank=True)
    full_name = models.CharField(max_length=300, blank=True)
    legal_name = models.CharField(max_length=256, blank=True)
    bsb = models.CharField("BSB", max_length=6, blank=True)
    account_no = models.CharField(max_length=16, blank=True)
    flashfx_created_at = models.DateTimeField(null=True, blank=True)

    class Meta(Mirror.Meta):
        ordering = ["-flashfx_created_at", "-id"]
        verbose_name = "sub-client"
        permissions = [("create_subclient", "Can create sub-clients at FlashFX")]


class PayeeCheck(models.Model):
    """One Confirmation of Payee check of a recipient's BSB, account and name (docs/flashfx.md
    §3.13.2). Advisory, as FlashFX says: a failed check is recorded (error_code, error_message)
    and shown, and never stops anything."""

    class Result(models.TextChoices):
        MATCH = "MATCH", "Match"
        CLOSE_MATCH = "CLOSE_MATCH", "Close match"
        NOT_MATCH = "NOT_MATCH", "No match"

    recipient = models.ForeignKey(Recipient, on_delete=models.CASCADE, related_name="payee_checks")
    bsb = models.CharField("BSB", max_length=6)
    account_no = models.CharField(max_length=34)
    name_asked = models.CharField(max_length=300)
    # FlashFX's answer as received (an unknown code is kept as it came); empty when the check failed.
    code = models.CharField(max_length=32, blank=True)
    message = models.CharField(max_length=500, blank=True)
    bank_name = models.CharField("name the bank holds", max_length=300, blank=True)
    billable = models.BooleanField(null=True, blank=True)
    error_code = models.CharField(max_length=64, blank=True)
    error_message = models.CharField(max_length=500, blank=True)
    checked_at = models.DateTimeField(default=timezone.now)
    checked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )

    class Meta:
        ordering = ["-checked_at", "-id"]
        indexes = [models.Index(fields=["recipient", "-checked_at", "-id"])]

    def __str__(self) -> str:
        return (
            f"PayeeCheck {self.pk} of recipient {self.recipient_id}: {self.code or self.error_code}"
        )

    @property
    def failed(self) -> bool:
        return not self.code
