from __future__ import annotations

import logging

from django.conf import settings
from django.contrib.auth.decorators import permission_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe
from django.views.decorators.vary import vary_on_headers

from . import readiness, selectors
from .http import is_fragment_request
from .roles import roles_of

logger = logging.getLogger(__name__)
AUDIT_PAGE = 100


def placeholder(
    request: HttpRequest, title: str, what: str, *, template: str = "staff/placeholder.html"
) -> HttpResponse:
    """A page of the shell that a later issue fills in: says what will be there."""
    return render(request, template, {"title": title, "what": what})


@require_safe
def dashboard(request: HttpRequest) -> HttpResponse:
    context = {"roles": roles_of(request.user)}
    if settings.DEBUG:  # the local sandbox's console, for the demo
        context["sandbox_console_url"] = settings.FLASHFX_API_URL.rstrip("/") + "/console/"
    return render(request, "backoffice/dashboard.html", context)


def _event_id(value: str) -> int | None:
    """An audit event id from the query string; anything else (e.g. "²", which isdigit() takes
    but int() refuses, or more digits than a bigint holds) is no cursor: the first page."""
    return int(value) if value.isascii() and value.isdigit() and len(value) <= 18 else None


@require_safe
@permission_required("backoffice.view_auditevent", raise_exception=True)
@vary_on_headers("HX-Request")
def audit_trail(request: HttpRequest) -> HttpResponse:
    """Newest first, a page at a time (keyset: ?before=<id>), filterable by action and actor."""
    action = request.GET.get("action", "").strip()
    actor = request.GET.get("actor", "").strip()
    before = request.GET.get("before", "")
    page = selectors.audit_event_list(
        action=action,
        actor=actor,
        before=_event_id(before),
        size=AUDIT_PAGE,
    )
    context = {
        "events": page.events,
        "next_before": page.next_before,
        "action": action,
        "actor": actor,
        "actions": selectors.audit_action_list(),
    }
    fragment = is_fragment_request(request)  # the filter form's swap: the rows alone
    template = "backoffice/audit_rows.html" if fragment else "backoffice/audit.html"
    return render(request, template, context)


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    return render(request, "403_csrf.html", {"reason": reason}, status=403)


@never_cache
@require_safe
def healthz(request: HttpRequest) -> JsonResponse:
    """The process is up and answers; what it depends on is /readyz's question."""
    return JsonResponse({"status": "ok"})


@never_cache
@require_safe
def readyz(request: HttpRequest) -> JsonResponse:
    """Everything this process needs answers (backoffice/readiness.py): 200, else 503 with
    the checks that failed and why."""
    checks = readiness.run_checks()
    failed = [c.name for c in checks if not c.ok]
    if failed:
        logger.warning(
            "readyz: not ready: %s",
            "; ".join(f"{c.name}: {c.detail}" for c in checks if not c.ok),
        )
    return JsonResponse(
        {
            "status": "error" if failed else "ok",
            "failed": failed,
            "checks": {c.name: c.as_json() for c in checks},
        },
        status=503 if failed else 200,
    )
