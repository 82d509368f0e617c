"""Staff access rules applied to every request, before any view runs.

- AuditContextMiddleware: the request is known to audit rows written by signals.
- SessionLifetimeMiddleware: sessions end after STAFF_IDLE_TIMEOUT_SECONDS without a request
  and STAFF_SESSION_LIFETIME_SECONDS after sign-in, whatever happens in between.
- StaffOnlyMiddleware: no page, fragment or export past sign-in and OTP, except views marked
  @public (sign-in itself, Google's steps, FlashFX's webhooks, the health check).
- GoogleSignInErrorMiddleware: a refused Google sign-in becomes a clear message (and an audit row).
- NoStoreMiddleware: no answer of ours is kept by a browser or a shared cache.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import cache
from urllib.parse import quote

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils.cache import add_never_cache_headers
from django_htmx.http import HttpResponseClientRedirect
from social_core.exceptions import AuthPolicyError, SocialAuthBaseException
from social_django.middleware import SocialAuthExceptionMiddleware

from . import audit, staff_sessions
from .google import DomainNotAllowed, EmailDomainNotAllowed, NoStaffAccount

LAST_SEEN_WRITE_EVERY = 30  # seconds: the idle clock's resolution, and at most one write per


def public(view: Callable) -> Callable:
    """Mark a view as reachable without signing in (StaffOnlyMiddleware lets it through)."""
    view.staff_public = True
    return view


@cache
def second_factor_paths() -> frozenset[str]:
    """Reachable after the password (or Google) and before the code: exactly these."""
    return frozenset((reverse("otp-verify"), reverse("otp-setup"), reverse("logout")))


def url_with_next(name: str, next_url: str) -> str:
    """The URL named `name`, coming back to `next_url` afterwards."""
    return f"{reverse(name)}?next={quote(next_url)}"


def page_redirect(request: HttpRequest, url: str) -> HttpResponse:
    """A plain redirect, or for an htmx request one that reloads the whole page there."""
    if getattr(request, "htmx", False):
        return HttpResponseClientRedirect(url)
    return HttpResponseRedirect(url)


class AuditContextMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        with audit.bind_request(request):
            return self.get_response(request)


class SessionLifetimeMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.user.is_authenticated:
            now = time.time()
            session = request.session
            started = session.setdefault(staff_sessions.STARTED_AT, now)
            last_seen = session.setdefault(staff_sessions.LAST_SEEN_AT, now)
            reason = None
            if now - started > settings.STAFF_SESSION_LIFETIME_SECONDS:
                reason = "lifetime"
            elif now - last_seen > settings.STAFF_IDLE_TIMEOUT_SECONDS:
                reason = "idle"
            if reason:
                audit.record(audit.SESSION_EXPIRED, request=request, details={"reason": reason})
                staff_sessions.closed(request, reason)
                logout(request)
                messages.info(
                    request,
                    "You were signed out after "
                    + (
                        "a period of inactivity."
                        if reason == "idle"
                        else "the longest a session may last."
                    )
                    + " Sign in again to continue.",
                )
                return page_redirect(request, url_with_next("login", request.get_full_path()))
            if now - last_seen >= LAST_SEEN_WRITE_EVERY:
                session[staff_sessions.LAST_SEEN_AT] = now
        return self.get_response(request)


class StaffOnlyMiddleware:
    """Every view needs a signed-in, OTP-verified member unless it is marked @public; a path
    that matches no view sends a stranger to sign in too (a 404 would say what exists)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if response.status_code == 404 and not getattr(request, "_staff_checked", False):
            return self._refusal(request) or response
        return response

    def process_view(self, request: HttpRequest, view_func, view_args, view_kwargs):
        request._staff_checked = True
        if getattr(view_func, "staff_public", False):
            return None
        return self._refusal(request)

    def _refusal(self, request: HttpRequest) -> HttpResponse | None:
        user = request.user
        if not user.is_authenticated:
            if getattr(request, "htmx", False):
                return HttpResponseClientRedirect(url_with_next("login", request.path))
            return redirect_to_login(request.get_full_path())
        if not user.is_verified() and request.path_info not in second_factor_paths():
            return page_redirect(request, url_with_next("otp-verify", request.get_full_path()))
        return None


class GoogleSignInErrorMiddleware(SocialAuthExceptionMiddleware):
    MESSAGES = {
        NoStaffAccount: "There is no staff account for that Google address. Ask an administrator to create one.",
        DomainNotAllowed: "That Google account is not in a domain allowed to sign in here.",
        EmailDomainNotAllowed: "That Google account may not sign in here (its domain is not allowed).",
    }

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if isinstance(exception, SocialAuthBaseException):
            audit.record(
                audit.SIGN_IN_FAILED,
                request=request,
                details={
                    "method": "google",
                    "reason": getattr(exception, "code", "") or type(exception).__name__,
                    "error": type(exception).__name__,
                    "email": getattr(exception, "email", ""),
                },
            )
        return super().process_exception(request, exception)

    def get_message(self, request: HttpRequest, exception: Exception) -> str:
        for kind, message in self.MESSAGES.items():
            if isinstance(exception, kind):
                return message
        if isinstance(exception, AuthPolicyError):
            return "That Google account may not sign in here (its domain is not allowed)."
        return f"Google sign-in did not complete: {exception}"


class NoStoreMiddleware:
    """Every answer carries `Cache-Control: no-store` (with Django's never-cache set): staff
    pages, fragments and exports hold money and personal data, which must not sit in a shared
    proxy's or the browser's cache, and sign-in pages hold one-use tokens. A view that sets its
    own Cache-Control keeps it (none does today; static files never pass through here)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if not response.has_header("Cache-Control"):
            add_never_cache_headers(response)
        return response
