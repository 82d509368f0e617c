from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.test import Client
from django_otp.plugins.otp_totp.models import TOTPDevice
from staff import code

from backoffice import roles

pytestmark = pytest.mark.django_db


def seed(settings) -> None:
    settings.DEBUG = True  # pytest-django turns DEBUG off during tests
    call_command("seed_demo")


def test_seed_demo_creates_one_member_per_role_with_an_authenticator(settings, capsys):
    seed(settings)

    users = get_user_model().objects.order_by("username")
    assert [u.username for u in users] == sorted(roles.ROLES)
    for user in users:
        role = user.username
        assert [g.name for g in user.groups.all()] == [role]
        assert user.check_password(f"demo-{role}-password")
        assert user.is_active
        assert not user.is_superuser  # no more admin/admin superuser
        assert TOTPDevice.objects.filter(user=user, confirmed=True).count() == 1
        assert roles.roles_of(user) == [role]
    assert roles.is_admin(users.get(username=roles.ADMIN))
    assert not any(roles.is_admin(u) for u in users.exclude(username=roles.ADMIN))
    out = capsys.readouterr().out
    for role in roles.ROLES:
        assert f"Created demo {role}: {role} / demo-{role}-password" in out


def test_seed_demo_twice_changes_nothing(settings, capsys):
    seed(settings)
    users = list(get_user_model().objects.order_by("pk").values())
    devices = list(TOTPDevice.objects.order_by("pk").values())
    capsys.readouterr()

    seed(settings)

    assert list(get_user_model().objects.order_by("pk").values()) == users
    assert list(TOTPDevice.objects.order_by("pk").values()) == devices
    out = capsys.readouterr().out
    assert "Created" not in out
    assert out.count("Kept demo") == len(roles.ROLES)


def test_seed_demo_refuses_without_debug(settings):
    settings.DEBUG = False
    with pytest.raises(CommandError, match="DEBUG"):
        call_command("seed_demo")
    assert not get_user_model().objects.exists()
    assert not TOTPDevice.objects.exists()


def test_each_demo_member_signs_in_with_the_printed_password_and_a_code(settings):
    seed(settings)
    settings.DEBUG = False
    for role in roles.ROLES:
        client = Client()
        device = TOTPDevice.objects.get(user__username=role)
        password = client.post(
            "/accounts/login/", {"username": role, "password": f"demo-{role}-password"}
        )
        assert password.status_code == 302, role
        assert password["Location"].startswith("/accounts/otp/")
        verified = client.post("/accounts/otp/", {"token": code(device)})
        assert verified.status_code == 302, role
        assert client.get("/").status_code == 200, role
