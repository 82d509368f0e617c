"""Payouts (/payouts/): the list, a new payout, one payout with its approvals and timeline,
editing while it awaits approval, and "Waiting for my approval" with bulk approve.

Views parse and render; services/payouts.py decides. Money actions (create, approve, decline,
send again) need a fresh step-up code. One payout's page polls its status section while
anything is in flight: the same view answers an htmx request with that section, and the
timeline as an out-of-band swap.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import permission_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST, require_safe
from django.views.decorators.vary import vary_on_headers

from backoffice.http import is_fragment_request
from backoffice.stepup import step_up_required

from .. import tasks
from ..forms.payouts import PayoutForm
from ..models import Payout, Withdrawal
from ..selectors import payouts as selectors
from ..services import payouts
from ..services.payout_policy import payout_policy

VIEW_PERMISSION = "payments.view_withdrawal"
DECISIONS = ("approve", "decline")
# FlashFX statuses after which nothing more is expected (§3.3.3); CONFIRMED may still turn
# into a bank return days later, so a page watches it a while, not for days.
FINAL = Withdrawal.FINAL
WATCH_CONFIRMED = timedelta(minutes=10)


def _in_flight(payout: Payout) -> bool:
    if payout.state in (Payout.State.AWAITING_APPROVAL, *payouts.IN_FLIGHT):
        return True
    w = payout.withdrawal
    if payout.state != Payout.State.SUBMITTED or w is None:
        return False
    if w.flashfx_status in FINAL:
        return False
    return w.flashfx_status != "CONFIRMED" or w.updated_at > timezone.now() - WATCH_CONFIRMED


# --- The list ---------------------------------------------------------------------------------


@require_safe
@permission_required(VIEW_PERMISSION, raise_exception=True)
def payout_list(request: HttpRequest) -> HttpResponse:
    filters = selectors.payout_list_filters(request.GET)
    state, status = filters["state"], filters["flashfx_status"]
    page = selectors.payout_list(**filters, after=request.GET.get("after", ""))
    context = {
        "page": page,
        "state": state,
        "status": status,
        "states": Payout.State.choices,
        "statuses": list(Withdrawal.STATUS_ORDER.ranks),
        "may_create": request.user.has_perm(payouts.CREATE_PERMISSION),
        "may_approve": request.user.has_perm(payouts.APPROVE_PERMISSION),
    }
    return render(request, "payments/payouts/list.html", context)


# --- New, and edit ----------------------------------------------------------------------------


def _form_page(
    request: HttpRequest, form: PayoutForm, *, payout: Payout | None = None, status: int = 200
) -> HttpResponse:
    context = {
        "form": form,
        "payout": payout,
        "balance": selectors.cleared_balance("AUD"),
        "policy": payout_policy().describe(),
    }
    return render(request, "payments/payouts/form.html", context, status=status)


def _add_error(form: PayoutForm, exc: payouts.PayoutError) -> None:
    form.add_error(exc.field if exc.field in form.fields else None, str(exc))


@require_http_methods(["GET", "HEAD", "POST"])
@permission_required(payouts.CREATE_PERMISSION, raise_exception=True)
def payout_new(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        return _create(request)
    return _form_page(request, PayoutForm())


@step_up_required
def _create(request: HttpRequest) -> HttpResponse:
    form = PayoutForm(request.POST)
    if not form.is_valid():
        return _form_page(request, form, status=422)
    data = form.cleaned_data
    try:
        payout = payouts.payout_create(
            by=request.user,
            recipient=data["recipient"],
            sender=data["sender"],
            sub_client=data["sub_client"],
            amount=data["amount"],
            currency=data["currency"],
            reference=data["reference"],
            reason=data["reason"],
        )
    except payouts.PayoutError as exc:
        _add_error(form, exc)
        return _form_page(request, form, status=422)
    messages.success(request, f"Payout {payout.code} waits for approval.")
    return redirect(payout)


@require_http_methods(["GET", "HEAD", "POST"])
@permission_required(payouts.CREATE_PERMISSION, raise_exception=True)
def payout_edit(request: HttpRequest, code: str) -> HttpResponse:
    """Its maker changes it while it awaits approval; the approvals so far are voided."""
    payout = get_object_or_404(Payout, code=code)
    if payout.maker_id != request.user.pk:
        raise PermissionDenied("Only the member who started this payout can change it.")
    if payout.state != Payout.State.AWAITING_APPROVAL:
        messages.error(request, "Only a payout awaiting approval can be changed.")
        return redirect(payout)
    if request.method != "POST":
        return _form_page(request, PayoutForm(initial=PayoutForm.initial_of(payout)), payout=payout)
    return _edit(request, payout)


@step_up_required
def _edit(request: HttpRequest, payout: Payout) -> HttpResponse:
    form = PayoutForm(request.POST)
    if not form.is_valid():
        return _form_page(request, form, payout=payout, status=422)
    data = form.cleaned_data
    try:
        payout = payouts.payout_edit(
            payout=payout,
            by=request.user,
            recipient=data["recipient"],
            sender=data["sender"],
            sub_client=data["sub_client"],
            amount=data["amount"],
            reference=data["reference"],
            reason=data["reason"],
        )
    except payouts.PayoutError as exc:
        _add_error(form, exc)
        return _form_page(request, form, payout=payout, status=422)
    messages.success(request, f"Payout {payout.code} changed; it waits for approval again.")
    return redirect(payout)


@require_POST
@permission_required(payouts.CREATE_PERMISSION, raise_exception=True)
def payout_cancel(request: HttpRequest, code: str) -> HttpResponse:
    payout = get_object_or_404(Payout, code=code)
    try:
        payouts.payout_cancel(payout=payout, by=request.user)
    except payouts.PayoutError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"Payout {payout.code} withdrawn.")
    return redirect(payout)


@require_POST
@permission_required(payouts.CREATE_PERMISSION, raise_exception=True)
@step_up_required
def payout_send_again(request: HttpRequest, code: str) -> HttpResponse:
    payout = get_object_or_404(Payout, code=code)
    try:
        again = payouts.payout_send_again(payout=payout, by=request.user)
    except payouts.PayoutError as exc:
        messages.error(request, str(exc))
        return redirect(payout)
    messages.success(request, f"Sent again as {again.code}; it waits for approval.")
    return redirect(again)


# --- One payout -------------------------------------------------------------------------------


def _detail_context(request: HttpRequest, payout: Payout) -> dict:
    user = request.user
    approval = payout.approval
    in_flight = _in_flight(payout)
    blocker = payouts.approval_blocker(payout, user)
    return {
        "payout": payout,
        "withdrawal": payout.withdrawal,
        "approval": approval,
        "signers": payouts.approvals.approval_signers(approval) if approval else [],
        "timeline": selectors.payout_timeline(payout=payout),
        "poll_seconds": settings.PAYOUT_PAGE_POLL_SECONDS if in_flight else 0,
        "is_maker": payout.maker_id == user.pk,
        "may_decide": blocker is None,
        "decide_blocker": blocker
        if user.has_perm(payouts.APPROVE_PERMISSION)
        and payout.state == Payout.State.AWAITING_APPROVAL
        else None,
        "may_edit": payout.maker_id == user.pk
        and payout.state == Payout.State.AWAITING_APPROVAL
        and user.has_perm(payouts.CREATE_PERMISSION),
        "may_send_again": payouts.resend_allowed(payout)
        and not payout.resent_as.exists()
        and user.has_perm(payouts.CREATE_PERMISSION),
        "problem": payout.withdrawal is not None
        and payout.withdrawal.flashfx_status in payouts.PROBLEM_STATUSES,
        "payload": payouts.payout_payload(payout),
        **selectors.recipient_flags(payout.recipient),
    }


@require_safe
@permission_required(VIEW_PERMISSION, raise_exception=True)
@vary_on_headers("HX-Request")
def payout_detail(request: HttpRequest, code: str) -> HttpResponse:
    """Everything about one payout; an htmx request gets its status section alone."""
    payout = selectors.payout_get(code=code)
    if payout is None:
        raise Http404("No such payout.")
    context = _detail_context(request, payout)
    if is_fragment_request(request):
        return render(request, "payments/payouts/_poll.html", context)
    return render(request, "payments/payouts/detail.html", context)


@require_POST
@permission_required(payouts.APPROVE_PERMISSION, raise_exception=True)
@step_up_required
def payout_decide(request: HttpRequest, code: str, decision: str) -> HttpResponse:
    """Approve or decline (fresh step-up). Never its maker: refused before anything is read."""
    if decision not in DECISIONS:
        raise Http404("No such decision.")
    payout = get_object_or_404(Payout, code=code)
    return decide(
        request,
        payout,
        decision,
        noun="payout",
        maker_id=payout.maker_id,
        approve=lambda p, by: payouts.payout_approve(payout=p, by=by),
        decline=lambda p, by, note: payouts.payout_decline(payout=p, by=by, note=note),
        enqueue=tasks.payout_enqueue,  # sent after commit, when this was the last signature
        refused=payouts.PayoutError,
    )


def decide(
    request: HttpRequest,
    item: Any,
    decision: str,
    *,
    noun: str,
    maker_id: int,
    approve: Callable[[Any, Any], Any],
    decline: Callable[[Any, Any, str], Any],
    enqueue: Callable[[Any], None],
    refused: type[Exception],
) -> HttpResponse:
    """Approve (then enqueue the send) or decline a payout or a payment order, and say what it
    did. Never its maker: refused before anything is done."""
    if maker_id == request.user.pk:
        raise PermissionDenied(f"You started this {noun}; other members must approve it.")
    try:
        if decision == "approve":
            item = approve(item, request.user)
            enqueue(item)
        else:
            item = decline(item, request.user, request.POST.get("note", "")[:500])
    except refused as exc:
        messages.error(request, str(exc))
    else:
        say_decided(request, item, decision, noun=noun)
    return redirect(item)


def say_decided(request: HttpRequest, item: Payout | Any, decision: str, *, noun: str) -> None:
    """What a decision did, for a payout or a payment order (same workflow states)."""
    if decision == "decline":
        messages.success(request, f"Declined: {noun} {item.code}.")
    elif item.state == Payout.State.AWAITING_APPROVAL:
        messages.success(request, f"Approved: {noun} {item.code} waits for another member.")
    else:
        messages.success(request, f"Approved: {noun} {item.code} is being sent.")


# --- Waiting for my approval ------------------------------------------------------------------


@require_safe
@permission_required(payouts.APPROVE_PERMISSION, raise_exception=True)
def payouts_waiting(request: HttpRequest) -> HttpResponse:
    waiting = list(selectors.payouts_waiting_for(user=request.user))
    for payout in waiting:
        flags = selectors.recipient_flags(payout.recipient)
        payout.cooling_until, payout.payee_check = flags["cooling_until"], flags["payee_check"]
    return render(request, "payments/payouts/waiting.html", {"waiting": waiting})


@require_POST
@permission_required(payouts.APPROVE_PERMISSION, raise_exception=True)
@step_up_required
def payouts_approve_selected(request: HttpRequest) -> HttpResponse:
    """Approve the ticked payouts, each only if this member may approve it on its own."""
    codes = request.POST.getlist("code")[:200]
    if not codes:
        messages.error(request, "Tick the payouts to approve.")
        return redirect("payments:payouts-waiting")
    done, refused = payouts.payouts_approve_bulk(codes=codes, by=request.user)
    for payout in done:
        tasks.payout_enqueue(payout)
    if done:
        messages.success(request, f"Approved {len(done)}: {', '.join(p.code for p in done)}.")
    for reason in refused:
        messages.error(request, f"Not approved: {reason}")
    return redirect("payments:payouts-waiting")
