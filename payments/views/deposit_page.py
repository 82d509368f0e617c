"""One deposit (/deposits/<FlashFX id>/) and rejecting it (/deposits/<FlashFX id>/reject/).

The page's refunds section (with FlashFX's status) polls itself every
DEPOSIT_PAGE_POLL_SECONDS while a refund is in flight: the same view answers an htmx request
with that section, and the timeline as an out-of-band swap.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.decorators import permission_required
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_safe
from django.views.decorators.vary import vary_on_headers

from backoffice.http import is_fragment_request
from backoffice.stepup import step_up_required

from .. import tasks
from ..forms.refunds import RefundForm
from ..models import Deposit
from ..selectors.timeline import deposit_timeline
from ..services import refunds


def _refunds_context(request: HttpRequest, deposit: Deposit) -> dict:
    history = list(
        deposit.refunds.select_related("requested_by", "approval", "approval__decided_by")
    )
    in_flight = any(r.state in refunds.IN_FLIGHT for r in history)
    blocker = refunds.reject_blocker(deposit)
    return {
        "deposit": deposit,
        "refunds": history,
        "in_flight": in_flight,
        "poll_seconds": settings.DEPOSIT_PAGE_POLL_SECONDS if in_flight else 0,
        "may_reject": request.user.has_perm(refunds.REJECT_PERMISSION),
        "reject_blocker": blocker,
    }


@require_safe
@permission_required("payments.view_deposit", raise_exception=True)
@vary_on_headers("HX-Request")
def deposit_detail(request: HttpRequest, flashfx_id: str) -> HttpResponse:
    """Everything known about one deposit; an htmx request gets the refunds section alone."""
    deposit = get_object_or_404(
        Deposit.objects.select_related("sub_client", "assignee").flashfx_id(flashfx_id)
    )
    context = _refunds_context(request, deposit)
    context["timeline"] = deposit_timeline(deposit=deposit, user=request.user)
    if is_fragment_request(request):  # the section's poll; the timeline comes out of band
        return render(request, "payments/deposit/_poll.html", context)
    return render(request, "payments/deposit/detail.html", context)


@require_http_methods(["GET", "HEAD", "POST"])
@permission_required(refunds.REJECT_PERMISSION, raise_exception=True)
def deposit_reject(request: HttpRequest, flashfx_id: str) -> HttpResponse:
    """The reject form: reason, amount, where the money goes; POST needs a fresh step-up."""
    deposit = get_object_or_404(Deposit.objects.flashfx_id(flashfx_id))
    if request.method == "POST":
        return _reject(request, deposit)
    form = RefundForm(deposit=deposit)
    return _reject_page(request, deposit, form)


def _reject_page(
    request: HttpRequest, deposit: Deposit, form: RefundForm, *, status: int = 200
) -> HttpResponse:
    context = {"deposit": deposit, "form": form, "blocker": refunds.reject_blocker(deposit)}
    context["needs_approval"] = refunds.needs_approval(
        amount=deposit.amount, currency=deposit.currency
    )
    context["threshold"] = settings.DEPOSIT_REFUND_APPROVAL_THRESHOLD
    context["threshold_currency"] = settings.DEPOSIT_REFUND_APPROVAL_CURRENCY
    return render(request, "payments/deposit/reject.html", context, status=status)


@step_up_required
def _reject(request: HttpRequest, deposit: Deposit) -> HttpResponse:
    form = RefundForm(request.POST, deposit=deposit)
    if not form.is_valid():
        return _reject_page(request, deposit, form, status=422)
    try:
        with transaction.atomic():
            refund = refunds.deposit_refund_request(
                deposit=deposit,
                amount=form.cleaned_data["amount"],
                reason_code=form.cleaned_data["reason"],
                reason_text=form.cleaned_data["reason_text"],
                by=request.user,
            )
            tasks.deposit_refund_enqueue(refund)  # sent after this commits
    except refunds.RefundError as exc:
        form.add_error(None, str(exc))
        deposit.refresh_from_db()
        return _reject_page(request, deposit, form, status=409)
    return redirect("payments:deposit", flashfx_id=deposit.flashfx_id)
