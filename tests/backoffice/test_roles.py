"""Roles: groups with exactly the permissions in backoffice.roles, and what they open."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, Permission
from staff import make_staff, sign_in

from backoffice import audit, roles
from backoffice.models import AuditEvent
from backoffice.roles import PERMISSIONS, ensure_roles

pytestmark = pytest.mark.django_db

MONEY = {
    "payments.create_payout",
    "payments.approve_payout",
    "payments.create_payment",
    "payments.approve_payment",
    "payments.reject_deposit",
}


def held(role: str) -> set[str]:
    return {
        f"{p.content_type.app_label}.{p.codename}"
        for p in Group.objects.get(name=role).permissions.select_related("content_type")
    }


def snapshot() -> dict[str, set[str]]:
    return {role: held(role) for role in roles.ROLES}


@pytest.mark.parametrize("role", roles.ROLES)
def test_after_migrate_each_role_holds_exactly_its_permissions(role):
    assert held(role) == set(PERMISSIONS[role])


def test_the_roles_are_exactly_the_five_and_every_permission_exists():
    assert (
        set(PERMISSIONS)
        == set(roles.ROLES)
        == {
            "viewer",
            "operator",
            "approver",
            "compliance",
            "admin",
        }
    )
    for dotted in {p for perms in PERMISSIONS.values() for p in perms}:
        app_label, codename = dotted.split(".")
        assert Permission.objects.filter(
            content_type__app_label=app_label, codename=codename
        ).exists(), dotted


def test_ensure_roles_is_idempotent():
    before = snapshot()
    groups = list(Group.objects.order_by("pk").values_list("pk", "name"))

    ensure_roles()
    ensure_roles()

    assert snapshot() == before
    assert list(Group.objects.order_by("pk").values_list("pk", "name")) == groups


def test_ensure_roles_restores_a_removed_permission_and_drops_an_added_one():
    operator = Group.objects.get(name=roles.OPERATOR)
    operator.permissions.remove(Permission.objects.get(codename="create_payout"))
    operator.permissions.add(Permission.objects.get(codename="view_auditevent"))
    Group.objects.get(name=roles.VIEWER).delete()

    ensure_roles()

    assert snapshot() == {role: set(PERMISSIONS[role]) for role in roles.ROLES}


def test_the_admin_role_has_no_money_permission():
    assert not held(roles.ADMIN) & MONEY
    assert not set(PERMISSIONS[roles.ADMIN]) & MONEY
    assert not make_staff(roles.ADMIN).get_all_permissions() & MONEY


def test_makers_and_checkers_are_different_roles():
    assert held(roles.OPERATOR) & MONEY == {
        "payments.create_payout",
        "payments.create_payment",
        "payments.reject_deposit",
    }
    assert held(roles.APPROVER) & MONEY == {"payments.approve_payout", "payments.approve_payment"}
    assert not held(roles.VIEWER) & MONEY
    assert not held(roles.COMPLIANCE) & MONEY


def test_only_compliance_and_admin_read_the_audit_trail():
    readers = {r for r in roles.ROLES if "backoffice.view_auditevent" in held(r)}
    assert readers == {roles.COMPLIANCE, roles.ADMIN}


# --- Navigation ---------------------------------------------------------------------------------

EVERY_ROLE_SEES = [
    "Dashboard",
    "Deposits",
    "Expected",
    "Payouts",
    "Payments",
    "Approvals",
    "Parties",
    "Webhooks",
    "Reconciliation",
]
NAVIGATION = {
    roles.VIEWER: EVERY_ROLE_SEES,
    roles.OPERATOR: [*EVERY_ROLE_SEES, "Exports"],
    roles.APPROVER: [*EVERY_ROLE_SEES, "Exports"],
    roles.COMPLIANCE: [*EVERY_ROLE_SEES, "Exports", "Audit"],
    roles.ADMIN: [*EVERY_ROLE_SEES, "Exports", "Audit", "Admin"],
    None: ["Dashboard"],
}


def navigation_of(client, role: str | None) -> list[str]:
    sign_in(client, make_staff(role))
    response = client.get("/")
    assert response.status_code == 200
    items = response.context["navigation"]
    html = response.content.decode()
    for item in items:  # each item is a link in the page's main navigation
        assert f'<a href="{item["url"]}"' in html
    return [item["label"] for item in items]


@pytest.mark.parametrize("role", NAVIGATION, ids=[r or "no role" for r in NAVIGATION])
def test_the_navigation_shows_what_the_role_may_open(client, role):
    assert navigation_of(client, role) == NAVIGATION[role]


def test_a_viewer_sees_no_audit_exports_or_admin(client):
    labels = navigation_of(client, roles.VIEWER)
    assert not {"Audit", "Exports", "Admin"} & set(labels)


def test_every_navigation_item_opens_for_whoever_sees_it(client):
    for role in roles.ROLES:
        user = make_staff(role)
        sign_in(client, user)
        for item in client.get("/").context["navigation"]:
            assert client.get(item["url"]).status_code == 200, (role, item["url"])


def test_the_navigation_follows_a_permission_given_to_a_person(client):
    user = make_staff(roles.VIEWER)
    user.user_permissions.add(Permission.objects.get(codename="view_auditevent"))
    sign_in(client, user)
    assert "Audit" in [i["label"] for i in client.get("/").context["navigation"]]


def test_a_superuser_sees_everything(client):
    sign_in(client, make_staff(None, username="root", is_superuser=True))
    labels = [i["label"] for i in client.get("/").context["navigation"]]
    assert labels == [*EVERY_ROLE_SEES, "Exports", "Audit", "Admin"]


def test_no_navigation_before_the_code(client):
    sign_in(client, make_staff(roles.ADMIN), verified=False)
    response = client.get("/accounts/otp/")
    assert response.status_code == 200
    assert response.context["navigation"] == []
    assert 'aria-label="Main"' not in response.content.decode()


# --- Role changes -------------------------------------------------------------------------------


def test_adding_and_removing_a_role_is_audited():
    user = make_staff(None, username="ada")
    operator = Group.objects.get(name=roles.OPERATOR)
    user.groups.add(operator)
    user.groups.remove(operator)
    changes = [
        e.details["change"]
        for e in AuditEvent.objects.filter(action=audit.ROLE_CHANGED).order_by("pk")
        if e.object_repr == "ada" or e.object_id == str(user.pk)
    ]
    assert changes == ["add", "remove"]


def test_clearing_every_role_at_once_works_and_is_audited():
    user = make_staff(roles.OPERATOR, username="ada")
    user.groups.clear()
    assert not user.groups.exists()
    cleared = AuditEvent.objects.get(action=audit.ROLE_CHANGED, details__change="clear")
    assert cleared.details["roles"] == [roles.OPERATOR]


# --- Segregation of duties in the admin ---------------------------------------------------------


def change_own_account(client, **changes) -> object:
    """An admin-role member posts the admin's change form for their own account."""
    user = make_staff(roles.ADMIN)
    sign_in(client, user)
    url = f"/admin/auth/user/{user.pk}/change/"
    assert client.get(url).status_code == 200
    data = {
        "username": user.username,
        "email": user.email,
        "first_name": "",
        "last_name": "",
        "is_active": "on",
        "groups": [Group.objects.get(name=roles.ADMIN).pk],
        "date_joined_0": user.date_joined.strftime("%Y-%m-%d"),
        "date_joined_1": user.date_joined.strftime("%H:%M:%S"),
        "last_login_0": "",
        "last_login_1": "",
    } | changes
    client.post(url, data)
    user.refresh_from_db()
    return user


def test_an_admin_may_edit_their_own_name(client):
    """The form posted below is a valid one: without the escalation it saves."""
    user = change_own_account(client, first_name="Ada")
    assert user.first_name == "Ada"


def test_an_admin_cannot_make_themselves_a_superuser(client):
    user = change_own_account(client, is_superuser="on")
    assert not user.is_superuser
    assert not user.get_all_permissions() & MONEY


def test_an_admin_cannot_give_themselves_a_money_permission(client):
    approve = Permission.objects.get(codename="approve_payout")
    user = change_own_account(client, user_permissions=[approve.pk])
    assert not user.get_all_permissions() & MONEY


def test_an_admin_cannot_give_themselves_a_money_role(client):
    groups = Group.objects.filter(name__in=[roles.ADMIN, roles.APPROVER])
    user = change_own_account(client, groups=[g.pk for g in groups])
    assert not user.get_all_permissions() & MONEY
