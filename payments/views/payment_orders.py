"""International payments (/payments/): the list, a new payment with its live quote, one payment
with the maker's quote, a fresh quote for its approvers, its approvals and its timeline.

Views parse and render; services/payment_orders.py decides. Creating, approving and declining
need a fresh step-up code, as for payouts. The quote a maker saw is kept in the session under a
token the quote fragment carries in the form, so what is saved as the maker's quote is the one
on their screen, never numbers the browser sent; an expired or mismatched one is replaced by a
fresh one and the form comes back to be checked again (docs/flashfx.md §5.26: a quote holds
120 s, an approval takes longer, so the approval binds the amounts, not the rate).

One payment's page polls its status section while anything is in flight (the same view answers
an htmx request with that section, and the timeline as an out-of-band swap); the approver's
fresh quote is its own section, asked for again by the same view when it expires.
"""

from __future__ import annotations

import dataclasses
import secrets
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import permission_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.views.decorators.http import require_http_methods, require_POST, require_safe
from django.views.decorators.vary import vary_on_headers

from backoffice.http import is_fragment_request
from backoffice.middleware import page_redirect, url_with_next
from backoffice.stepup import needs_step_up, step_up_required

from .. import tasks
from ..forms.payment_orders import PaymentOrderForm, QuoteInputsForm, bank_details_words
from ..models import Payment, PaymentOrder
from ..selectors import payment_orders as selectors
from ..selectors.payouts import recipient_flags
from ..services import approvals
from ..services import payment_orders as orders
from ..services.payout_policy import payout_policy
from .payouts import decide

VIEW_PERMISSION = "payments.view_payment"
DECISIONS = ("approve", "decline")
State = PaymentOrder.State
IN_FLIGHT = (State.AWAITING_APPROVAL, State.APPROVED, State.SUBMITTING)
QUOTES_KEY = "payment_quotes"  # session: token -> the quote a maker was shown
QUOTES_KEPT = 8
DRAFT_KEY = "payment_draft"  # session: the form a step-up interrupted
FRESH_QUOTE_TARGET = "payment-fresh-quote"
QUOTE_INPUTS = "#id_recipient, #id_from_currency, #id_size, #id_size_side"


# --- The quote a maker saw, kept in the session ----------------------------------------------


def _to_session(quote: Any) -> dict[str, list[str]]:
    """A QuoteView as JSON the session can hold: each field with its kind."""
    out = {}
    for field in dataclasses.fields(quote):
        value = getattr(quote, field.name)
        if isinstance(value, Decimal):
            out[field.name] = ["d", str(value)]
        elif isinstance(value, datetime):
            out[field.name] = ["t", value.isoformat()]
        elif value is None:
            out[field.name] = ["n", ""]
        else:
            out[field.name] = ["s", str(value)]
    return out


def _from_session(stored: dict[str, list[str]]) -> Any:
    kinds = {"d": Decimal, "t": parse_datetime, "n": lambda _: None, "s": str}
    return orders.QuoteView(**{name: kinds[kind](raw) for name, (kind, raw) in stored.items()})


def _remember_quote(request: HttpRequest, quote: Any) -> str:
    token = secrets.token_urlsafe(12)
    kept = dict(list(request.session.get(QUOTES_KEY, {}).items())[-(QUOTES_KEPT - 1) :])
    kept[token] = _to_session(quote)
    request.session[QUOTES_KEY] = kept
    return token


def _recall_quote(request: HttpRequest, token: str, data: dict[str, Any]) -> Any | None:
    """The quote shown under this token, if it is still live and for exactly these inputs."""
    stored = request.session.get(QUOTES_KEY, {}).get(token or "")
    if stored is None:
        return None
    try:
        quote = _from_session(stored)
    except (TypeError, ValueError, ArithmeticError):
        return None
    asked = (data["from_currency"], data["to_currency"], data["size"], data["size_currency"])
    if (quote.from_currency, quote.to_currency, quote.size, quote.size_currency) != asked:
        return None
    return None if quote.expired() else quote


def _ask_quote(data: dict[str, Any]) -> Any:
    return orders.quote_for(
        from_currency=data["from_currency"],
        to_currency=data["to_currency"],
        size=data["size"],
        size_currency=data["size_currency"],
    )


def _seconds_left(quote: Any) -> int:
    if quote is None or quote.expires_at is None:
        return 0
    return max(0, int((quote.expires_at - timezone.now()).total_seconds()))


# --- The list ---------------------------------------------------------------------------------


@require_safe
@permission_required(VIEW_PERMISSION, raise_exception=True)
def payment_list(request: HttpRequest) -> HttpResponse:
    state = selectors.payment_order_list_filters(request.GET)["state"]
    page = selectors.payment_order_list(state=state, after=request.GET.get("after", ""))
    context = {
        "page": page,
        "state": state,
        "states": PaymentOrder.State.choices,
        "may_create": request.user.has_perm(orders.CREATE_PERMISSION),
    }
    return render(request, "payments/payment_orders/list.html", context)


# --- New, with its live quote -----------------------------------------------------------------


def _form_page(
    request: HttpRequest,
    form: PaymentOrderForm,
    *,
    quote: Any = None,
    quote_error: str = "",
    status: int = 200,
) -> HttpResponse:
    token = _remember_quote(request, quote) if quote is not None else ""
    context = {
        "form": form,
        "quote": quote,
        "quote_token": token,
        "quote_error": quote_error,
        "quote_seconds": _seconds_left(quote),
        "quote_inputs": QUOTE_INPUTS,
        "policy": payout_policy().describe(),
    }
    return render(request, "payments/payment_orders/form.html", context, status=status)


def _add_error(form: PaymentOrderForm, exc: orders.PaymentOrderError) -> None:
    form.add_error(exc.field if exc.field in form.fields else None, str(exc))


@require_http_methods(["GET", "HEAD", "POST"])
@permission_required(orders.CREATE_PERMISSION, raise_exception=True)
def payment_new(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        if needs_step_up(request):
            # Keep what was typed: after the code, the form comes back filled in (not sent).
            request.session[DRAFT_KEY] = {
                k: v for k, v in request.POST.items() if k != "csrfmiddlewaretoken"
            }
            return page_redirect(request, url_with_next("step-up", reverse("payments:payment-new")))
        return _create(request)
    draft = request.session.pop(DRAFT_KEY, None)
    if draft:
        messages.info(request, "Check the payment and its quote, then submit it again.")
        form = PaymentOrderForm(draft)
        return _form_page(request, form, **_quote_for_form(form))
    return _form_page(request, PaymentOrderForm())


def _quote_for_form(form: QuoteInputsForm) -> dict[str, Any]:
    """A quote for the inputs on the form, or why there is none (nothing when incomplete)."""
    if not form.is_valid():
        return {}
    try:
        return {"quote": _ask_quote(form.cleaned_data)}
    except orders.PaymentOrderError as exc:
        return {"quote_error": str(exc)}


@step_up_required
def _create(request: HttpRequest) -> HttpResponse:
    form = PaymentOrderForm(request.POST)
    if not form.is_valid():
        return _form_page(
            request, form, **_quote_for_form(QuoteInputsForm(request.POST)), status=422
        )
    data = form.cleaned_data
    quote = _recall_quote(request, data["quote_token"], data)
    if quote is None:
        form.add_error(
            None,
            "The quote you saw has expired or was for other amounts: here is a fresh one. "
            "Check it, then submit again.",
        )
        return _form_page(
            request, form, **_quote_for_form(QuoteInputsForm(request.POST)), status=422
        )
    try:
        order = orders.payment_order_create(
            by=request.user,
            sender=data["sender"],
            recipient=data["recipient"],
            sub_client=data["sub_client"],
            from_currency=data["from_currency"],
            to_currency=data["to_currency"],
            size=data["size"],
            size_currency=data["size_currency"],
            reason=data["reason"],
            source_of_funds=data["source_of_funds"],
            reference=data["reference"],
            quote=quote,
        )
    except orders.PaymentOrderError as exc:
        _add_error(form, exc)
        return _form_page(request, form, quote=quote, status=422)
    messages.success(request, f"Payment {order.code} waits for approval.")
    return redirect(order)


@require_safe
@permission_required(orders.CREATE_PERMISSION, raise_exception=True)
@vary_on_headers("HX-Request")
def payment_quote(request: HttpRequest) -> HttpResponse:
    """The live quote for the inputs in the query: the fragment for htmx (as they change, and
    when the quote expires), the whole form page filled with them otherwise."""
    inputs = QuoteInputsForm(request.GET)
    found = _quote_for_form(inputs)
    if not is_fragment_request(request):
        return _form_page(request, PaymentOrderForm(initial=request.GET.dict()), **found)
    quote = found.get("quote")
    context = {
        "quote": quote,
        "quote_token": _remember_quote(request, quote) if quote is not None else "",
        "quote_error": found.get("quote_error", ""),
        "quote_seconds": _seconds_left(quote),
        "quote_inputs": QUOTE_INPUTS,
        "input_errors": [e for errors in inputs.errors.values() for e in errors]
        if inputs.is_bound and request.GET.get("size")
        else [],
    }
    return render(request, "payments/payment_orders/_quote.html", context)


# --- One payment ------------------------------------------------------------------------------


def _in_flight(order: PaymentOrder) -> bool:
    if order.state in IN_FLIGHT:
        return True
    payment = order.payment
    return order.state == PaymentOrder.State.SUBMITTED and (
        payment is None or payment.flashfx_status not in Payment.FINAL
    )


def _settled_rate(payment: Payment | None) -> Decimal | None:
    """The rate FlashFX gave, from the amounts it reports (they may change while OPEN)."""
    if payment is None or not payment.from_amount or payment.to_amount is None:
        return None
    return (payment.to_amount / payment.from_amount).quantize(Decimal("0.000001"))


def _fresh_quote(order: PaymentOrder) -> dict[str, Any]:
    """What an approver weighs: a quote now for the same amounts, and how it differs."""
    try:
        fresh = orders.order_quote(order)
    except orders.PaymentOrderError as exc:
        return {"fresh_error": str(exc)}
    return {
        "fresh": fresh,
        "difference": orders.quote_difference(order, fresh),
        "fresh_seconds": _seconds_left(fresh),
    }


def _detail_context(request: HttpRequest, order: PaymentOrder) -> dict[str, Any]:
    user = request.user
    blocker = orders.approval_blocker(order, user)
    awaiting = order.state == PaymentOrder.State.AWAITING_APPROVAL
    approval = order.approval
    return {
        "order": order,
        "payment": order.payment,
        "approval": approval,
        "signers": approvals.approval_signers(approval) if approval else [],
        "timeline": selectors.payment_order_timeline(order=order),
        "poll_seconds": settings.PAYOUT_PAGE_POLL_SECONDS if _in_flight(order) else 0,
        "is_maker": order.created_by_id == user.pk,
        "may_decide": blocker is None,
        "decide_blocker": blocker
        if user.has_perm(orders.APPROVE_PERMISSION) and awaiting
        else None,
        "may_cancel": order.created_by_id == user.pk
        and awaiting
        and user.has_perm(orders.CREATE_PERMISSION),
        "bank_details": bank_details_words(order.recipient),
        "settled_rate": _settled_rate(order.payment),
        "fresh_target": FRESH_QUOTE_TARGET,
        **recipient_flags(order.recipient),
    }


@require_safe
@permission_required(VIEW_PERMISSION, raise_exception=True)
@vary_on_headers("HX-Request", "HX-Target")
def payment_detail(request: HttpRequest, code: str) -> HttpResponse:
    """Everything about one payment; an htmx request gets its status section (the poll) or,
    for an approver, a fresh quote (asked for again as each expires)."""
    order = selectors.payment_order_get(code=code)
    if order is None:
        raise Http404("No such payment.")
    context = _detail_context(request, order)
    fragment = is_fragment_request(request)
    if fragment and request.htmx.target == FRESH_QUOTE_TARGET:
        if context["may_decide"]:
            context.update(_fresh_quote(order))
        return render(request, "payments/payment_orders/_fresh_quote.html", context)
    if fragment:
        return render(request, "payments/payment_orders/_poll.html", context)
    if context["may_decide"]:
        context.update(_fresh_quote(order))
    return render(request, "payments/payment_orders/detail.html", context)


@require_POST
@permission_required(orders.APPROVE_PERMISSION, raise_exception=True)
@step_up_required
def payment_decide(request: HttpRequest, code: str, decision: str) -> HttpResponse:
    """Approve or decline (fresh step-up). Never its maker: refused before anything is read."""
    if decision not in DECISIONS:
        raise Http404("No such decision.")
    order = get_object_or_404(PaymentOrder, code=code)
    return decide(
        request,
        order,
        decision,
        noun="payment",
        maker_id=order.created_by_id,
        approve=lambda o, by: orders.payment_order_approve(order=o, by=by),
        decline=lambda o, by, note: orders.payment_order_decline(order=o, by=by, note=note),
        enqueue=tasks.payment_order_enqueue,  # sent after commit, if this was the last one
        refused=orders.PaymentOrderError,
    )


@require_POST
@permission_required(orders.CREATE_PERMISSION, raise_exception=True)
def payment_cancel(request: HttpRequest, code: str) -> HttpResponse:
    """Its maker withdraws it while it awaits approval."""
    order = get_object_or_404(PaymentOrder, code=code)
    try:
        orders.payment_order_cancel(order=order, by=request.user)
    except orders.PaymentOrderError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"Payment {order.code} withdrawn.")
    return redirect(order)
