from __future__ import annotations

import time
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

from backoffice import otp


class Command(BaseCommand):
    help = "Print a demo member's current one-time code and authenticator key (DEBUG only)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("username")

    def handle(self, *args: Any, username: str, **options: Any) -> None:
        if not settings.DEBUG:
            raise CommandError("demo_otp reveals second factors; it runs only with DEBUG=true.")
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"no member {username!r} (run `make run` once to seed the demo)")
        device = TOTPDevice.objects.filter(user=user, confirmed=True).first()
        if device is None:
            raise CommandError(f"{username} has no authenticator yet: they enrol at sign-in")
        totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
        now = time.time()
        totp.time = now
        left = device.step - int(now - device.t0) % device.step
        self.stdout.write(
            f"{username}: code {totp.token():0{device.digits}d} (valid {left} s more; each code "
            f"works once)\nauthenticator key: {otp.secret_base32(device)}"
        )
