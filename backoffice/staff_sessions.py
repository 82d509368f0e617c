"""Staff sessions: started at sign-in, rotated at OTP and step-up, ended by their owner or an admin.

Django's session store holds the data; StaffSession rows say whose each session is, so that all of
a person's sessions can be listed and ended at once ("sign out everywhere", an admin ending them,
a deactivated account).
"""

from __future__ import annotations

import time
from importlib import import_module

from django.conf import settings
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone

from . import audit
from .models import StaffSession

STARTED_AT = "staff_started_at"  # epoch seconds of the sign-in
LAST_SEEN_AT = "staff_last_seen_at"  # epoch seconds of the last request
OTP_VERIFIED_AT = "staff_otp_verified_at"  # epoch seconds of the last OTP (sign-in or step-up)
METHOD = "staff_sign_in_method"


def _store():
    return import_module(settings.SESSION_ENGINE).SessionStore


def start(request: HttpRequest, user, method: str) -> None:
    """After django.contrib.auth.login (which gave the session a new key)."""
    now = time.time()
    request.session[STARTED_AT] = now
    request.session[LAST_SEEN_AT] = now
    request.session[METHOD] = method
    request.session.save()  # the key must exist to be recorded
    StaffSession.objects.update_or_create(
        session_key=request.session.session_key,
        defaults={
            "user": user,
            "method": method,
            "remote_addr": audit.client_ip(request),
            "user_agent": request.META.get("HTTP_USER_AGENT", "")[:300],
            "ended_at": None,
            "end_reason": "",
        },
    )


def rotate(request: HttpRequest) -> None:
    """A new session id for the same session (at OTP verification and at step-up)."""
    old = request.session.session_key
    request.session.cycle_key()
    StaffSession.objects.filter(session_key=old).update(session_key=request.session.session_key)


def mark_verified(request: HttpRequest) -> None:
    request.session[OTP_VERIFIED_AT] = time.time()


def otp_age_seconds(request: HttpRequest) -> float | None:
    verified_at = request.session.get(OTP_VERIFIED_AT)
    return None if verified_at is None else time.time() - verified_at


def closed(request: HttpRequest, reason: str) -> None:
    """The current session ends (sign-out, timeout): mark its row."""
    key = request.session.session_key
    if key:
        StaffSession.objects.filter(session_key=key, ended_at=None).update(
            ended_at=timezone.now(), end_reason=reason
        )


def end_all(user, *, reason: str, keep: str | None = None) -> int:
    """End every open session of `user` (but `keep`): deleted from the store, marked ended."""
    store = _store()
    with transaction.atomic():
        sessions = list(
            StaffSession.objects.select_for_update()
            .filter(user=user, ended_at=None)
            .exclude(session_key=keep or "")
        )
        for session in sessions:
            store(session_key=session.session_key).delete()
        StaffSession.objects.filter(pk__in=[s.pk for s in sessions]).update(
            ended_at=timezone.now(), end_reason=reason
        )
    return len(sessions)


def open_sessions(user) -> list[StaffSession]:
    """The user's sessions that are open and still in the store (expired ones are closed here)."""
    store = _store()
    alive = []
    for session in StaffSession.objects.filter(user=user, ended_at=None):
        if store().exists(session.session_key):
            alive.append(session)
        else:
            StaffSession.objects.filter(pk=session.pk).update(
                ended_at=timezone.now(), end_reason="expired"
            )
    return alive
