"""Pages a later issue fills in: payouts, payments and exports."""

from __future__ import annotations

from django.contrib.auth.decorators import permission_required
from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_safe

from backoffice.views import placeholder


@require_safe
@permission_required("payments.view_withdrawal", raise_exception=True)
def payouts(request: HttpRequest) -> HttpResponse:
    return placeholder(
        request,
        "Payouts",
        "Local AUD payouts: an operator starts one, someone else approves it, and it is sent to "
        "FlashFX exactly once; each step asks for a fresh code.",
    )


@require_safe
@permission_required("payments.view_payment", raise_exception=True)
def payments(request: HttpRequest) -> HttpResponse:
    return placeholder(
        request,
        "Payments",
        "International payments with their quotes, under the same maker-checker approval as "
        "payouts.",
    )


@require_safe
@permission_required("backoffice.export_data", raise_exception=True)
def exports(request: HttpRequest) -> HttpResponse:
    return placeholder(
        request,
        "Exports",
        "CSV and XLSX exports of what you can see, each one recorded in the audit trail.",
    )
