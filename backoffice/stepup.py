"""Step-up: a money action needs an OTP code entered within STAFF_STEP_UP_MAX_AGE_SECONDS.

    @step_up_required
    def reject_deposit(request, pk): ...

An older verification sends the member to the step-up page (a full-page redirect for htmx
requests), which brings them back to where they came from; they then repeat the action.
Every later money view uses this decorator (or `needs_step_up` in a service-facing check).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from urllib.parse import urlsplit

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme

from . import staff_sessions
from .middleware import page_redirect, url_with_next


def needs_step_up(request: HttpRequest) -> bool:
    age = staff_sessions.otp_age_seconds(request)
    return age is None or age > settings.STAFF_STEP_UP_MAX_AGE_SECONDS


def return_path(request: HttpRequest) -> str:
    """Where to come back after the step-up: this page for a GET, else the page the form was on."""
    if request.method in ("GET", "HEAD"):
        return request.get_full_path()
    referer = request.headers.get("HX-Current-URL") or request.headers.get("Referer") or ""
    if url_has_allowed_host_and_scheme(
        referer, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        parts = urlsplit(referer)
        return parts.path + (f"?{parts.query}" if parts.query else "")
    return reverse("dashboard")


def step_up_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    @wraps(view)
    def wrapped(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if needs_step_up(request):
            return page_redirect(request, url_with_next("step-up", return_path(request)))
        return view(request, *args, **kwargs)

    return wrapped
