"""The sandbox's own storage: what FlashFX would hold for one client account."""

from __future__ import annotations

import secrets
from decimal import Decimal

from django.db import models
from django.utils import timezone


def new_object_id() -> str:
    """A 24-character lowercase hex id, like FlashFX's MongoDB ObjectIds (docs/flashfx.md §2.1)."""
    return secrets.token_hex(12)


def money_field(**kwargs) -> models.DecimalField:
    return models.DecimalField(max_digits=18, decimal_places=2, **kwargs)


class ObjectIdModel(models.Model):
    id = models.CharField(max_length=24, primary_key=True, default=new_object_id, editable=False)
    created_at = models.DateTimeField(default=timezone.now, db_index=True, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True
        ordering = ["-created_at", "-id"]  # newest first (docs/flashfx.md §5.11)


class StatefulModel(ObjectIdModel):
    """What the state machines move (machines.py): a status and the automatic steps still to come."""

    status = models.CharField(max_length=24)
    # Remaining automatic steps, e.g. ["PENDING", "CONFIRMED"]; cleared by a forced transition.
    plan = models.JSONField(default=list)

    class Meta(ObjectIdModel.Meta):
        abstract = True


class ApiUser(ObjectIdModel):
    """The account member who may use the API (access flag `api`, docs/flashfx.md §3.12)."""

    email = models.EmailField(unique=True)
    password_hash = models.CharField(max_length=200)
    affiliations = models.JSONField(default=list)  # e.g. ["FP_AUS"]


class LoginThrottle(models.Model):
    """At most one login per second per email (docs/flashfx.md §1.2, §5.9)."""

    email = models.CharField(max_length=254, primary_key=True)
    last_attempt_at = models.DateTimeField()


class RevokedToken(models.Model):
    jti = models.CharField(max_length=64, primary_key=True)
    expires_at = models.DateTimeField()


class Setting(models.Model):
    """Run-time configuration overrides and fault mix (conf.py)."""

    key = models.CharField(max_length=64, primary_key=True)
    value = models.JSONField()


class Balance(models.Model):
    currency = models.CharField(max_length=3, primary_key=True)
    cleared = money_field(default=Decimal("0.00"))
    pending = money_field(default=Decimal("0.00"))


class LedgerEntry(ObjectIdModel):
    """One line of the account statement: every movement of a cleared balance."""

    currency = models.CharField(max_length=3)
    kind = models.CharField(max_length=32)
    description = models.CharField(max_length=200)
    transaction_id = models.CharField(max_length=24)
    debit = money_field(default=Decimal("0.00"))
    credit = money_field(default=Decimal("0.00"))
    balance_after = money_field()

    class Meta(ObjectIdModel.Meta):
        ordering = ["created_at", "id"]


class Sender(ObjectIdModel):
    data = models.JSONField()  # the SenderInput fields as given (camelCase), plus nickName
    external_id = models.CharField(max_length=200, blank=True, db_index=True)


class Recipient(ObjectIdModel):
    data = models.JSONField()  # the RecipientInput fields as given (camelCase), plus derived ones
    account_id_type = models.CharField(max_length=16)
    currency = models.CharField(max_length=3)
    external_id = models.CharField(max_length=200, blank=True, db_index=True)


class SubClient(StatefulModel):
    data = models.JSONField()  # the CreateSubClientInput fields as given
    client_type = models.CharField(max_length=16)
    full_name = models.CharField(max_length=300)
    bsb = models.CharField(max_length=6)
    account_no = models.CharField(max_length=16, unique=True)
    external_id = models.CharField(max_length=200, blank=True, db_index=True)


class Transfer(StatefulModel):
    """What deposits, withdrawals and payments share."""

    status_message = models.CharField(max_length=300, blank=True)
    sub_client = models.ForeignKey(SubClient, null=True, blank=True, on_delete=models.PROTECT)
    external_id = models.CharField(max_length=200, blank=True, db_index=True)
    external_reference = models.CharField(max_length=300, blank=True)

    class Meta(StatefulModel.Meta):
        abstract = True


class Deposit(Transfer):
    amount = money_field()
    currency = models.CharField(max_length=3)
    total_fee = money_field(default=Decimal("0.00"))
    sender = models.JSONField(
        default=dict
    )  # accountName, companyName, bankName, bankCountry, bsb, accountNo
    recipient = models.JSONField(
        default=dict
    )  # accountName, accountNo, bsb (as typed by the payer)
    rail = models.CharField(max_length=16, default="NPP")
    rail_service = models.CharField(max_length=32, default="NPP")
    cleared_at = models.DateTimeField(null=True, blank=True)
    refund_amount = money_field(null=True, blank=True)
    refund_reason = models.CharField(max_length=300, blank=True)
    refunded_at = models.DateTimeField(null=True, blank=True)


class Withdrawal(Transfer):
    amount = money_field()
    currency = models.CharField(max_length=3)
    total_fee = money_field()
    reject_code = models.CharField(max_length=64, blank=True)
    sender = models.JSONField(null=True, blank=True)  # snapshot; "id" null when inline
    recipient = models.JSONField()  # snapshot; "id" null when inline
    callback_uri = models.CharField(max_length=2000, blank=True)
    reason = models.CharField(max_length=32, blank=True)
    rail = models.CharField(max_length=16)
    rail_service = models.CharField(max_length=32)
    cleared_at = models.DateTimeField(null=True, blank=True)
    rejected_at = models.DateTimeField(null=True, blank=True)
    refunded_at = models.DateTimeField(null=True, blank=True)
    refund_amount = money_field(null=True, blank=True)
    refund_reason = models.CharField(max_length=300, blank=True)


class Payment(Transfer):
    size = money_field()
    currency = models.CharField(max_length=3)
    from_currency = models.CharField(max_length=3)
    to_currency = models.CharField(max_length=3)
    from_amount = money_field()
    to_amount = money_field()
    rate = models.DecimalField(max_digits=18, decimal_places=8)
    converted = models.BooleanField(default=False)
    sender = models.JSONField(null=True, blank=True)
    recipient = models.JSONField(null=True, blank=True)
    source_of_funds = models.CharField(max_length=32, blank=True)
    reason = models.CharField(max_length=32, blank=True)
    callback_uri = models.CharField(max_length=2000, blank=True)
    history = models.JSONField(default=list)


class Quote(ObjectIdModel):
    symbol = models.CharField(max_length=6)
    bid = models.DecimalField(max_digits=18, decimal_places=8)
    ask = models.DecimalField(max_digits=18, decimal_places=8)
    applicability = models.CharField(max_length=16, blank=True)
    expire_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)


class IdempotencyRecord(models.Model):
    """What a createWithdrawal/createPayment with an idempotencyKey produced (docs/flashfx.md §5.13)."""

    mutation = models.CharField(max_length=32)
    key = models.CharField(max_length=200)
    fingerprint = models.CharField(max_length=64)  # sha256 of the canonical input
    entity_id = models.CharField(max_length=24)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["mutation", "key"], name="idempotency_key_per_mutation")
        ]


class CopCheck(ObjectIdModel):
    """One confirmationOfPayee request and its answer (docs/flashfx.md §3.13.2, decision §5.46).

    FlashConnect keeps the same history; the sandbox needs it for the monthly limit."""

    account_id_type = models.CharField(max_length=16)
    bsb = models.CharField(max_length=6, blank=True)
    account_no = models.CharField(max_length=34, blank=True)
    account_name = models.CharField(max_length=140)
    code = models.CharField(max_length=32)
    billable = models.BooleanField()
    bank_account_name = models.CharField(max_length=140, blank=True)  # the "bank's" name


class ScheduledStep(models.Model):
    """One automatic state change that the sandbox's clock makes when it falls due."""

    kind = models.CharField(max_length=16)  # deposit, withdrawal, payment, subclient
    entity_id = models.CharField(max_length=24)
    from_status = models.CharField(max_length=24)
    to_status = models.CharField(max_length=24)
    due_at = models.DateTimeField()
    done_at = models.DateTimeField(null=True, blank=True)
    outcome = models.CharField(max_length=16, blank=True)  # applied, skipped

    class Meta:
        indexes = [models.Index(fields=["done_at", "due_at"])]


class WebhookDelivery(models.Model):
    """One event for one endpoint, with its fixed request id, body and signature."""

    class Status(models.TextChoices):
        PENDING = "PENDING"
        DELIVERED = "DELIVERED"
        FAILED = "FAILED"

    request_id = models.CharField(max_length=24, unique=True, default=new_object_id)
    event = models.CharField(max_length=40)
    kind = models.CharField(max_length=16)  # regular or adhoc (docs/flashfx.md §4.1)
    entity_id = models.CharField(max_length=24)
    url = models.CharField(max_length=2000)
    body = models.BinaryField()  # the exact bytes signed and sent on every attempt
    signature = models.CharField(max_length=64)
    status = models.CharField(max_length=16, choices=Status, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    event_scheduled_at = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["status", "next_attempt_at"])]


class WebhookAttempt(models.Model):
    delivery = models.ForeignKey(
        WebhookDelivery, on_delete=models.CASCADE, related_name="attempt_log"
    )
    number = models.PositiveSmallIntegerField()
    started_at = models.DateTimeField()
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    latency_ms = models.PositiveIntegerField()
    response_body = models.TextField(blank=True)  # first 2,000 characters
    error = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["number"]
