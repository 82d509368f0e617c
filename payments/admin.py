from __future__ import annotations

from django.contrib import admin

from backoffice.admin_mirror import MirrorAdmin, ReadOnlyAdmin

from .models import (
    BalanceCheck,
    BalanceSnapshot,
    Deposit,
    DriftItem,
    DriftReport,
    Payment,
    SyncRun,
    Withdrawal,
)


@admin.register(Deposit)
class DepositAdmin(MirrorAdmin):
    list_display = (
        "flashfx_id",
        "flashfx_status",
        "amount",
        "currency",
        "external_reference",
        "sender_account_name",
        "flashfx_created_at",
        "anomaly",
    )
    list_filter = ("flashfx_status", "currency")
    search_fields = (*MirrorAdmin.search_fields, "external_reference", "sender_account_name")
    date_hierarchy = "flashfx_created_at"


@admin.register(Withdrawal)
class WithdrawalAdmin(MirrorAdmin):
    list_display = (
        "flashfx_id",
        "flashfx_status",
        "amount",
        "total_fee",
        "currency",
        "recipient_name",
        "reject_code",
        "flashfx_created_at",
        "anomaly",
    )
    list_filter = ("flashfx_status", "reject_code")
    search_fields = (*MirrorAdmin.search_fields, "external_reference", "recipient_name")
    date_hierarchy = "flashfx_created_at"


@admin.register(Payment)
class PaymentAdmin(MirrorAdmin):
    list_display = (
        "flashfx_id",
        "flashfx_status",
        "from_amount",
        "from_currency",
        "to_amount",
        "to_currency",
        "recipient_name",
        "flashfx_created_at",
    )
    list_filter = ("flashfx_status", "to_currency")
    date_hierarchy = "flashfx_created_at"


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
