"""Maker-checker (/approvals/): what waits for a second member, and their decision."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import permission_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST, require_safe

from backoffice.stepup import step_up_required

from .. import tasks
from ..models import Approval
from ..selectors import approvals as selectors
from ..services import approvals

DECISIONS = ("approve", "decline")


@require_safe
@permission_required("payments.view_approval", raise_exception=True)
def approval_list(request: HttpRequest) -> HttpResponse:
    pending = list(selectors.approvals_pending())
    for approval in pending:
        approval.may_decide = selectors.approval_can_decide(approval=approval, user=request.user)
        approval.is_mine = approval.requested_by_id == request.user.pk
    context = {"pending": pending, "decided": selectors.approvals_decided()}
    return render(request, "payments/approvals/list.html", context)


@require_POST
@permission_required("payments.view_approval", raise_exception=True)
@step_up_required
def approval_decide(request: HttpRequest, code: str, decision: str) -> HttpResponse:
    """Approve or decline (POST, fresh step-up); the action's follow-up is enqueued after
    commit. A refusal (self-approval, expired, decided meanwhile) is a message on the list."""
    if decision not in DECISIONS:
        raise Http404("No such decision.")
    approval = get_object_or_404(Approval, code=code)
    if not request.user.has_perm(approval.permission):
        raise PermissionDenied("You do not have the permission this approval needs.")
    # No transaction around this: an expiry found while deciding must commit even though the
    # decision is refused (each service step commits on its own).
    try:
        if decision == "approve":
            approvals.approval_approve(approval=approval, by=request.user)
            tasks.approval_enqueue(approval)  # the refund goes out (after commit)
        else:
            note = request.POST.get("note", "")[:500]
            approvals.approval_decline(approval=approval, by=request.user, note=note)
    except approvals.ApprovalError as exc:
        messages.error(request, str(exc))
    else:
        verb = "Approved" if decision == "approve" else "Declined"
        messages.success(request, f"{verb}: {approval.summary}")
    return redirect("payments:approvals")
