"""What an admin-role member may and may not do to other people's accounts in the admin.

Segregation of duties: an admin manages people, but cannot hand out the roles that move money
(or the admin role), cannot take over an account by setting its password, cannot touch a
superuser, and needs a fresh code to deactivate someone or reset their authenticator.
"""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, Permission
from django.test import Client
from staff import make_staff, sign_in

from backoffice import audit, roles
from backoffice.models import AuditEvent, StaffSession

pytestmark = pytest.mark.django_db
USERS = "/admin/auth/user/"


@pytest.fixture
def boss():
    return make_staff(roles.ADMIN, "boss", is_staff=True)


@pytest.fixture
def admin_client(boss):
    client = Client()
    sign_in(client, boss)
    return client


def change_roles(client, user, *role_names):
    url = f"{USERS}{user.pk}/change/"
    data = {
        "username": user.username,
        "email": user.email,
        "first_name": "",
        "last_name": "",
        "is_active": "on",
        "groups": [Group.objects.get(name=r).pk for r in role_names],
        "date_joined_0": user.date_joined.strftime("%Y-%m-%d"),
        "date_joined_1": user.date_joined.strftime("%H:%M:%S"),
        "last_login_0": "",
        "last_login_1": "",
    }
    return client.post(url, data)


def roles_of(user) -> set[str]:
    return set(user.groups.values_list("name", flat=True))


@pytest.mark.parametrize("role", [roles.OPERATOR, roles.APPROVER, roles.ADMIN])
def test_an_admin_cannot_give_a_role_that_moves_money_or_manages_people(admin_client, role):
    member = make_staff(roles.VIEWER, "vera")
    response = change_roles(admin_client, member, roles.VIEWER, role)
    assert response.status_code == 200  # the form again, with the error
    assert "Only a superuser gives or takes these roles" in response.content.decode()
    assert roles_of(member) == {roles.VIEWER}


def test_an_admin_cannot_take_an_operators_role_away_either(admin_client):
    member = make_staff(roles.OPERATOR, "otto")
    change_roles(admin_client, member, roles.VIEWER)
    assert roles_of(member) == {roles.OPERATOR}


def test_an_admin_gives_and_takes_the_reading_roles(admin_client):
    member = make_staff(roles.VIEWER, "vera")
    response = change_roles(admin_client, member, roles.COMPLIANCE)
    assert response.status_code == 302
    assert roles_of(member) == {roles.COMPLIANCE}


def test_a_superuser_gives_money_roles(client):
    root = make_staff(None, "root", is_superuser=True, is_staff=True)
    sign_in(client, root)
    member = make_staff(roles.VIEWER, "vera")
    assert change_roles(client, member, roles.APPROVER).status_code == 302
    assert roles_of(member) == {roles.APPROVER}


def test_an_admin_cannot_set_someone_elses_password(admin_client):
    member = make_staff(roles.APPROVER, "abby")
    url = f"{USERS}{member.pk}/password/"
    assert admin_client.get(url).status_code == 403
    response = admin_client.post(
        url, {"password1": "Taken-over-1234", "password2": "Taken-over-1234"}
    )
    assert response.status_code == 403
    member.refresh_from_db()
    assert not member.check_password("Taken-over-1234")


def sessions_open(user) -> int:
    return StaffSession.objects.filter(user=user, ended_at=None).count()


def run_action(client, action, *users):
    return client.post(
        USERS, {"action": action, "_selected_action": [u.pk for u in users], "index": 0}
    )


def test_the_admins_actions_leave_superusers_and_themselves_alone(admin_client, boss):
    root = make_staff(None, "root", is_superuser=True)
    member = make_staff(roles.VIEWER, "vera")
    for user in (root, member):
        sign_in(Client(), user)

    response = run_action(admin_client, "end_sessions", root, member, boss)

    assert response.status_code == 302
    assert sessions_open(member) == 0
    assert sessions_open(root) == 1
    assert sessions_open(boss) == 1
    warnings = [str(m) for m in admin_client.get(USERS).context["messages"]]
    assert any("2 selected member(s) left unchanged" in w for w in warnings)


@pytest.mark.parametrize("action", ["deactivate", "reset_otp"])
def test_deactivating_or_resetting_someone_needs_a_fresh_code(admin_client, boss, action):
    sign_in(admin_client, boss, otp_age=301)
    member = make_staff(roles.VIEWER, "vera")
    device = sign_in(Client(), member)

    response = run_action(admin_client, action, member)

    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/step-up/?next=")
    member.refresh_from_db()
    assert member.is_active
    device.refresh_from_db()  # still there: nothing was reset
    assert not AuditEvent.objects.filter(action=audit.OTP_RESET).exists()


def test_a_superuser_cannot_be_deactivated_by_an_admin(admin_client):
    root = make_staff(None, "root", is_superuser=True)
    run_action(admin_client, "deactivate", root)
    root.refresh_from_db()
    assert root.is_active


def test_a_password_change_is_audited_without_the_hash(admin_client):
    member = make_staff(roles.VIEWER, "vera")
    member.set_password("A-new-password-5678")
    member.save()
    row = (
        AuditEvent.objects.filter(action=audit.ACCOUNT_CHANGED, object_id=str(member.pk))
        .order_by("pk")
        .last()
    )
    assert row.after == {"password": "changed"}
    assert member.password not in str(row.before) + str(row.after) + str(row.details)


def test_a_permission_given_to_one_person_is_audited():
    member = make_staff(roles.VIEWER, "vera")
    member.user_permissions.add(Permission.objects.get(codename="approve_payout"))
    row = (
        AuditEvent.objects.filter(action=audit.ROLE_CHANGED, object_id=str(member.pk))
        .order_by("pk")
        .last()
    )
    assert row.details == {
        "change": "permissions add",
        "permissions": ["payments.approve_payout"],
    }
