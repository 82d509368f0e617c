"""`manage.py create_staff`: the first admin of a new installation, and any member after it.

    python manage.py create_staff alice --email alice@example.com --role admin
    printf '%s\n' "$PASSWORD" | python manage.py create_staff bob --role operator --password-stdin

The password is asked for twice on a terminal, or read from the first line of standard input
with --password-stdin; never from the command line, where shell history and `ps` keep it. It
must pass the password validators. The member enrols an authenticator at the first sign-in (no
second factor is made here), and the account and its role are audit events, as any change made
in the admin is (backoffice/signals.py).
"""

from __future__ import annotations

import getpass
import sys
from typing import Any

from django.contrib.auth import get_user_model, password_validation
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from backoffice import roles


class Command(BaseCommand):
    help = "Create a staff member with one role; the authenticator is enrolled at first sign-in."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--role", required=True, choices=roles.ROLES)
        parser.add_argument("--email", default="")
        parser.add_argument(
            "--password-stdin",
            action="store_true",
            help="Read the password from the first line of standard input.",
        )

    def handle(self, *args: Any, username: str, role: str, email: str, **options: Any) -> None:
        User = get_user_model()
        if User.objects.filter(username=username).exists():
            raise CommandError(f"A member named {username!r} exists already; nothing changed.")
        password = self._password(options["password_stdin"])
        candidate = User(username=username, email=email)
        try:
            password_validation.validate_password(password, candidate)
        except ValidationError as exc:
            raise CommandError("Password refused: " + " ".join(exc.messages)) from None
        roles.ensure_roles()
        with transaction.atomic():
            user = User.objects.create_user(
                username=username, email=email, password=password, is_staff=role == roles.ADMIN
            )
            user.groups.add(Group.objects.get(name=role))
        self.stdout.write(
            f"Created {username} ({role}). At the first sign-in they enrol an authenticator."
        )

    def _password(self, from_stdin: bool) -> str:
        if from_stdin:
            password = sys.stdin.readline().rstrip("\r\n")
        elif sys.stdin.isatty():
            password = getpass.getpass("Password: ")
            if getpass.getpass("Password (again): ") != password:
                raise CommandError("The two passwords differ; nothing changed.")
        else:
            raise CommandError("No terminal to ask for the password: use --password-stdin.")
        if not password:
            raise CommandError("An empty password; nothing changed.")
        return password
