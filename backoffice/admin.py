"""Admin for staff accounts (end sessions, deactivate, reset OTP), sessions and the audit trail."""

from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.http import HttpResponseRedirect

from mirrors.admin import ReadOnlyAdmin

from . import audit, otp, staff_sessions
from .middleware import url_with_next
from .models import AuditEvent, StaffSession
from .roles import ADMIN, APPROVER, OPERATOR
from .stepup import needs_step_up

User = get_user_model()
PRIVILEGED_ROLES = {OPERATOR, APPROVER, ADMIN}


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

    def get_form(self, request, obj=None, change=False, **kwargs):
        """Roles that move money or manage people (operator, approver, admin) are given or
        taken only by a superuser: an admin cannot make puppets to approve their own payouts."""
        form = super().get_form(request, obj, change=change, **kwargs)
        if request.user.is_superuser or "groups" not in form.base_fields:
            return form

        class GuardedRoles(form):
            def clean_groups(self):
                chosen = self.cleaned_data["groups"]
                before = set() if self.instance.pk is None else set(self.instance.groups.all())
                changed = {g.name for g in set(chosen) ^ before}
                if guarded := sorted(changed & PRIVILEGED_ROLES):
                    raise ValidationError(
                        f"Only a superuser gives or takes these roles: {', '.join(guarded)}."
                    )
                return chosen

        return GuardedRoles

    def user_change_password(self, request, id, form_url=""):
        """Only a superuser sets someone else's password (it would let an admin become them)."""
        if not request.user.is_superuser and str(request.user.pk) != str(id):
            raise PermissionDenied("Only a superuser sets another member's password.")
        return super().user_change_password(request, id, form_url)

    def _changeable(self, request, queryset) -> tuple[list, int]:
        """The selected members this admin may change; never themselves."""
        allowed = [
            u
            for u in queryset
            if u.pk != request.user.pk and self.has_change_permission(request, u)
        ]
        return allowed, len(queryset) - len(allowed)

    def _needs_code(self, request) -> HttpResponseRedirect | None:
        if needs_step_up(request):
            return HttpResponseRedirect(url_with_next("step-up", request.path))
        return None

    def _report(self, request, done: str, skipped: int) -> None:
        self.message_user(request, done, messages.SUCCESS)
        if skipped:
            self.message_user(
                request,
                f"{skipped} selected member(s) left unchanged (yourself, or a superuser).",
                messages.WARNING,
            )

    @admin.action(description="End all their sessions now", permissions=["change"])
    def end_sessions(self, request, queryset):
        users, skipped = self._changeable(request, queryset)
        total = 0
        for user in users:
            with transaction.atomic():
                ended = staff_sessions.end_all(user, reason="ended by an admin")
                audit.record(
                    audit.SESSIONS_ENDED,
                    obj=user,
                    details={"reason": "ended by an admin", "sessions": ended},
                )
            total += ended
        self._report(request, f"Ended {total} session(s).", skipped)

    @admin.action(description="Deactivate (their sessions end at once)", permissions=["change"])
    def deactivate(self, request, queryset):
        if redirect := self._needs_code(request):
            return redirect
        users, skipped = self._changeable(request, queryset)
        for user in users:
            with transaction.atomic():
                user.is_active = False
                user.save(update_fields=["is_active"])  # signals: audit row, sessions ended
        self._report(request, f"Deactivated {len(users)}; their sessions are ended.", skipped)

    @admin.action(
        description="Reset their authenticator (they enrol again at next sign-in)",
        permissions=["change"],
    )
    def reset_otp(self, request, queryset):
        if redirect := self._needs_code(request):
            return redirect
        users, skipped = self._changeable(request, queryset)
        for user in users:
            with transaction.atomic():
                otp.reset(user)
                ended = staff_sessions.end_all(user, reason="authenticator reset")
                audit.record(audit.OTP_RESET, obj=user, details={"sessions_ended": ended})
        self._report(
            request, f"Reset {len(users)}; they enrol a new authenticator at next sign-in.", skipped
        )
