"""Inbound FlashFX webhooks, kept as received (docs/flashfx.md §4).

Every request that reaches the endpoint becomes one InboundEvent row, written by one INSERT
before we answer, whatever it holds: a verified event (`accepted`, then processed by a worker)
or a quarantined request with the reason it was refused, its relevant headers kept as untrusted
data. A signed request keeps its exact bytes. A request that does not prove to come from
FlashFX (unsigned, badly signed, from an address off the allow-list, too large) keeps the first
FLASHFX_WEBHOOK_QUARANTINE_BODY_BYTES of its body with the size and SHA-256 of all of it, and
rows of those are capped per source address and minute (QuarantineTally counts the rest), so
that a flood of them cannot fill the database.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils import timezone


class InboundEvent(models.Model):
    class Status(models.TextChoices):
        RECEIVED = "received"  # verified and durable; waiting for a worker
        PROCESSING = "processing"
        PROCESSED = "processed"
        FAILED = "failed"  # the last attempt raised; retried with backoff
        DEAD = "dead"  # retries exhausted; kept with its exception for a person
        IGNORED = (
            "ignored"  # verified, but nothing to apply (test event, unknown or unmirrored type)
        )
        QUARANTINED = "quarantined"  # refused at the door; never processed
        CONFLICT = "conflict"  # a known request id with a different body; never applied

    class Reason(models.TextChoices):
        MISSING_SIGNATURE = "missing_signature"
        BAD_SIGNATURE = "bad_signature"
        MISSING_REQUEST_ID = "missing_request_id"
        MALFORMED_REQUEST_ID = "malformed_request_id"
        NOT_UTF8 = "not_utf8"
        NOT_JSON = "not_json"
        JSON_TOO_DEEP = "json_too_deep"
        NOT_AN_EVENT = "not_an_event"
        IP_NOT_ALLOWED = "ip_not_allowed"
        DIFFERENT_BODY = "different_body"  # with CONFLICT
        TOO_LARGE = (
            "too_large"  # over FLASHFX_WEBHOOK_MAX_BODY_BYTES: refused unread, body not kept
        )

    accepted = models.BooleanField(
        help_text="Verified and unique: the one row per request id that may be processed."
    )
    # Its own index stays although lookups go through the partial unique index below: dropping
    # a db_index by AlterField makes Django drop that partial unique index too on PostgreSQL.
    request_id = models.CharField(max_length=200, blank=True, db_index=True)
    status = models.CharField(max_length=16, choices=Status)
    reason = models.CharField(max_length=32, choices=Reason, blank=True)
    event = models.CharField(max_length=64, blank=True)  # e.g. withdrawal_completed
    entity_id = models.CharField(max_length=64, blank=True)  # the payload's `id`
    event_scheduled_at = models.DateTimeField(null=True, blank=True)
    body = models.BinaryField(blank=True)  # the exact bytes; emptied by retention, never altered
    body_sha256 = models.CharField(max_length=64)
    body_size = models.PositiveIntegerField()
    headers = models.JSONField(default=dict)  # the relevant ones, as received
    remote_addr = models.GenericIPAddressField(null=True, blank=True)
    received_at = models.DateTimeField(default=timezone.now, db_index=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.TextField(blank=True)  # the last exception, with its traceback
    processed_at = models.DateTimeField(null=True, blank=True)
    outcome = models.CharField(max_length=200, blank=True)  # what processing did, in words
    body_pruned_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-received_at", "-id"]
        permissions = [
            # Bodies carry payers' names and account numbers, headers the signature: seeing
            # them is a permission of its own, beyond seeing that an event came and what it did.
            ("view_raw_body", "Can see webhook bodies and headers as received"),
        ]
        constraints = [
            # Dedupe on flashfx-request-id (§4.2): one accepted row per id; repeats are answered
            # from it, and a different body under a known id is kept aside as CONFLICT.
            models.UniqueConstraint(
                fields=["request_id"],
                condition=Q(accepted=True),
                name="webhooks_one_accepted_event_per_request_id",
            ),
        ]
        # Every index is written by every webhook received (bench/webhooks.py): the ones the
        # pages and processing read, and no more. Exact-match indexes for event and entity id
        # (the filters are exact), without PostgreSQL's second LIKE index a db_index would add.
        indexes = [
            models.Index(fields=["status", "received_at"], name="webhooks_status_received"),
            models.Index(fields=["event"], name="webhooks_event"),
            models.Index(fields=["entity_id"], name="webhooks_entity_id"),
        ]

    def __str__(self) -> str:
        return f"{self.event or self.reason or 'request'} {self.request_id or self.pk}"


class QuarantineTally(models.Model):
    """Unproven requests from one source address in one minute: how many came, how many were
    kept as quarantine rows (at most FLASHFX_WEBHOOK_QUARANTINE_PER_MINUTE); the rest were
    answered as refused and not stored."""

    remote_addr = models.CharField(max_length=45, blank=True)  # "" when unknown
    minute = models.DateTimeField()
    seen = models.PositiveIntegerField()
    kept = models.PositiveIntegerField()

    class Meta:
        ordering = ["-minute", "remote_addr"]
        constraints = [
            models.UniqueConstraint(
                fields=["remote_addr", "minute"], name="webhooks_one_tally_per_address_minute"
            ),
        ]

    def __str__(self) -> str:
        return (
            f"{self.remote_addr or 'unknown'} {self.minute:%Y-%m-%d %H:%M}: {self.dropped} dropped"
        )

    @property
    def dropped(self) -> int:
        return self.seen - self.kept
