from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django_otp.plugins.otp_totp.models import TOTPDevice

from backoffice import roles

# One demo member per role: username = role, password below, an authenticator already enrolled
# (`python manage.py demo_otp <username>` prints its current code; DEBUG only).
DEMO_PASSWORD = "demo-{role}-password"  # noqa: S105 (DEBUG only: seed_demo refuses otherwise)
DEMO_USERS = roles.ROLES


class Command(BaseCommand):
    help = (
        "Create demo staff, one per role, with an enrolled authenticator (DEBUG only). "
        "Safe to run repeatedly."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        if not settings.DEBUG:
            raise CommandError(
                "seed_demo creates members with known passwords; it runs only with DEBUG=true."
            )
        User = get_user_model()
        roles.ensure_roles()
        for role in DEMO_USERS:
            with transaction.atomic():
                user, created = User.objects.get_or_create(
                    username=role,
                    defaults={"email": f"{role}@demo.example", "is_staff": role == roles.ADMIN},
                )
                if created:
                    user.set_password(DEMO_PASSWORD.format(role=role))
                    user.save(update_fields=["password"])
                    user.groups.add(Group.objects.get(name=role))
                if not TOTPDevice.objects.filter(user=user, confirmed=True).exists():
                    TOTPDevice.objects.create(user=user, name="demo authenticator", confirmed=True)
            self.stdout.write(
                f"{'Created' if created else 'Kept'} demo {role}: "
                f"{role} / {DEMO_PASSWORD.format(role=role)}"
            )
