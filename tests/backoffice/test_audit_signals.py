"""Audit rows written by signals: sign-in (password, then OTP), failed passwords, lockout,
sign-out, role changes (User.groups) and account changes, including a deactivation that ends
the member's sessions. Every test ends with the chain verified."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import connection
from django.test import RequestFactory
from django.urls import reverse
from staff import PASSWORD, code, enrol, make_staff, sign_in

from backoffice import audit
from backoffice.audit import verify_chain
from backoffice.models import AuditEvent, StaffSession

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


User = get_user_model()


@pytest.fixture(autouse=True)
def chain_still_verifies():
    yield
    if not connection.needs_rollback:  # (after an expected error nothing more can be read)
        assert verify_chain()[2] == []


def rows_after(pk: int, **filters) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(pk__gt=pk, **filters).order_by("pk"))


def last_pk() -> int:
    return AuditEvent.objects.order_by("-pk").values_list("pk", flat=True).first() or 0


def password_step(client, username: str, password: str = PASSWORD, **extra):
    return client.post(reverse("login"), {"username": username, "password": password}, **extra)


def as_request_of(user):
    request = RequestFactory().post("/admin/", REMOTE_ADDR="192.0.2.50")
    request.user = user
    return audit.bind_request(request)


# --- accounts -------------------------------------------------------------------------------


def test_creating_a_user_writes_a_created_row():
    user = make_staff(None, "alice")
    (row,) = AuditEvent.objects.filter(action=audit.ACCOUNT_CHANGED, object_id=str(user.pk))
    assert row.object_type == "auth.user"
    assert row.object_repr == "alice"
    assert row.details == {"change": "created"}
    assert row.before is None
    assert row.after == {
        "username": "alice",
        "email": "alice@example.com",
        "is_active": True,
        "is_staff": False,
        "is_superuser": False,
    }


def test_is_superuser_and_is_active_changes_are_recorded_with_before_and_after():
    user = make_staff(None, "alice")
    start = last_pk()

    user.is_superuser = True
    user.save()
    user.is_active = False
    user.is_staff = True
    user.save(update_fields=["is_active", "is_staff"])

    promoted, deactivated, ended = rows_after(start)
    assert promoted.action == audit.ACCOUNT_CHANGED
    assert promoted.before == {"is_superuser": False}
    assert promoted.after == {"is_superuser": True}
    assert promoted.details == {"change": "updated"}
    assert promoted.object_id == str(user.pk)

    assert deactivated.action == audit.ACCOUNT_CHANGED
    assert deactivated.before == {"is_active": True, "is_staff": False}
    assert deactivated.after == {"is_active": False, "is_staff": True}

    assert ended.action == audit.SESSIONS_ENDED
    assert ended.details == {"reason": "deactivated", "sessions": 0}


def test_a_save_that_changes_no_watched_field_writes_nothing():
    user = make_staff(None, "alice")
    start = last_pk()
    user.first_name = "Alice"
    user.save()
    user.save()
    assert rows_after(start) == []


def test_email_and_username_changes_are_recorded():
    user = make_staff(None, "alice")
    start = last_pk()
    user.username, user.email = "alice2", "alice2@example.com"
    user.save()
    (row,) = rows_after(start)
    assert row.before == {"email": "alice@example.com", "username": "alice"}
    assert row.after == {"email": "alice2@example.com", "username": "alice2"}
    assert row.object_repr == "alice2"


def test_only_the_fields_saved_are_recorded(client):
    user = make_staff("viewer", "alice")
    signed_in_for_real(client, user)
    start = last_pk()
    user.is_active = False  # not saved
    user.first_name = "Alice"
    user.save(update_fields=["first_name"])
    user.refresh_from_db()
    assert user.is_active
    assert rows_after(start) == []
    assert StaffSession.objects.get(user=user).ended_at is None


def test_reactivating_does_not_end_sessions():
    user = make_staff(None, "alice", is_active=False)
    start = last_pk()
    user.is_active = True
    user.save()
    (row,) = rows_after(start)
    assert (row.action, row.before, row.after) == (
        audit.ACCOUNT_CHANGED,
        {"is_active": False},
        {"is_active": True},
    )


def test_the_actor_of_a_change_made_in_a_request_is_the_requests_user():
    admin = make_staff("admin", "root")
    user = make_staff(None, "alice")
    start = last_pk()
    with as_request_of(admin):
        user.is_superuser = True
        user.save()
        user.groups.add(Group.objects.get(name="viewer"))
    changed, role = rows_after(start)
    assert (changed.actor, changed.actor_id, changed.remote_addr) == (
        "root",
        admin.pk,
        "192.0.2.50",
    )
    assert (role.actor, role.actor_id) == ("root", admin.pk)


# --- roles ----------------------------------------------------------------------------------


def test_adding_and_removing_a_role_is_recorded_with_the_roles():
    user = make_staff(None, "alice")
    viewer, approver = Group.objects.get(name="viewer"), Group.objects.get(name="approver")
    start = last_pk()

    user.groups.add(viewer)
    user.groups.add(approver)
    user.groups.remove(viewer)

    added_viewer, added_approver, removed = rows_after(start)
    for row in (added_viewer, added_approver, removed):
        assert row.action == audit.ROLE_CHANGED
        assert (row.object_type, row.object_id) == ("auth.user", str(user.pk))
    assert added_viewer.details == {"change": "add", "roles": ["viewer"]}
    assert added_viewer.after == {"roles": ["viewer"]}
    assert added_approver.details == {"change": "add", "roles": ["approver"]}
    assert added_approver.after == {"roles": ["approver", "viewer"]}
    assert removed.details == {"change": "remove", "roles": ["viewer"]}
    assert removed.after == {"roles": ["approver"]}


def test_make_staff_with_a_role_records_the_role():
    user = make_staff("operator", "olga")
    (row,) = AuditEvent.objects.filter(action=audit.ROLE_CHANGED, object_id=str(user.pk))
    assert row.details == {"change": "add", "roles": ["operator"]}


def test_setting_several_roles_at_once_names_them_all():
    user = make_staff(None, "alice")
    start = last_pk()
    user.groups.set(Group.objects.filter(name__in=["viewer", "compliance"]))
    (row,) = rows_after(start)
    assert row.details == {"change": "add", "roles": ["compliance", "viewer"]}
    assert row.after == {"roles": ["compliance", "viewer"]}


def test_adding_a_role_they_already_have_writes_nothing():
    user = make_staff("viewer", "alice")
    start = last_pk()
    user.groups.add(Group.objects.get(name="viewer"))
    assert rows_after(start) == []


def test_a_role_changed_from_the_group_side_is_recorded_per_member():
    alice, bob = make_staff(None, "alice"), make_staff(None, "bob")
    approver = Group.objects.get(name="approver")
    start = last_pk()

    approver.user_set.add(alice, bob)
    approver.user_set.remove(bob)

    rows = rows_after(start, action=audit.ROLE_CHANGED)
    assert [(r.object_repr, r.details, r.after) for r in rows] == [
        ("alice", {"change": "add", "roles": ["approver"]}, {"roles": ["approver"]}),
        ("bob", {"change": "add", "roles": ["approver"]}, {"roles": ["approver"]}),
        ("bob", {"change": "remove", "roles": ["approver"]}, {"roles": []}),
    ]


def test_clearing_a_users_roles_is_recorded_with_the_roles_removed():
    user = make_staff("admin", "alice")
    user.groups.add(Group.objects.get(name="viewer"))
    start = last_pk()
    user.groups.clear()
    (row,) = rows_after(start)
    assert row.action == audit.ROLE_CHANGED
    assert row.details == {"change": "clear", "roles": ["admin", "viewer"]}
    assert row.after == {"roles": []}


def test_clearing_a_role_from_the_group_side_is_recorded_per_member():
    alice, bob = make_staff("admin", "alice"), make_staff("admin", "bob")
    start = last_pk()
    Group.objects.get(name="admin").user_set.clear()
    assert not alice.groups.exists() and not bob.groups.exists()  # the clear itself happened
    rows = rows_after(start, action=audit.ROLE_CHANGED)
    assert sorted(r.object_repr for r in rows) == ["alice", "bob"]
    assert all(r.details == {"change": "clear", "roles": ["admin"]} for r in rows)
    assert all(r.after == {"roles": []} for r in rows)


# --- deactivation ends sessions ------------------------------------------------------------


def signed_in_for_real(client, user):
    """Password form and OTP form, as a person does it."""
    device = enrol(user)
    response = password_step(client, user.get_username())
    assert response.status_code == 302, response.content
    assert response["Location"].startswith(reverse("otp-verify"))
    response = client.post(reverse("otp-verify"), {"token": code(device)})
    assert response.status_code == 302, response.content
    assert client.get(reverse("dashboard")).status_code == 200
    return device


def test_deactivating_ends_their_sessions_and_records_it(client, django_user_model):
    user = make_staff("viewer", "alice")
    signed_in_for_real(client, user)
    (session,) = StaffSession.objects.filter(user=user)
    assert session.ended_at is None
    start = last_pk()

    user.is_active = False
    user.save()

    changed, ended = rows_after(start)
    assert (changed.action, changed.before, changed.after) == (
        audit.ACCOUNT_CHANGED,
        {"is_active": True},
        {"is_active": False},
    )
    assert ended.action == audit.SESSIONS_ENDED
    assert (ended.object_type, ended.object_id) == ("auth.user", str(user.pk))
    assert ended.details == {"reason": "deactivated", "sessions": 1}
    session.refresh_from_db()
    assert session.ended_at is not None
    assert session.end_reason == "deactivated"
    # The session itself is gone: the next request is not signed in.
    response = client.get(reverse("dashboard"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_the_admins_deactivate_action_is_audited_as_the_admin(client):
    admin = make_staff("admin", "root")
    sign_in(client, admin)
    alice = make_staff("viewer", "alice")
    other = client.__class__()
    signed_in_for_real(other, alice)
    start = last_pk()

    response = client.post(
        reverse("admin:auth_user_changelist"),
        {"action": "deactivate", "_selected_action": [alice.pk], "index": 0},
    )
    assert response.status_code == 302, response.content

    changed, ended = rows_after(start)
    assert (changed.action, changed.actor, changed.after) == (
        audit.ACCOUNT_CHANGED,
        "root",
        {"is_active": False},
    )
    assert (ended.action, ended.actor, ended.details) == (
        audit.SESSIONS_ENDED,
        "root",
        {"reason": "deactivated", "sessions": 1},
    )
    assert StaffSession.objects.get(user=alice).end_reason == "deactivated"


# --- sign-in and sign-out -------------------------------------------------------------------


def test_password_then_otp_writes_sign_in_then_otp_verified(client):
    user = make_staff("viewer", "alice")
    start = last_pk()
    signed_in_for_real(client, user)

    signed, verified = rows_after(start)
    assert signed.action == audit.SIGN_IN
    assert (signed.actor, signed.actor_id) == ("alice", user.pk)
    assert signed.details == {"method": "password"}
    assert signed.remote_addr == "127.0.0.1"
    assert verified.action == audit.OTP_VERIFIED
    assert (verified.actor, verified.actor_id) == ("alice", user.pk)
    assert verified.details == {"device": "authenticator"}
    assert verified.prev_hash == signed.hash
    (session,) = StaffSession.objects.filter(user=user)
    assert (session.method, session.ended_at) == ("password", None)


def test_a_wrong_password_writes_sign_in_failed_with_the_username(client):
    make_staff("viewer", "alice")
    start = last_pk()
    response = password_step(client, "alice", "wrong password", HTTP_USER_AGENT="Guesser/2")
    assert response.status_code == 200  # the form again, with its error

    (row,) = rows_after(start)
    assert row.action == audit.SIGN_IN_FAILED
    assert row.details == {"method": "password", "username": "alice"}
    assert (row.actor, row.actor_id) == ("", None)
    assert (row.remote_addr, row.user_agent) == ("127.0.0.1", "Guesser/2")
    assert "wrong password" not in str(row.details)


def test_an_unknown_username_is_recorded_but_not_what_was_typed(client):
    """What was typed is kept only when it is a username: it could be a password typed into the
    wrong field, and the trail is append-only."""
    start = last_pk()
    password_step(client, "hunter2-my-password", "whatever")
    (row,) = rows_after(start)
    assert row.details == {"method": "password", "username": "(no such account)"}
    assert "hunter2" not in str(AuditEvent.objects.values_list("details", flat=True))


def test_repeated_wrong_passwords_lock_out_and_record_it(client, settings):
    make_staff("viewer", "alice")
    start = last_pk()
    for _ in range(settings.AXES_FAILURE_LIMIT):
        password_step(client, "alice", "wrong password")
    rows = rows_after(start)
    assert [r.action for r in rows].count(audit.SIGN_IN_FAILED) == settings.AXES_FAILURE_LIMIT
    (locked,) = [r for r in rows if r.action == audit.LOCKED_OUT]
    assert locked.details == {"username": "alice", "ip_address": "127.0.0.1"}
    # Locked: even the right password is refused now.
    start = last_pk()
    response = password_step(client, "alice")
    assert response.status_code != 302 or not response["Location"].startswith(reverse("otp-verify"))
    assert not rows_after(start, action=audit.SIGN_IN)


def test_signing_out_is_recorded_and_ends_the_staff_session(client):
    user = make_staff("viewer", "alice")
    signed_in_for_real(client, user)
    start = last_pk()
    response = client.post(reverse("logout"))
    assert response.status_code == 302
    (row,) = rows_after(start)
    assert (row.action, row.actor) == (audit.SIGN_OUT, "alice")
    session = StaffSession.objects.get(user=user)
    assert session.ended_at is not None and session.end_reason == "signed out"
