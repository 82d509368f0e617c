"""TOTP enrolment and verification (django-otp), and the single-use backup codes.

A member has at most one TOTP device. During enrolment its key lives only in the member's
session (the QR code stays the same while they scan it, and no other session can read it); the
device is saved when a code from it is entered, with a fresh set of backup codes. Codes from an already used time step
are refused and failures throttle the device (django-otp); guessing is also counted per username
and address by django-axes (backoffice/accounts.py).
"""

from __future__ import annotations

import base64
import time
from dataclasses import dataclass

import django_otp
import segno
from django.conf import settings
from django.db import transaction
from django_otp.oath import TOTP
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice
from django_otp.util import random_hex

TOTP_NAME = "authenticator"
PENDING_KEY = "staff_pending_totp_key"  # session key: the secret being enrolled
BACKUP_NAME = "backup codes"


def confirmed_totp(user) -> TOTPDevice | None:
    return TOTPDevice.objects.filter(user=user, confirmed=True).first()


def is_enrolled(user) -> bool:
    return TOTPDevice.objects.filter(user=user, confirmed=True).exists()


def pending_totp(session, user) -> TOTPDevice:
    """The device being enrolled, NOT saved: its key lives only in this session until a code
    from it is entered, so nobody else (another session with the same password) can read it."""
    key = session.get(PENDING_KEY)
    if not key:
        key = session[PENDING_KEY] = random_hex(20)
    return TOTPDevice(user=user, name=TOTP_NAME, key=key, confirmed=True)


def secret_base32(device: TOTPDevice) -> str:
    """The key as authenticator apps take it when typed in."""
    return base64.b32encode(device.bin_key).decode().rstrip("=")


def qr_svg(device: TOTPDevice) -> str:
    """The otpauth:// URI as an inline SVG (no style attributes: fine under our CSP)."""
    return segno.make(device.config_url, error="m").svg_inline(scale=5, border=2)


@dataclass(frozen=True)
class Verdict:
    ok: bool
    device: object | None = None
    throttled: bool = False


def _verify(user, device, token: str) -> bool:
    # verify_token locks the device row (select_for_update) so a code cannot be raced twice.
    return django_otp.verify_token(user, device.persistent_id, token) is not None


def check(user, token: str, *, allow_backup: bool = True) -> Verdict:
    """A code from the member's authenticator, or (at sign-in) one of their backup codes."""
    token = "".join(token.split())
    devices = [d for d in [confirmed_totp(user)] if d is not None]
    # A 6-digit code is for the authenticator only: a wrong one must not also throttle the
    # backup codes (a colleague with the password could otherwise burn both).
    if allow_backup and not (token.isdigit() and len(token) == 6):
        devices = list(StaticDevice.objects.filter(user=user, confirmed=True))
    throttled = False
    for device in devices:
        allowed, _ = device.verify_is_allowed()
        if not allowed:
            throttled = True
            continue
        if token and _verify(user, device, token):
            return Verdict(True, device)
    return Verdict(False, None, throttled)


def confirm_enrolment(session, user, token: str) -> tuple[TOTPDevice, list[str]] | None:
    """Save the pending device if `token` is its code now; returns it and new backup codes."""
    device = pending_totp(session, user)
    token = "".join(token.split())
    if not token.isdigit():
        return None
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    totp.time = time.time()
    if not totp.verify(int(token), device.tolerance):
        return None
    device.last_t = totp.t()  # this code's time step is used: it cannot sign in again
    with transaction.atomic():
        TOTPDevice.objects.filter(user=user).delete()  # an admin's reset left none; be sure
        device.save()
        codes = new_backup_codes(user)
    del session[PENDING_KEY]
    return device, codes


def new_backup_codes(user) -> list[str]:
    """A fresh set of single-use backup codes (the earlier set stops working)."""
    StaticDevice.objects.filter(user=user).delete()
    static = StaticDevice.objects.create(user=user, name=BACKUP_NAME, confirmed=True)
    codes = [StaticToken.random_token() for _ in range(settings.STAFF_BACKUP_CODES)]
    StaticToken.objects.bulk_create([StaticToken(device=static, token=c) for c in codes])
    return codes


def reset(user) -> None:
    """An admin's reset: the member enrols again at their next sign-in."""
    TOTPDevice.objects.filter(user=user).delete()  # confirmed or not
    StaticDevice.objects.filter(user=user).delete()
