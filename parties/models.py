"""Mirrors of the company's parties at FlashFX: senders, recipients and sub-clients (docs/flashfx.md §3.4, §3.5, §3.9)."""

from __future__ import annotations

from django.db import models

from mirrors.base import Mirror, StatusOrder


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

    class Meta(Mirror.Meta):
        ordering = ["-flashfx_created_at", "-id"]

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

    class Meta(Mirror.Meta):
        ordering = ["-flashfx_created_at", "-id"]


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
