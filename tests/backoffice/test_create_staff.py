"""`manage.py create_staff`: a new installation's first admin, and any member after it; works
with DEBUG off, never takes the password from the command line, refuses weak ones."""

from __future__ import annotations

import io
import sys

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from backoffice.models import AuditEvent
from backoffice.roles import roles_of

pytestmark = pytest.mark.django_db


def create(*args: str, stdin: str) -> str:
    out = io.StringIO()
    old = sys.stdin
    sys.stdin = io.StringIO(stdin)
    try:
        call_command("create_staff", *args, stdout=out)
    finally:
        sys.stdin = old
    return out.getvalue()


def test_creates_a_member_with_one_role_and_no_second_factor_yet(settings):
    settings.DEBUG = False
    said = create(
        "alice",
        "--role",
        "admin",
        "--email",
        "a@example.com",
        "--password-stdin",
        stdin="correct horse battery staple\n",
    )
    alice = get_user_model().objects.get(username="alice")
    assert "Created alice (admin)" in said
    assert alice.check_password("correct horse battery staple")
    assert roles_of(alice) == ["admin"] and alice.is_staff
    assert not alice.totpdevice_set.exists()  # enrolled at the first sign-in
    assert AuditEvent.objects.filter(action__startswith="staff.").exists()


def test_refuses_an_existing_name_a_weak_password_and_no_password():
    create("bob", "--role", "operator", "--password-stdin", stdin="a-good-long-password-9\n")
    with pytest.raises(CommandError, match="exists already"):
        create("bob", "--role", "admin", "--password-stdin", stdin="another-long-password-9\n")
    assert roles_of(get_user_model().objects.get(username="bob")) == ["operator"]
    with pytest.raises(CommandError, match="Password refused"):
        create("carol", "--role", "viewer", "--password-stdin", stdin="password\n")
    with pytest.raises(CommandError, match="empty password"):
        create("carol", "--role", "viewer", "--password-stdin", stdin="\n")
    with pytest.raises(CommandError, match="--password-stdin"):
        create("carol", "--role", "viewer", stdin="")  # no terminal to ask on
    assert not get_user_model().objects.filter(username="carol").exists()
