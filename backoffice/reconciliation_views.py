"""/reconciliation/: the drift reports and open items, the balance proofs, a day's statement
from FlashFX beside the mirror; settling an item (re-apply FlashFX's version, or mark it
resolved with a note) with a fresh step-up code; running a reconciliation now.

Views parse and render: mirrors/selectors.py reads, backoffice/reconciliation.py acts.
"""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import permission_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST, require_safe
from django.views.decorators.vary import vary_on_headers

from mirrors import selectors
from mirrors.models import DriftItem, DriftReport, StatementLine
from mirrors.registry import registry
from mirrors.statement import statement_totals

from . import charts
from . import reconciliation as service
from .http import is_fragment_request
from .stepup import step_up_required

VIEW_PERMISSION = "mirrors.view_driftreport"
STATEMENT_PERMISSION = "mirrors.view_statementline"


class OpenItemFilterForm(forms.Form):
    entity = forms.ChoiceField(label="Entity", required=False)
    kind = forms.ChoiceField(
        label="Kind", required=False, choices=[("", "any"), *DriftItem.Kind.choices]
    )

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["entity"].choices = [("", "any")] + [(n, n) for n in registry.names()]


class ResolveForm(forms.Form):
    note = forms.CharField(
        label="What you found and did",
        widget=forms.Textarea(attrs={"rows": 3}),
        max_length=service.NOTE_MAX,
        strip=True,
    )


class ReapplyForm(forms.Form):
    note = forms.CharField(
        label="Note (optional)",
        required=False,
        max_length=service.NOTE_MAX,
        strip=True,
    )


class RunForm(forms.Form):
    days = forms.IntegerField(
        label="Days back", min_value=1, max_value=90, initial=settings.FLASHFX_RECONCILE_DAYS
    )


class StatementForm(forms.Form):
    day = forms.DateField(label="Day", widget=forms.DateInput(attrs={"type": "date"}))
    currency = forms.CharField(label="Currency", max_length=3, min_length=3, initial="AUD")

    def clean_currency(self) -> str:
        value = self.cleaned_data["currency"].upper()
        if not value.isalpha():
            raise forms.ValidationError("Three letters, e.g. AUD.")
        return value


# --- The overview -------------------------------------------------------------------------------


@require_safe
@permission_required(VIEW_PERMISSION, raise_exception=True)
@vary_on_headers("HX-Request")
def overview(request: HttpRequest) -> HttpResponse:
    """Open items one per entity (filtered), the latest reports, the balance proofs."""
    form = OpenItemFilterForm(request.GET or None)
    filters = form.cleaned_data if form.is_bound and form.is_valid() else {}
    entities = selectors.open_entities(
        entity=filters.get("entity", ""), kind=filters.get("kind", "")
    )
    context = {"form": form, "open_entities": entities, "filtered": bool(filters)}
    if is_fragment_request(request):
        return render(request, "backoffice/reconciliation/_open_items.html", context)
    history = selectors.balance_history(days=30)
    context |= {
        "reports": selectors.recent_reports(),
        "proofs": [  # (currency, its latest check, the chart of the last 30 days)
            (currency, checks[-1], charts.balance_proof_chart(currency, checks))
            for currency, checks in sorted(history.items())
        ],
        "run_form": RunForm() if request.user.has_perm(service.RUN_PERMISSION) else None,
        "statement_form": StatementForm(
            initial={"day": timezone.localdate(), "currency": "AUD"}, auto_id="statement-%s"
        ),
    }
    return render(request, "backoffice/reconciliation/overview.html", context)


@require_safe
@permission_required(VIEW_PERMISSION, raise_exception=True)
def report(request: HttpRequest, pk: int) -> HttpResponse:
    drift = get_object_or_404(DriftReport, pk=pk)
    context = {
        "report": drift,
        "items": drift.items.select_related("settled_by").order_by("entity", "flashfx_id"),
        "checks": drift.balance_checks.order_by("currency"),
    }
    return render(request, "backoffice/reconciliation/report.html", context)


@require_safe
@permission_required(VIEW_PERMISSION, raise_exception=True)
def item(request: HttpRequest, pk: int) -> HttpResponse:
    drift = get_object_or_404(DriftItem.objects.select_related("report", "settled_by"), pk=pk)
    history = (
        DriftItem.objects.filter(entity=drift.entity, flashfx_id=drift.flashfx_id)
        .select_related("report", "settled_by")
        .order_by("-id")[:50]
    )
    may_resolve = drift.is_open and request.user.has_perm(service.RESOLVE_PERMISSION)
    context = {
        "item": drift,
        "since": selectors.first_found(drift),
        "differences": [
            {"field": name, "mirror": pair[0], "flashfx": pair[1]}
            for name, pair in sorted(drift.differences.items())
        ],
        "history": history,
        "resolve_form": ResolveForm() if may_resolve else None,
        "reapply_form": ReapplyForm() if may_resolve else None,
    }
    return render(request, "backoffice/reconciliation/item.html", context)


# --- Settling an item ----------------------------------------------------------------------------


@require_POST
@permission_required(service.RESOLVE_PERMISSION, raise_exception=True)
@step_up_required
def item_reapply(request: HttpRequest, pk: int) -> HttpResponse:
    drift = get_object_or_404(DriftItem, pk=pk)
    form = ReapplyForm(request.POST)
    if not form.is_valid():
        messages.error(request, "The note is too long.")
        return redirect("reconciliation-item", pk=pk)
    try:
        settled = service.drift_item_reapply(
            item=drift, by=request.user, note=form.cleaned_data["note"], request=request
        )
    except service.ResolutionError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(
            request, f"FlashFX's version of {settled.entity} {settled.flashfx_id} re-applied."
        )
    return redirect("reconciliation-item", pk=pk)


@require_POST
@permission_required(service.RESOLVE_PERMISSION, raise_exception=True)
@step_up_required
def item_resolve(request: HttpRequest, pk: int) -> HttpResponse:
    drift = get_object_or_404(DriftItem, pk=pk)
    form = ResolveForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Say what you found and did: the note is required.")
        return redirect("reconciliation-item", pk=pk)
    try:
        settled = service.drift_item_mark_resolved(
            item=drift, by=request.user, note=form.cleaned_data["note"], request=request
        )
    except service.ResolutionError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"{settled.entity} {settled.flashfx_id} marked resolved.")
    return redirect("reconciliation-item", pk=pk)


@require_POST
@permission_required(service.RUN_PERMISSION, raise_exception=True)
def run_now(request: HttpRequest) -> HttpResponse:
    form = RunForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Reconcile between 1 and 90 days back.")
    else:
        service.reconciliation_run_now(
            by=request.user, days=form.cleaned_data["days"], request=request
        )
        messages.success(
            request,
            f"Reconciliation of the last {form.cleaned_data['days']} days queued: its report "
            "appears below when the worker has run it.",
        )
    return redirect("reconciliation")


# --- A day's statement ------------------------------------------------------------------------------


@require_safe
@permission_required(STATEMENT_PERMISSION, raise_exception=True)
def statement(request: HttpRequest) -> HttpResponse:
    """The stored statement of the chosen day beside the mirror, and its totals."""
    form = StatementForm(request.GET or None, initial={"currency": "AUD"})
    rows: list[StatementLine] = []
    chosen = None
    if form.is_bound and form.is_valid():
        chosen = form.cleaned_data
        rows = list(
            StatementLine.objects.filter(day=chosen["day"], currency=chosen["currency"]).order_by(
                "position"
            )
        )
    context = {
        "form": form,
        "chosen": chosen,
        "rows": rows,
        "totals": statement_totals(rows) if rows else None,
        "fetched_at": rows[0].fetched_at if rows else None,
        "may_fetch": request.user.has_perm(service.RUN_PERMISSION),
        "filter_query": request.GET.urlencode() if chosen else "",
    }
    return render(request, "backoffice/reconciliation/statement.html", context)


@require_POST
@permission_required(service.RUN_PERMISSION, raise_exception=True)
def statement_fetch(request: HttpRequest) -> HttpResponse:
    form = StatementForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose a day and a currency (three letters).")
        return redirect("reconciliation-statement")
    day, currency = form.cleaned_data["day"], form.cleaned_data["currency"]
    try:
        rows = service.statement_fetch(day=day, currency=currency, by=request.user, request=request)
    except service.ResolutionError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"FlashFX's statement of {day} in {currency}: {len(rows)} lines.")
    query = f"day={day.isoformat()}&currency={currency}"
    return redirect(f"{reverse('reconciliation-statement')}?{query}")
