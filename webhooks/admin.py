"""Staff tools for inbound webhooks until the staff UI has pages: every request kept, the
quarantine and the dead letters, with replay (dry run first). The work is in
webhooks/replay.py; this only shows rows and calls it."""

from __future__ import annotations

import json

from django.contrib import admin, messages
from django.utils.html import format_html

from mirrors.admin import ReadOnlyAdmin

from . import replay
from .models import InboundEvent, QuarantineTally


@admin.register(InboundEvent)
class InboundEventAdmin(ReadOnlyAdmin):
    """Read-only: a received request is evidence. Replay is the only thing staff can do."""

    class Media:
        css = {"all": ("css/admin.css",)}

    list_display = (
        "received_at",
        "status",
        "reason",
        "event",
        "entity_id",
        "request_id",
        "attempts",
    )
    list_filter = ("status", "reason", "event", "accepted")
    search_fields = ("=request_id", "=entity_id")
    date_hierarchy = "received_at"
    actions = ("replay_dry_run", "replay_apply")
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "status",
                    "reason",
                    "accepted",
                    "event",
                    "entity_id",
                    "request_id",
                    "event_scheduled_at",
                    "received_at",
                    "remote_addr",
                )
            },
        ),
        (
            "Processing",
            {"fields": ("attempts", "last_run_at", "outcome", "last_error_text")},
        ),
        (
            "Request as received (untrusted)",
            {
                "fields": (
                    "body_size",
                    "body_sha256",
                    "body_pruned_at",
                    "headers_text",
                    "body_text",
                )
            },
        ),
    )
    readonly_fields = tuple(
        name for _, section in fieldsets for name in section["fields"]
    )  # every field shown is read-only; the raw columns only through the methods below

    @admin.display(description="processed (or last attempted) at")
    def last_run_at(self, obj: InboundEvent):
        # Set when an attempt starts and again when it ends well (webhooks.processing).
        return obj.processed_at

    @admin.display(description="raw body")
    def body_text(self, obj: InboundEvent) -> str:
        body = bytes(obj.body)
        if obj.body_pruned_at is not None:
            return "(pruned after the retention period; digest and size kept)"
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            text = repr(body)  # not UTF-8: shown as Python bytes, never decoded with a guess
        return format_html('<pre class="raw-body">{}</pre>', text)  # no inline style: CSP

    @admin.display(description="headers")
    def headers_text(self, obj: InboundEvent) -> str:
        return format_html("<pre>{}</pre>", json.dumps(obj.headers, indent=2, sort_keys=True))

    @admin.display(description="last error")
    def last_error_text(self, obj: InboundEvent) -> str:
        return format_html("<pre>{}</pre>", obj.last_error) if obj.last_error else "-"

    def has_replay_permission(self, request) -> bool:
        # Replay writes to the mirrors: staff who may only look at events do not get it.
        return request.user.has_perm("webhooks.change_inboundevent")

    @admin.action(description="Replay (dry run)", permissions=["replay"])
    def replay_dry_run(self, request, queryset) -> None:
        self._replay(request, queryset, dry_run=True)

    @admin.action(description="Replay", permissions=["replay"])
    def replay_apply(self, request, queryset) -> None:
        self._replay(request, queryset, dry_run=False)

    def _replay(self, request, queryset, *, dry_run: bool) -> None:
        ids = list(queryset.values_list("pk", flat=True))
        results = replay.replay(event_ids=ids, dry_run=dry_run)
        for result in results:
            failed = result.outcome.startswith(("failed", "would fail"))
            skipped = result.outcome.startswith("skipped")
            level = messages.ERROR if failed else messages.WARNING if skipped else messages.INFO
            self.message_user(
                request,
                f"#{result.event_id} {result.event or '-'}: {result.outcome}",
                level=level,
            )
        if not results:
            self.message_user(request, "Nothing to replay.", level=messages.WARNING)


@admin.register(QuarantineTally)
class QuarantineTallyAdmin(ReadOnlyAdmin):
    """Unproven webhook requests per source address and minute: how many were kept as
    quarantine rows and how many were refused unstored past the cap."""

    list_display = ("minute", "remote_addr", "seen", "kept", "dropped")
    search_fields = ("=remote_addr",)
    date_hierarchy = "minute"
