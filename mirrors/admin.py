"""Admin for mirrors and for what keeps them true: read-only, because FlashFX is the source of
truth for them. ReadOnlyAdmin and MirrorAdmin are the bases the apps' admins use."""

from __future__ import annotations

from django.contrib import admin

from .models import BalanceCheck, BalanceSnapshot, DriftItem, DriftReport, SyncRun


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows written only by sync, webhooks and reconciliation; people look, never edit."""

    show_full_result_count = False  # one COUNT(*) per page is enough on large mirrors

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class MirrorAdmin(ReadOnlyAdmin):
    search_fields = ("flashfx_id", "external_id")
    readonly_fields = ("raw", "remote_changed_at", "anomaly", "created_at", "updated_at")


@admin.register(BalanceSnapshot)
class BalanceSnapshotAdmin(ReadOnlyAdmin):
    list_display = ("taken_at", "currency", "cleared", "pending")
    list_filter = ("currency",)


@admin.register(SyncRun)
class SyncRunAdmin(ReadOnlyAdmin):
    list_display = (
        "started_at",
        "entity",
        "mode",
        "status",
        "windows",
        "fetched",
        "created",
        "updated",
        "unchanged",
        "stale",
        "refused",
    )
    list_filter = ("entity", "mode", "status")


class DriftItemInline(admin.TabularInline):
    model = DriftItem
    extra = 0
    can_delete = False
    fields = ("entity", "flashfx_id", "kind", "differences", "resolution", "note")
    readonly_fields = fields

    def has_add_permission(self, request, obj=None) -> bool:
        return False


class BalanceCheckInline(admin.TabularInline):
    model = BalanceCheck
    extra = 0
    can_delete = False
    fields = (
        "currency",
        "reported_cleared",
        "implied_cleared",
        "reported_pending",
        "implied_pending",
    )
    readonly_fields = fields

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(DriftReport)
class DriftReportAdmin(ReadOnlyAdmin):
    list_display = ("started_at", "window_start", "window_end", "compared", "finished_at", "error")
    inlines = (DriftItemInline, BalanceCheckInline)


@admin.register(BalanceCheck)
class BalanceCheckAdmin(ReadOnlyAdmin):
    list_display = (
        "checked_at",
        "currency",
        "reported_cleared",
        "implied_cleared",
        "cleared_difference",
        "balanced",
    )
    list_filter = ("currency",)
