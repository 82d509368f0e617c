"""TOTP enrolment and verification (django-otp), and the single-use backup codes.

A member has at most one confirmed TOTP device. Enrolment keeps one unconfirmed device (so the
QR code stays the same while they scan it) until a code from it is entered; then it is confirmed
and a fresh set of backup codes replaces any earlier one. Codes from an already used time step
are refused and failures throttle the device (django-otp); guessing is also counted per username
and address by django-axes (backoffice/accounts.py).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass

import django_otp
import segno
from django.conf import settings
from django.db import transaction
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

TOTP_NAME = "authenticator"
BACKUP_NAME = "backup codes"


def confirmed_totp(user) -> TOTPDevice | None:
    return TOTPDevice.objects.filter(user=user, confirmed=True).first()


def is_enrolled(user) -> bool:
    return TOTPDevice.objects.filter(user=user, confirmed=True).exists()


def pending_totp(user) -> TOTPDevice:
    """The device being enrolled: the same one (and QR code) until it is confirmed."""
    device = TOTPDevice.objects.filter(user=user, confirmed=False).order_by("pk").first()
    return device or TOTPDevice.objects.create(user=user, name=TOTP_NAME, confirmed=False)


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
    if allow_backup:
        devices += list(StaticDevice.objects.filter(user=user, confirmed=True))
    throttled = False
    for device in devices:
        allowed, _ = device.verify_is_allowed()
        if not allowed:
            throttled = True
            continue
        if token and _verify(user, device, token):
            return Verdict(True, device)
    return Verdict(False, None, throttled)


def confirm_enrolment(user, token: str) -> tuple[TOTPDevice, list[str]] | None:
    """Confirm the pending device with a code from it; returns it and the new backup codes."""
    device = pending_totp(user)
    token = "".join(token.split())
    if not token or not device.verify_token(token):
        return None
    with transaction.atomic():
        TOTPDevice.objects.filter(user=user, confirmed=True).delete()
        device.confirmed = True
        device.save(update_fields=["confirmed"])
        codes = new_backup_codes(user)
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
    TOTPDevice.objects.filter(user=user).delete()
    StaticDevice.objects.filter(user=user).delete()
