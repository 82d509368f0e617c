from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone


class AppendOnlyError(Exception):
    """Audit rows are written once and never changed or removed."""


class AuditEventQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise AppendOnlyError("audit events are never updated")

    def bulk_update(self, *args, **kwargs):
        raise AppendOnlyError("audit events are never updated")

    def delete(self):
        raise AppendOnlyError("audit events are never deleted")


class AuditEvent(models.Model):
    """One thing a person (or the system on their behalf) did, chained to the row before it.

    `hash` is SHA-256 over the previous row's hash and this row's fields (backoffice/audit.py);
    `python manage.py verify_audit` recomputes the chain. Written only by backoffice/audit.py
    (record, append_many); the model, its querysets and (on PostgreSQL and SQLite) a database
    trigger refuse changes.
    The actor is kept by id and name, not by foreign key, so no account change rewrites a row.
    """

    occurred_at = models.DateTimeField(db_index=True)
    actor_id = models.PositiveBigIntegerField(null=True, blank=True, db_index=True)
    actor = models.CharField(max_length=150, blank=True)  # the username at the time
    action = models.CharField(max_length=64, db_index=True)  # e.g. "auth.sign_in"
    object_type = models.CharField(max_length=100, blank=True)  # e.g. "auth.user"
    object_id = models.CharField(max_length=64, blank=True)
    object_repr = models.CharField(max_length=200, blank=True)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    details = models.JSONField(default=dict, blank=True)
    remote_addr = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=300, blank=True)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64, unique=True)

    objects = AuditEventQuerySet.as_manager()

    class Meta:
        ordering = ["-id"]
        permissions = [
            ("export_data", "Can export what they can see"),
            ("manage_settings", "Can change settings and the approval policy"),
        ]

    def __str__(self) -> str:
        return f"{self.occurred_at:%Y-%m-%d %H:%M:%S} {self.actor or 'system'} {self.action}"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise AppendOnlyError("audit events are never updated")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AppendOnlyError("audit events are never deleted")


class StaffSession(models.Model):
    """A signed-in session of a staff member, so that it can be listed and ended (by its owner
    everywhere, or by an admin); the session data itself stays in Django's session store."""

    class Method(models.TextChoices):
        PASSWORD = "password", "Password"
        GOOGLE = "google", "Google"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="staff_sessions"
    )
    session_key = models.CharField(max_length=40, unique=True)
    method = models.CharField(max_length=16, choices=Method.choices)
    started_at = models.DateTimeField(default=timezone.now)
    remote_addr = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=300, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    end_reason = models.CharField(max_length=64, blank=True)

    class Meta:
        ordering = ["-started_at"]
        indexes = [models.Index(fields=["user", "ended_at"], name="staffsession_user_open")]

    def __str__(self) -> str:
        return f"{self.user} since {self.started_at:%Y-%m-%d %H:%M}"


class Heartbeat(models.Model):
    """The last time something periodic ran: "beat" is written by a task beat schedules
    (backoffice/tasks.py), so a recent one shows beat and a worker both alive (/readyz)."""

    name = models.CharField(max_length=40, primary_key=True)
    seen_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.name} {self.seen_at:%Y-%m-%d %H:%M:%S}"
