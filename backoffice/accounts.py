"""Staff sign-in pages: password (or Google), then a TOTP code; enrolment, step-up, sign-out.

Every path here ends in one of: a verified session with a new id (otp_verified), a refusal that
is audited and counted against the username + address (django-axes), or a sign-out.
"""

from __future__ import annotations

from functools import wraps

import django_otp
from axes.handlers.proxy import AxesProxyHandler
from axes.helpers import get_lockout_response
from axes.utils import reset as axes_reset
from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth.signals import user_login_failed
from django.contrib.auth.views import LoginView, redirect_to_login
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST, require_safe
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice

from . import audit, otp, staff_sessions
from .middleware import url_with_next
from .signals import OTP_SENDER
from .stepup import step_up_required

BACKUP_CODES_ONCE = "staff_backup_codes_once"


class CodeForm(forms.Form):
    token = forms.CharField(
        label="Code",
        max_length=16,
        widget=forms.TextInput(
            attrs={
                "autocomplete": "one-time-code",
                "inputmode": "numeric",
                "autofocus": True,
                "spellcheck": "false",
            }
        ),
    )


def _next(request: HttpRequest) -> str:
    candidate = request.POST.get("next") or request.GET.get("next") or ""
    if url_has_allowed_host_and_scheme(
        candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return candidate
    return reverse("dashboard")


def _credentials(request: HttpRequest) -> dict[str, str]:
    return {"username": request.user.get_username()}


def _locked(request: HttpRequest) -> HttpResponse | None:
    """The lockout answer when this username is locked from this address (password or codes)."""
    credentials = _credentials(request)
    if AxesProxyHandler.is_allowed(request, credentials):
        return None
    audit.record(audit.LOCKED_OUT, request=request, details={"step": "otp"})
    return get_lockout_response(request, None, credentials)


def _code_failed(request: HttpRequest, action: str, verdict: otp.Verdict | None, step: str) -> None:
    audit.record(
        action,
        request=request,
        details={"step": step, "throttled": bool(verdict and verdict.throttled)},
    )
    # Counted by django-axes with the password failures (username + address).
    user_login_failed.send(sender=OTP_SENDER, credentials=_credentials(request), request=request)


def _verified(request: HttpRequest, device) -> None:
    """A good code: the session is now OTP-verified, under a new id. Only an authenticator's
    code counts as fresh for step-up; a backup code gets the member in, not to money."""
    django_otp.login(request, device)
    staff_sessions.rotate(request)
    if isinstance(device, TOTPDevice):
        staff_sessions.mark_verified(request)
    axes_reset(ip=audit.client_ip(request), username=request.user.get_username())


def google_only_when_configured(view):
    """social-auth's begin and complete steps answer 404 unless Google sign-in is configured."""

    def wrapped(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if not settings.GOOGLE_SIGN_IN:
            raise Http404("Google sign-in is not configured")
        return view(request, *args, **kwargs)

    return wraps(view)(wrapped)


class StaffLoginView(LoginView):
    template_name = "accounts/login.html"
    redirect_authenticated_user = True

    def get_success_url(self) -> str:
        return url_with_next("otp-verify", super().get_success_url())

    def get_context_data(self, **kwargs):
        return super().get_context_data(google_sign_in=settings.GOOGLE_SIGN_IN, **kwargs)


@never_cache
@require_http_methods(["GET", "HEAD", "POST"])
def otp_verify(request: HttpRequest) -> HttpResponse:
    user = request.user
    if not user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    next_url = _next(request)
    if user.is_verified():
        return HttpResponseRedirect(next_url)
    if not otp.is_enrolled(user):
        return HttpResponseRedirect(url_with_next("otp-setup", next_url))
    form = CodeForm(request.POST or None)
    status = 200
    if request.method == "POST":
        if locked := _locked(request):
            return locked
        verdict = otp.check(user, request.POST.get("token", ""))
        if verdict.ok:
            _verified(request, verdict.device)
            details = {
                "device": "backup code"
                if isinstance(verdict.device, StaticDevice)
                else "authenticator"
            }
            if isinstance(verdict.device, StaticDevice):
                left = verdict.device.token_set.count()
                details["backup_codes_left"] = left
                messages.warning(
                    request,
                    f"You signed in with a backup code; {left} left. Make new ones from "
                    "your sessions page if you are running low.",
                )
            audit.record(audit.OTP_VERIFIED, request=request, details=details)
            return HttpResponseRedirect(next_url)
        _code_failed(request, audit.OTP_FAILED, verdict, "sign-in")
        form.add_error(
            "token",
            "Too many wrong codes: wait a moment and try again."
            if verdict.throttled
            else "That code is not right (or was already used). Try the next one.",
        )
        status = 400
    return render(
        request, "accounts/otp_verify.html", {"form": form, "next": next_url}, status=status
    )


@never_cache
@require_http_methods(["GET", "HEAD", "POST"])
def otp_setup(request: HttpRequest) -> HttpResponse:
    user = request.user
    if not user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    next_url = _next(request)
    if otp.is_enrolled(user):  # a new device only after an admin's reset
        return HttpResponseRedirect(url_with_next("otp-verify", next_url))
    device = otp.pending_totp(request.session, user)
    form = CodeForm(request.POST or None)
    status = 200
    if request.method == "POST":
        if locked := _locked(request):
            return locked
        with transaction.atomic():
            confirmed = otp.confirm_enrolment(request.session, user, request.POST.get("token", ""))
            if confirmed:
                device, codes = confirmed
                _verified(request, device)
                audit.record(
                    audit.OTP_ENROLLED,
                    request=request,
                    obj=user,
                    details={"device": "authenticator", "backup_codes": len(codes)},
                )
        if confirmed:
            request.session[BACKUP_CODES_ONCE] = codes
            return HttpResponseRedirect(url_with_next("backup-codes", next_url))
        _code_failed(request, audit.OTP_FAILED, None, "enrolment")
        form.add_error(
            "token", "That code does not match. Check the time on your phone and try again."
        )
        status = 400
    context = {
        "form": form,
        "next": next_url,
        "qr_svg": otp.qr_svg(device),
        "secret": otp.secret_base32(device),
        "issuer": settings.OTP_TOTP_ISSUER,
    }
    return render(request, "accounts/otp_setup.html", context, status=status)


@never_cache
@require_http_methods(["GET", "HEAD", "POST"])
def backup_codes(request: HttpRequest) -> HttpResponse:
    """Shown once, right after they are made (at enrolment, or on request after a step-up)."""
    if request.method == "POST":
        return _regenerate_backup_codes(request)
    # Only a GET uses up the one showing: a HEAD (a link preview, a prefetch) must not.
    take = request.session.pop if request.method == "GET" else request.session.get
    codes = take(BACKUP_CODES_ONCE, None)
    return render(
        request,
        "accounts/backup_codes.html",
        {"codes": codes, "next": _next(request)},
    )


@step_up_required
def _regenerate_backup_codes(request: HttpRequest) -> HttpResponse:
    with transaction.atomic():
        codes = otp.new_backup_codes(request.user)
        audit.record(
            audit.OTP_ENROLLED,
            request=request,
            obj=request.user,
            details={"device": "backup codes", "backup_codes": len(codes)},
        )
    request.session[BACKUP_CODES_ONCE] = codes
    return HttpResponseRedirect(url_with_next("backup-codes", reverse("sessions")))


@never_cache
@require_http_methods(["GET", "HEAD", "POST"])
def step_up(request: HttpRequest) -> HttpResponse:
    next_url = _next(request)
    form = CodeForm(request.POST or None)
    status = 200
    if request.method == "POST":
        if locked := _locked(request):
            return locked
        verdict = otp.check(request.user, request.POST.get("token", ""), allow_backup=False)
        if verdict.ok:
            _verified(request, verdict.device)
            audit.record(audit.STEP_UP, request=request, details={"next": next_url})
            return HttpResponseRedirect(next_url)
        _code_failed(request, audit.STEP_UP_FAILED, verdict, "step-up")
        form.add_error(
            "token",
            "Too many wrong codes: wait a moment and try again."
            if verdict.throttled
            else "That code is not right (or was already used).",
        )
        status = 400
    return render(request, "accounts/step_up.html", {"form": form, "next": next_url}, status=status)


@never_cache
@require_http_methods(["GET", "HEAD", "POST"])
def sign_out(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        if request.user.is_authenticated:
            audit.record(audit.SIGN_OUT, request=request)
            logout(request)
        messages.info(request, "You are signed out.")
        return HttpResponseRedirect(reverse("login"))
    return render(request, "accounts/sign_out.html")


@never_cache
@require_POST
def sign_out_everywhere(request: HttpRequest) -> HttpResponse:
    user = request.user
    ended = staff_sessions.end_all(
        user, reason="signed out everywhere", keep=request.session.session_key
    )
    audit.record(audit.SIGN_OUT_EVERYWHERE, request=request, details={"other_sessions": ended})
    logout(request)
    messages.info(request, f"You are signed out here and in {ended} other session(s).")
    return HttpResponseRedirect(reverse("login"))


@never_cache
@require_safe
def sessions(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "accounts/sessions.html",
        {
            "sessions": staff_sessions.open_sessions(request.user),
            "current_key": request.session.session_key,
            "backup_codes_left": sum(
                d.token_set.count() for d in StaticDevice.objects.filter(user=request.user)
            ),
        },
    )
