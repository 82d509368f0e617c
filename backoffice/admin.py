"""Admin for staff accounts (end sessions, deactivate, reset OTP), sessions and the audit trail."""

from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.db import transaction

from . import audit, otp, staff_sessions
from .models import AuditEvent, StaffSession

User = get_user_model()


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    list_display = ("occurred_at", "actor", "action", "object_type", "object_repr", "remote_addr")
    list_filter = ("action",)
    search_fields = ("actor", "object_id", "object_repr")
    date_hierarchy = "occurred_at"
    show_full_result_count = False


@admin.register(StaffSession)
class StaffSessionAdmin(ReadOnlyAdmin):
    list_display = ("user", "method", "started_at", "remote_addr", "ended_at", "end_reason")
    list_filter = ("method", "end_reason")
    search_fields = ("user__username", "remote_addr")


admin.site.unregister(User)


@admin.register(User)
class StaffUserAdmin(UserAdmin):
    """Accounts are created here (Google sign-in never creates one); never deleted, deactivated."""

    actions = ["end_sessions", "deactivate", "reset_otp"]
    list_display = ("username", "email", "first_name", "last_name", "is_active", "roles")

    @admin.display(description="Roles")
    def roles(self, user) -> str:
        return ", ".join(sorted(user.groups.values_list("name", flat=True)))

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # the audit trail names people: deactivate instead

    def has_change_permission(self, request, obj=None) -> bool:
        """Only a superuser changes a superuser (their password included)."""
        if obj is not None and obj.is_superuser and not request.user.is_superuser:
            return False
        return super().has_change_permission(request, obj)

    def get_readonly_fields(self, request, obj=None):
        """Segregation of duties: an admin manages others' roles, never their own, and only a
        superuser hands out superuser status or permissions outside the roles."""
        fields = list(super().get_readonly_fields(request, obj))
        if not request.user.is_superuser:
            fields += ["is_superuser", "user_permissions"]
        if obj is not None and obj.pk == request.user.pk:
            fields += ["groups", "is_staff", "is_active", "is_superuser", "user_permissions"]
        return list(dict.fromkeys(fields))

    @admin.action(description="End all their sessions now")
    def end_sessions(self, request, queryset) -> None:
        total = 0
        for user in queryset:
            with transaction.atomic():
                ended = staff_sessions.end_all(user, reason="ended by an admin")
                audit.record(
                    audit.SESSIONS_ENDED,
                    obj=user,
                    details={"reason": "ended by an admin", "sessions": ended},
                )
            total += ended
        self.message_user(request, f"Ended {total} session(s).", messages.SUCCESS)

    @admin.action(description="Deactivate (their sessions end at once)")
    def deactivate(self, request, queryset) -> None:
        for user in queryset.exclude(pk=request.user.pk):
            with transaction.atomic():
                user.is_active = False
                user.save(update_fields=["is_active"])  # signals: audit row, sessions ended
        self.message_user(request, "Deactivated; their sessions are ended.", messages.SUCCESS)

    @admin.action(description="Reset their authenticator (they enrol again at next sign-in)")
    def reset_otp(self, request, queryset) -> None:
        for user in queryset:
            with transaction.atomic():
                otp.reset(user)
                ended = staff_sessions.end_all(user, reason="authenticator reset")
                audit.record(audit.OTP_RESET, obj=user, details={"sessions_ended": ended})
        self.message_user(
            request, "Reset; they enrol a new authenticator at next sign-in.", messages.SUCCESS
        )
