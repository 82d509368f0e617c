from __future__ import annotations

import logging

from django.conf import settings
from django.contrib.auth.decorators import permission_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe
from django.views.decorators.vary import vary_on_headers

from . import charts, readiness, selectors
from . import dashboard as board
from .http import is_fragment_request
from .roles import ADMIN, roles_of

logger = logging.getLogger(__name__)
AUDIT_PAGE = 100


def placeholder(
    request: HttpRequest, title: str, what: str, *, template: str = "staff/placeholder.html"
) -> HttpResponse:
    """A page of the shell that a later issue fills in: says what will be there."""
    return render(request, template, {"title": title, "what": what})


DASHBOARD_POLL_SECONDS = 30  # how often each tile asks for itself again (htmx polling)


def _tile(name: str, request: HttpRequest, zone, roles: list[str]) -> dict:
    """One tile's figures: only what the member may see (backoffice/dashboard.py)."""
    user = request.user
    if name == "balances":
        return {"balances": [(b, charts.balance_sparkline(b)) for b in board.balances(zone=zone)]}
    if name == "money":
        flows = board.money_flows(user=user, zone=zone)
        return {"flows": [(f, charts.money_chart(f)) for f in flows]}
    if name == "work":
        return {
            "deposits": board.deposits_to_review()
            if user.has_perm("payments.view_deposit")
            else [],
            "approvals": (
                board.approvals_waiting(user=user)
                if user.has_perm("payments.view_approval")
                else None
            ),
            "overdue": (
                board.expected_overdue(zone=zone)
                if user.has_perm("payments.view_expectedpayment")
                else None
            ),
        }
    if name == "health":
        return {
            "webhooks": (
                board.webhook_health() if user.has_perm("webhooks.view_inboundevent") else None
            ),
            "syncs": board.sync_health(),
            "drift": board.drift_items_open() if user.has_perm("mirrors.view_driftitem") else None,
            "queue": board.worker_queue_length(),
            "broker": board.broker_kind(),
            # the sync runs' list is in the Django admin
            "admin": user.is_active and (user.is_superuser or ADMIN in roles),
        }
    raise Http404("No such tile.")


@require_safe
@vary_on_headers("HX-Request")
def dashboard(request: HttpRequest) -> HttpResponse:
    """The state of the money at a glance; each tile also answers alone (?tile=<name>, htmx
    polling), computing only its own figures."""
    tiles = board.tiles_for(request.user)
    zone = board.member_zone(request.user)
    roles = roles_of(request.user)
    context: dict = {"tiles": tiles, "poll_seconds": DASHBOARD_POLL_SECONDS, "zone": zone}
    name = request.GET.get("tile", "")
    with timezone.override(zone):  # {% when %} and the day labels in the member's zone
        if name and is_fragment_request(request):
            if name not in board.TILES:
                raise Http404("No such tile.")
            if name not in tiles:
                raise PermissionDenied("Your role does not show this tile.")
            context.update(_tile(name, request, zone, roles))
            return render(request, f"backoffice/dashboard/_{name}.html", context)
        for tile in tiles:
            context.update(_tile(tile, request, zone, roles))
        context["roles"] = roles
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
