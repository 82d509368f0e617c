from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

pytestmark = pytest.mark.django_db


def test_seed_demo_twice_creates_one_admin(settings, capsys):
    settings.DEBUG = True  # pytest-django turns DEBUG off during tests
    call_command("seed_demo")
    call_command("seed_demo")

    admin = get_user_model().objects.get(username="admin")
    assert admin.is_superuser and admin.check_password("admin")
    assert get_user_model().objects.count() == 1
    assert "already exists" in capsys.readouterr().out


def test_seed_demo_refuses_without_debug(settings):
    settings.DEBUG = False
    with pytest.raises(CommandError, match="DEBUG"):
        call_command("seed_demo")
    assert not get_user_model().objects.exists()
