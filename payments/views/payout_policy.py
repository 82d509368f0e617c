"""The payout approval policy (/payouts/policy/): the tiers in force, their history, and for
admins a change, which applies once a second admin approves it on /approvals/."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import permission_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from ..forms.payout_policy import PayoutPolicyForm
from ..models import PayoutPolicyVersion
from ..services.payout_policy import (
    PERMISSION,
    PolicyError,
    format_tiers,
    payout_policy,
    payout_policy_pending,
    payout_policy_propose,
    payout_policy_version,
)

HISTORY = 10


@require_http_methods(["GET", "HEAD", "POST"])
@permission_required("payments.view_withdrawal", raise_exception=True)
def payout_policy_page(request: HttpRequest) -> HttpResponse:
    may_change = request.user.has_perm(PERMISSION)
    policy = payout_policy()
    form = None
    if request.method == "POST":
        if not may_change:
            raise PermissionDenied
        form = PayoutPolicyForm(request.POST)
        if form.is_valid():
            try:
                payout_policy_propose(
                    tiers=form.cleaned_data["tiers"],
                    ttl_hours=form.cleaned_data["ttl_hours"],
                    by=request.user,
                )
            except PolicyError as exc:
                form.add_error(None, str(exc))
            else:
                messages.success(
                    request,
                    "Asked a second admin to approve the new policy: it applies once approved "
                    "on the Approvals page.",
                )
                return redirect("payments:payout-policy")
    elif may_change:
        form = PayoutPolicyForm(
            initial={"tiers": format_tiers(policy.tiers), "ttl_hours": int(policy.ttl_hours)}
        )
    context = {
        "policy": policy,
        "version": payout_policy_version(),
        "pending": payout_policy_pending(),
        "history": PayoutPolicyVersion.objects.select_related(
            "approval__requested_by", "approval__decided_by"
        )[:HISTORY],
        "form": form,
        "may_change": may_change,
    }
    return render(request, "payments/payouts/policy.html", context)
