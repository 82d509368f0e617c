from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

DEMO_USERNAME = "admin"
DEMO_PASSWORD = "admin"


class Command(BaseCommand):
    help = "Create demo data for local development (DEBUG only). Safe to run repeatedly."

    def handle(self, *args: Any, **options: Any) -> None:
        if not settings.DEBUG:
            raise CommandError(
                "seed_demo creates a known admin/admin login; it runs only with DEBUG=true."
            )
        User = get_user_model()
        if User.objects.filter(username=DEMO_USERNAME).exists():
            self.stdout.write(f"Superuser {DEMO_USERNAME!r} already exists; left unchanged.")
        else:
            User.objects.create_superuser(DEMO_USERNAME, "admin@example.com", DEMO_PASSWORD)
            self.stdout.write(
                self.style.SUCCESS(
                    f"Created superuser {DEMO_USERNAME!r} (password {DEMO_PASSWORD!r})."
                )
            )
