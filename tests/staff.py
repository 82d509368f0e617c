"""Staff members for tests: a user with a role, signed in with a verified TOTP device.

A plain module beside tests/conftest.py: `from staff import make_staff, sign_in`.
"""

from __future__ import annotations

import time

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

from backoffice import staff_sessions

PASSWORD = "correct horse battery staple"
MODEL_BACKEND = "django.contrib.auth.backends.ModelBackend"


def make_staff(role: str | None, username: str | None = None, **fields):
    """An active member with this role (None: no role), password PASSWORD."""
    user = get_user_model().objects.create_user(
        username or (role or "nobody"),
        email=f"{username or role or 'nobody'}@example.com",
        password=PASSWORD,
        **fields,
    )
    if role:
        user.groups.add(Group.objects.get(name=role))
    return user


def enrol(user) -> TOTPDevice:
    return TOTPDevice.objects.create(user=user, name="authenticator", confirmed=True)


def code(device: TOTPDevice, *, steps_ahead: int = 0) -> str:
    """The device's code for now (or a later time step), computed here from its key.

    The device is re-read first: a code accepted one step late makes django-otp record a drift
    (OTP_TOTP_SYNC), and a code computed without it would be one step off."""
    if device.pk is not None:
        device.refresh_from_db()
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    totp.time = time.time() + steps_ahead * device.step
    return f"{totp.token():0{device.digits}d}"


def sign_in(client, user, *, verified: bool = True, otp_age: float = 0.0) -> TOTPDevice:
    """Signed in (password step done) and, unless verified=False, past the OTP step
    `otp_age` seconds ago."""
    device = TOTPDevice.objects.filter(user=user, confirmed=True).first() or enrol(user)
    client.force_login(user, backend=MODEL_BACKEND)
    if verified:
        session = client.session
        session[DEVICE_ID_SESSION_KEY] = device.persistent_id
        session[staff_sessions.OTP_VERIFIED_AT] = time.time() - otp_age
        session.save()
    return device
