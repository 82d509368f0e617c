"""Audit rows for what Django, django-axes and the admin do on their own: sign-in, sign-out,
failed passwords, lockouts, role and account changes. Connected in BackofficeConfig.ready()."""

from __future__ import annotations

from typing import Any

from axes.signals import user_locked_out
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.db.models.signals import m2m_changed, post_save, pre_save
from django.dispatch import receiver

from . import audit, staff_sessions
from .models import StaffSession

User = get_user_model()
OTP_SENDER = "backoffice.otp"  # user_login_failed sent for a wrong code (counted by axes)
WATCHED_FIELDS = ("username", "email", "is_active", "is_staff", "is_superuser")


def _method(user) -> str:
    backend = getattr(user, "backend", "") or ""
    return (
        StaffSession.Method.GOOGLE if "google" in backend.lower() else StaffSession.Method.PASSWORD
    )


@receiver(user_logged_in)
def signed_in(sender, request, user, **kwargs: Any) -> None:
    method = _method(user)
    if request is not None and hasattr(request, "session"):
        staff_sessions.start(request, user, method)
    audit.record(audit.SIGN_IN, actor=user, request=request, details={"method": method})


@receiver(user_login_failed)
def sign_in_failed(sender, credentials: dict[str, Any], request=None, **kwargs: Any) -> None:
    if sender == OTP_SENDER:
        return  # audited by the OTP view, with more to say
    typed = str(credentials.get("username", ""))[:150]
    # Only a real username is kept: a password typed into the username field must not sit in
    # an append-only trail for ever.
    known = User.objects.filter(username=typed).exists()
    audit.record(
        audit.SIGN_IN_FAILED,
        request=request,
        details={"method": "password", "username": typed if known else "(no such account)"},
    )


@receiver(user_logged_out)
def signed_out(sender, request, user, **kwargs: Any) -> None:
    if user is None:
        return
    if request is not None and hasattr(request, "session"):
        staff_sessions.closed(request, "signed out")


@receiver(user_locked_out)
def locked_out(sender, request, username: str | None, ip_address: str | None, **kwargs) -> None:
    audit.record(
        audit.LOCKED_OUT, request=request, details={"username": username, "ip_address": ip_address}
    )


@receiver(m2m_changed, sender=User.groups.through)
def roles_changed(sender, instance, action: str, reverse: bool, pk_set, **kwargs: Any) -> None:
    """Role grants and removals, from either side (user.groups or group.user_set)."""
    if action == "pre_clear":  # Django sends no ids for a clear: remember who is affected
        related = instance.user_set if reverse else instance.groups
        instance._audit_cleared = set(related.values_list("pk", flat=True))
        return
    if action == "post_clear":
        pk_set = getattr(instance, "_audit_cleared", set())
    if action not in ("post_add", "post_remove", "post_clear") or not pk_set:
        return
    if reverse:  # instance is a group; pk_set are users
        users, groups = list(User.objects.filter(pk__in=pk_set)), [instance.name]
    else:
        users = [instance]
        groups = list(Group.objects.filter(pk__in=pk_set).values_list("name", flat=True))
    for user in users:
        audit.record(
            audit.ROLE_CHANGED,
            obj=user,
            details={"change": action.removeprefix("post_"), "roles": sorted(groups)},
            after={"roles": sorted(user.groups.values_list("name", flat=True))},
        )


def _permission_names(pks) -> list[str]:
    permissions = Permission.objects.filter(pk__in=pks or []).select_related("content_type")
    return sorted(f"{p.content_type.app_label}.{p.codename}" for p in permissions)


@receiver(m2m_changed, sender=User.user_permissions.through)
def personal_permissions_changed(sender, instance, action, reverse, pk_set, **kwargs) -> None:
    """Permissions given to one person outside the roles."""
    if action not in ("post_add", "post_remove", "post_clear") or reverse:
        return
    granted = _permission_names(pk_set)
    audit.record(
        audit.ROLE_CHANGED,
        obj=instance,
        details={"change": f"permissions {action.removeprefix('post_')}", "permissions": granted},
    )


@receiver(m2m_changed, sender=Group.permissions.through)
def role_permissions_changed(sender, instance, action, reverse, pk_set, **kwargs) -> None:
    """What a role may do, changed by a person (a superuser in the admin). ensure_roles()
    after migrate is not recorded: it applies backoffice/roles.py, whose history is git's."""
    if action not in ("post_add", "post_remove", "post_clear") or reverse or not pk_set:
        return
    if audit.current_request() is None:
        return
    changed = _permission_names(pk_set)
    audit.record(
        audit.ROLE_CHANGED,
        obj=instance,
        details={
            "change": f"role permissions {action.removeprefix('post_')}",
            "permissions": changed,
        },
    )


@receiver(pre_save, sender=User)
def remember_account(sender, instance, raw: bool = False, **kwargs: Any) -> None:
    instance._audit_before = (
        None
        if raw or instance._state.adding or instance.pk is None
        else User.objects.filter(pk=instance.pk).values(*WATCHED_FIELDS, "password").first()
    )


@receiver(post_save, sender=User)
def account_changed(sender, instance, created: bool, raw: bool = False, **kwargs: Any) -> None:
    if raw:
        return
    after = {f: getattr(instance, f) for f in WATCHED_FIELDS}
    if created:
        audit.record(
            audit.ACCOUNT_CHANGED, obj=instance, after=after, details={"change": "created"}
        )
        return
    before = getattr(instance, "_audit_before", None)
    if before is None:
        return
    saved = kwargs.get("update_fields")  # only what this save wrote
    changed = {f for f in WATCHED_FIELDS if before[f] != after[f] and (saved is None or f in saved)}
    password_saved = saved is None or "password" in saved
    if password_saved and before["password"] != instance.password:
        changed.add("password")  # recorded as changed, never the hash
    if changed:
        audit.record(
            audit.ACCOUNT_CHANGED,
            obj=instance,
            before={f: before[f] for f in sorted(changed - {"password"})},
            after={f: after.get(f, "changed") for f in sorted(changed)},
            details={"change": "updated"},
        )
    if "is_active" in changed and not instance.is_active:
        ended = staff_sessions.end_all(instance, reason="deactivated")
        audit.record(
            audit.SESSIONS_ENDED, obj=instance, details={"reason": "deactivated", "sessions": ended}
        )
