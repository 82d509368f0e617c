"""Admin for mirrors: read-only, because FlashFX is the source of truth for them."""

from __future__ import annotations

from django.contrib import admin


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
