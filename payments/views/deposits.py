"""The deposit queue (/deposits/), its "N new" poll, bulk accept, and the review actions."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import permission_required
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST, require_safe
from django.views.decorators.vary import vary_on_headers

from backoffice.http import filter_query, is_fragment_request, safe_next

from ..forms.deposits import DepositQueueForm
from ..models import Deposit
from ..selectors.deposits import (
    NEW_CAP,
    InvalidCursor,
    QueueFilters,
    deposit_queue_new_count,
    deposit_queue_page,
)
from ..services import review
from ..templatetags.deposit_review import review_panel_context

FILTER_KEYS = tuple(DepositQueueForm.base_fields)


@require_safe
@permission_required("payments.view_deposit", raise_exception=True)
@vary_on_headers("HX-Request")
def deposit_queue(request: HttpRequest) -> HttpResponse:
    form = DepositQueueForm(request.GET or None)
    page = None
    if not request.GET or form.is_valid():
        filters = form.filters(user_id=request.user.pk) if form.is_bound else QueueFilters()
        try:
            page = deposit_queue_page(filters, cursor=request.GET.get("cursor", ""))
        except InvalidCursor:
            messages.warning(request, "That page link was not valid; here is the first page.")
            page = deposit_queue_page(filters)
    context = {
        "title": "Deposits",
        "form": form,
        "page": page,
        "filter_query": filter_query(request, FILTER_KEYS),
        "poll_seconds": settings.DEPOSIT_QUEUE_POLL_SECONDS,
        "new_count": 0,
        "since": page.newest_id if page else 0,
        "can_review": request.user.has_perm("payments.review_deposit"),
    }
    context["fragment"] = is_fragment_request(request)  # the list alone, with its messages
    template = "payments/deposits/_queue.html" if context["fragment"] else None
    return render(request, template or "payments/deposits/queue.html", context)


@require_safe
@permission_required("payments.view_deposit", raise_exception=True)
def deposit_queue_new(request: HttpRequest) -> HttpResponse:
    """The "N new" marker: deposits the same filters select, mirrored after `since` (an id)."""
    form = DepositQueueForm(request.GET)
    since = request.GET.get("since", "")
    if not since:  # nothing seen yet: from now on
        since = str(Deposit.objects.order_by("-id").values_list("id", flat=True).first() or 0)
    if not (since.isascii() and since.isdigit() and len(since) <= 18) or not form.is_valid():
        return HttpResponseBadRequest("The filters or `since` are not valid.")
    count = deposit_queue_new_count(form.filters(user_id=request.user.pk), since=int(since))
    context = {
        "new_count": count,
        "new_label": f"{NEW_CAP}+" if count > NEW_CAP else str(count),
        "since": since,
        "filter_query": filter_query(request, FILTER_KEYS),
        "poll_seconds": settings.DEPOSIT_QUEUE_POLL_SECONDS,
    }
    return render(request, "payments/deposits/_new.html", context)


@require_POST
@permission_required("payments.review_deposit", raise_exception=True)
def deposits_accept(request: HttpRequest) -> HttpResponse:
    ids = request.POST.getlist("deposit")
    back = safe_next(request, reverse("payments:deposits"))
    if not ids:
        messages.error(request, "Select at least one deposit to accept.")
        return redirect(back)
    result = review.deposits_accept_many(flashfx_ids=ids, actor=request.user)
    if result.accepted:
        n = len(result.accepted)
        messages.success(request, f"Accepted {n} deposit{'s' if n != 1 else ''}.")
    for flashfx_id, why in result.skipped:
        messages.warning(request, f"Skipped {flashfx_id}: {why}")
    return redirect(back)


ACTIONS = ("assign", "unassign", "note", "accept", "flag")


@require_POST
@permission_required("payments.review_deposit", raise_exception=True)
def deposit_review(request: HttpRequest, flashfx_id: str, action: str) -> HttpResponse:
    deposit = get_object_or_404(Deposit.objects.flashfx_id(flashfx_id))
    if action not in ACTIONS:
        return HttpResponseBadRequest(
            f"Unknown review action {action!r}: use one of {', '.join(ACTIONS)}."
        )
    error = ""
    done = ""
    try:
        if action == "assign":
            assignee = request.user
            member = request.POST.get("assignee", "")
            if member and not (member.isascii() and member.isdigit() and len(member) <= 18):
                return HttpResponseBadRequest("The assignee must be a member's id.")
            if member and member != str(request.user.pk):
                assignee = get_object_or_404(get_user_model(), pk=member, is_active=True)
            review.deposit_assign(deposit=deposit, assignee=assignee, actor=request.user)
            done = f"Assigned to {assignee.get_username()}."
        elif action == "unassign":
            review.deposit_assign(deposit=deposit, assignee=None, actor=request.user)
            done = "Nobody is assigned now."
        elif action == "note":
            review.deposit_note_add(
                deposit=deposit, text=request.POST.get("text", ""), actor=request.user
            )
            done = "Note added."
        elif action == "accept":
            review.deposit_accept(deposit=deposit, actor=request.user)
            done = "Accepted."
        else:
            review.deposit_flag(
                deposit=deposit, note=request.POST.get("text", ""), actor=request.user
            )
            done = "Flagged for a second look."
    except review.ReviewError as e:
        error = str(e)
    if is_fragment_request(request):
        deposit.refresh_from_db()
        context = review_panel_context(request, deposit, error=error, done=done)
        # 200 either way: htmx swaps only 2xx answers, and the panel shows the error.
        return render(request, "payments/deposit/_review.html", context)
    if error:
        messages.error(request, error)
    else:
        messages.success(request, done)
    return redirect(safe_next(request, reverse("payments:deposit", args=[deposit.flashfx_id])))
