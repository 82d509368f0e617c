"""Expected payments (/deposits/expected/) and a deposit's near matches, confirmed or refused.

The page lists what is overdue (highlighted), what is still to come, the proposals waiting for a
person and what was matched; the same URL takes one expected payment by POST, and
/deposits/expected/upload/ a CSV file of them. Matching itself is in
payments/services/matching.py.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import permission_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.dateparse import parse_date
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods, require_POST
from django.views.decorators.vary import vary_on_headers

from backoffice.http import is_fragment_request

from ..forms.expected import ExpectedPaymentForm, ExpectedPaymentUploadForm
from ..models import Deposit, ExpectedPayment, MatchProposal
from ..selectors import expected as selectors
from ..services.matching import (
    MatchError,
    expected_payment_remove,
    expected_payments_record,
    match_proposal_confirm,
    match_proposal_refuse,
)
from ..templatetags.matching import panel_context

ADD = "payments.add_expectedpayment"
REMOVE = "payments.delete_expectedpayment"
DECISIONS = {"confirm": match_proposal_confirm, "refuse": match_proposal_refuse}


def _date(value: str) -> date | None:
    try:
        return parse_date(value.strip()) if value.strip() else None
    except ValueError:  # well formed but no such day (2026-02-30)
        return None


def _filters(request: HttpRequest) -> dict[str, Any]:
    return {
        "q": request.GET.get("q", "").strip()[:100],
        "due_from": _date(request.GET.get("due_from", "")),
        "due_to": _date(request.GET.get("due_to", "")),
    }


def _lists(request: HttpRequest, filters: dict[str, Any]) -> dict[str, Any]:
    size = selectors.PAGE

    def rows(state: str) -> tuple[list[ExpectedPayment], bool]:
        found = list(selectors.expected_payment_list(state=state, **filters)[: size + 1])
        return found[:size], len(found) > size

    overdue, overdue_more = rows("overdue")
    upcoming, upcoming_more = rows("upcoming")
    matched, matched_more = rows("matched")
    return {
        "overdue": overdue,
        "overdue_more": overdue_more,
        "upcoming": upcoming,
        "upcoming_more": upcoming_more,
        "matched": matched,
        "matched_more": matched_more,
        "proposals": list(selectors.proposals_awaiting()[:size]),
        "may_decide": request.user.has_perm("payments.review_deposit"),
        "may_remove": request.user.has_perm(REMOVE),
        "filters": filters,
        "page_size": size,
        "today": selectors.today(),
    }


def _page(
    request: HttpRequest,
    *,
    form: ExpectedPaymentForm | None = None,
    upload_form: ExpectedPaymentUploadForm | None = None,
) -> HttpResponse:
    """The page; with a form that failed, that form and its errors (200, as Django re-renders
    a form: the browser shows it like any page, and htmx would swap it)."""
    filters = _filters(request)
    context = _lists(request, filters)
    if is_fragment_request(request) and request.method == "GET":  # the filter form's swap
        return render(request, "payments/expected/_lists.html", context)
    context |= {
        "may_add": request.user.has_perm(ADD),
        "form": form or ExpectedPaymentForm(),
        "upload_form": upload_form or ExpectedPaymentUploadForm(),
    }
    return render(request, "payments/expected/list.html", context)


@require_http_methods(["GET", "HEAD", "POST"])
@permission_required("payments.view_expectedpayment", raise_exception=True)
@vary_on_headers("HX-Request")
def expected_list(request: HttpRequest) -> HttpResponse:
    """The page; a POST records one expected payment (payments.add_expectedpayment)."""
    if request.method != "POST":
        return _page(request)
    if not request.user.has_perm(ADD):
        raise PermissionDenied
    form = ExpectedPaymentForm(request.POST)
    if form.is_valid():
        try:
            (created,) = expected_payments_record([form.row()], by=request.user)
        except MatchError as exc:
            form.add_error(None, str(exc))
        else:
            note = " It matched a deposit already here." if created.deposit_id else ""
            messages.success(
                request, f"Recorded the expected payment from {created.payer_name}.{note}"
            )
            return redirect("payments:expected")
    return _page(request, form=form)


@require_POST
@permission_required(ADD, raise_exception=True)
def expected_upload(request: HttpRequest) -> HttpResponse:
    """A CSV file of expected payments: all recorded, or none and every bad line told."""
    upload_form = ExpectedPaymentUploadForm(request.POST, request.FILES)
    if upload_form.is_valid():
        try:
            created = expected_payments_record(
                upload_form.rows, by=request.user, source=ExpectedPayment.Source.CSV
            )
        except MatchError as exc:
            upload_form.add_error(None, str(exc))
        else:
            matched = sum(1 for e in created if e.deposit_id)
            messages.success(
                request,
                f"Recorded {len(created)} expected payment{'s' if len(created) != 1 else ''} "
                f"from {upload_form.cleaned_data['file'].name}; {matched} matched a deposit "
                "already here.",
            )
            return redirect("payments:expected")
    return _page(request, upload_form=upload_form)


@require_POST
@permission_required(REMOVE, raise_exception=True)
def expected_remove(request: HttpRequest, code: str) -> HttpResponse:
    """Remove an unmatched expected payment entered by mistake (the audit trail keeps it)."""
    expected = get_object_or_404(ExpectedPayment, code=code)
    try:
        expected_payment_remove(expected=expected, by=request.user)
    except MatchError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(
            request,
            f"Removed the expected payment from {expected.payer_name} "
            f"({expected.currency} {expected.amount}, due {expected.due_on:%d %b %Y}).",
        )
    return redirect("payments:expected")


@require_POST
@permission_required("payments.review_deposit", raise_exception=True)
@vary_on_headers("HX-Request")
def match_decide(
    request: HttpRequest, flashfx_id: str, proposal_id: int, decision: str
) -> HttpResponse:
    """Confirm or refuse a near match; htmx gets the match panel back, a form post the deposit
    page (or the page it came from, `next`, when that is one of ours)."""
    deposit = get_object_or_404(Deposit.objects.flashfx_id(flashfx_id))
    proposal = get_object_or_404(MatchProposal, pk=proposal_id, deposit=deposit)
    decide = DECISIONS.get(decision)
    if decide is None:
        raise Http404("No such decision.")
    error = ""
    try:
        decide(proposal=proposal, by=request.user)
    except MatchError as exc:
        error = str(exc)
    deposit.refresh_from_db()
    if is_fragment_request(request):
        context = panel_context(deposit=deposit, user=request.user, error=error)
        return render(request, "payments/deposit/_match_response.html", context)
    if error:
        messages.error(request, error)
    elif decision == "confirm":
        messages.success(request, "Match confirmed: the deposit is matched.")
    else:
        messages.success(request, "Match refused: it will not be proposed again.")
    back = request.POST.get("next", "")
    if back and url_has_allowed_host_and_scheme(
        back, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return redirect(back)  # decided from the expected-payments page: back to it
    return redirect("payments:deposit", flashfx_id=deposit.flashfx_id)
