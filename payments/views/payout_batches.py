"""Batch payouts (/payouts/batches/): the list, a new batch from a file, one batch with its
approval and live progress, and its result file (docs/batch-payouts.md).

A new batch is two steps on one URL: the file is uploaded and checked (nothing made), and the
page shows the check of that stored file (?file=<id>) with every bad row's cells; the maker
then submits it, or drops the bad rows and submits the rest, with a fresh step-up. Views parse
and render; payments/services/payout_batches.py decides. One batch's page polls its progress
section while anything is in flight: the same view answers an htmx request with that section.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import permission_required
from django.core.exceptions import PermissionDenied
from django.core.files.base import ContentFile
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST, require_safe
from django.views.decorators.vary import vary_on_headers

from backoffice.http import is_fragment_request
from backoffice.stepup import step_up_required

from .. import tasks
from ..forms.payout_batches import BatchDeclineForm, BatchSubmitForm, BatchUploadForm
from ..models import PayoutBatch, PayoutBatchFile, Withdrawal
from ..services import approvals, payout_batches
from ..services.batch_file import BatchFileError, Validation, parse
from ..services.payout_policy import payout_policy
from .payouts import VIEW_PERMISSION

DECISIONS = ("approve", "decline")
LIST_SIZE = 100
RESULT_ROWS_PAGE = 100  # rows' outcomes per page of a batch's page
CLEAN_ROWS_SHOWN = 200  # a check page lists this many clean rows; the count and total say all
# After a batch is done FlashFX's statuses keep arriving (PENDING -> CONFIRMED, §3.3.3): its
# page follows them a while.
WATCH_DONE = timedelta(minutes=10)
SETTLED = {"CONFIRMED", *Withdrawal.FINAL}


# --- The list ---------------------------------------------------------------------------------


@require_safe
@permission_required(VIEW_PERMISSION, raise_exception=True)
def batch_list(request: HttpRequest) -> HttpResponse:
    state = request.GET.get("state", "")
    if state not in PayoutBatch.State.values:
        state = ""
    batches = PayoutBatch.objects.select_related("created_by", "file").order_by(
        "-created_at", "-id"
    )
    if state:
        batches = batches.filter(state=state)
    context = {
        "batches": batches[:LIST_SIZE],
        "state": state,
        "states": PayoutBatch.State.choices,
        "may_create": request.user.has_perm(payout_batches.CREATE_PERMISSION),
    }
    return render(request, "payments/payout_batches/list.html", context)


# --- A new batch: upload, check, submit -------------------------------------------------------


def _file_rows(file: PayoutBatchFile, validation: Validation) -> dict[str, Any]:
    """The file's columns and rows as uploaded, each bad cell with its messages (for the
    table of bad rows), and the first clean rows."""
    try:
        parsed = parse(ContentFile(bytes(file.data), name=file.name))
    except BatchFileError:  # it was read at upload; a changed rule may refuse it now
        return {"columns": (), "bad_rows": [], "clean_rows": []}
    by_row = validation.errors_by_row()
    bad_rows, clean_rows = [], []
    for row in parsed.rows:
        errors = by_row.get(row.number)
        if errors is None:
            if len(clean_rows) < CLEAN_ROWS_SHOWN:
                clean_rows.append(
                    {"number": row.number, "cells": [row.get(c) for c in parsed.columns]}
                )
            continue
        cells = [
            {
                "column": column,
                "value": row.get(column),
                "errors": [e.message for e in errors if e.column == column],
            }
            for column in parsed.columns
        ]
        known = set(parsed.columns)
        bad_rows.append(
            {
                "number": row.number,
                "cells": cells,
                "row_errors": [
                    f"{e.column}: {e.message}" if e.column else e.message
                    for e in errors
                    if e.column not in known
                ],
            }
        )
    return {"columns": parsed.columns, "bad_rows": bad_rows, "clean_rows": clean_rows}


def _new_page(
    request: HttpRequest,
    *,
    upload_form: BatchUploadForm | None = None,
    file: PayoutBatchFile | None = None,
    validation: Validation | None = None,
    submit_form: BatchSubmitForm | None = None,
    status: int = 200,
) -> HttpResponse:
    context: dict[str, Any] = {
        "upload_form": upload_form or BatchUploadForm(),
        "file": file,
        "validation": validation,
        "policy": payout_policy().describe(),
        "max_rows": settings.BATCH_MAX_ROWS,
    }
    if file is not None and validation is not None:
        context["submit_form"] = submit_form or BatchSubmitForm(
            initial={"file": file.pk}, user=request.user
        )
        context["bad_count"] = len(validation.errors_by_row())
        context.update(_file_rows(file, validation))
    return render(request, "payments/payout_batches/new.html", context, status=status)


def _own_file(request: HttpRequest, pk: str) -> PayoutBatchFile:
    if not pk.isdigit():
        raise Http404("No such file.")
    return get_object_or_404(PayoutBatchFile, pk=int(pk), uploaded_by=request.user)


@require_http_methods(["GET", "HEAD", "POST"])
@permission_required(payout_batches.CREATE_PERMISSION, raise_exception=True)
def batch_new(request: HttpRequest) -> HttpResponse:
    """GET: the upload form, or (?file=) the check of a file this member uploaded, made again
    now. POST with a file: upload and check it. POST naming a checked file: submit it."""
    if request.method == "POST":
        if request.FILES or "file" not in request.POST:
            return _upload(request)
        return _submit(request)
    pk = request.GET.get("file", "")
    if not pk:
        return _new_page(request)
    file = _own_file(request, pk)
    live = file.batches.exclude(state__in=payout_batches.CLOSED).first()
    if live is not None:  # submitted already: its rows would now be its own duplicates
        messages.info(request, f"{file.name} was submitted as batch {live.code}.")
        return redirect(live)
    try:
        validation = payout_batches.batch_recheck(file)
    except BatchFileError as exc:
        form = BatchUploadForm()
        form.add_error(None, " ".join(exc.problems))
        return _new_page(request, upload_form=form, status=422)
    return _new_page(request, file=file, validation=validation)


def _upload(request: HttpRequest) -> HttpResponse:
    form = BatchUploadForm(request.POST, request.FILES)
    if not form.is_valid():
        return _new_page(request, upload_form=form, status=422)
    try:
        file, _ = payout_batches.batch_upload(upload=form.cleaned_data["file"], by=request.user)
    except BatchFileError as exc:
        for problem in exc.problems:
            form.add_error("file", problem)
        return _new_page(request, upload_form=form, status=422)
    except payout_batches.BatchError as exc:
        raise PermissionDenied(str(exc)) from exc
    return redirect(f"{reverse('payments:payout_batch_new')}?file={file.pk}")


@step_up_required
def _submit(request: HttpRequest) -> HttpResponse:
    form = BatchSubmitForm(request.POST, user=request.user)
    if not form.is_valid():
        file = _own_file(request, request.POST.get("file", ""))
        validation = payout_batches.batch_recheck(file)
        return _new_page(request, file=file, validation=validation, submit_form=form, status=422)
    data = form.cleaned_data
    file = data["file"]
    try:
        batch = payout_batches.batch_create(
            file=file,
            by=request.user,
            sender=data["sender"],
            drop_bad_rows=data["drop_bad_rows"],
        )
    except payout_batches.BatchError as exc:
        form.add_error("sender" if exc.field == "sender" else None, str(exc))
        try:
            validation = exc.validation or payout_batches.batch_recheck(file)
        except BatchFileError as unreadable:
            form.add_error(None, " ".join(unreadable.problems))
            return _new_page(request, status=422)
        return _new_page(request, file=file, validation=validation, submit_form=form, status=422)
    dropped = (
        f"; {batch.dropped} bad row{'s' * (batch.dropped != 1)} dropped" if batch.dropped else ""
    )
    messages.success(
        request,
        f"Batch {batch.code}: {batch.count} payouts, {batch.currency} {batch.total}, "
        f"wait for approval{dropped}.",
    )
    return redirect(batch)


# --- One batch --------------------------------------------------------------------------------


def _poll_seconds(batch: PayoutBatch, progress: payout_batches.BatchProgress) -> int:
    if batch.state in (
        PayoutBatch.State.DECLINED,
        PayoutBatch.State.EXPIRED,
        PayoutBatch.State.CANCELLED,
    ):
        return 0
    if batch.state == PayoutBatch.State.DONE:
        unsettled = any(status not in SETTLED for status in progress.by_status)
        recent = batch.done_at is not None and batch.done_at > timezone.now() - WATCH_DONE
        if not (unsettled or recent):
            return 0
    return settings.BATCH_PAGE_POLL_SECONDS


def _results_page(request: HttpRequest, batch: PayoutBatch) -> dict[str, Any]:
    """One page of the rows' outcomes (?rows=<page>): the poll of a 1,000-row batch stays
    small; the result file has every row."""
    results = payout_batches.batch_result_rows(batch)
    pages = max(1, -(-len(results) // RESULT_ROWS_PAGE))
    number = request.GET.get("rows", "1")
    number = min(int(number), pages) if number.isdigit() and int(number) > 0 else 1
    start = (number - 1) * RESULT_ROWS_PAGE
    return {
        "results": results[start : start + RESULT_ROWS_PAGE],
        "results_count": len(results),
        "results_first": start + 1,
        "results_last": min(start + RESULT_ROWS_PAGE, len(results)),
        "results_page": number,
        "results_previous": number - 1 if number > 1 else None,
        "results_next": number + 1 if number < pages else None,
    }


def _detail_context(request: HttpRequest, batch: PayoutBatch) -> dict[str, Any]:
    user = request.user
    progress = payout_batches.batch_progress(batch)
    blocker = payout_batches.batch_approval_blocker(batch, user)
    approval = batch.approval
    awaiting = batch.state == PayoutBatch.State.AWAITING_APPROVAL
    return {
        "batch": batch,
        "progress": progress,
        **_results_page(request, batch),
        "approval": approval,
        "signers": approvals.approval_signers(approval) if approval else [],
        "poll_seconds": _poll_seconds(batch, progress),
        "may_decide": blocker is None,
        "decide_blocker": blocker
        if awaiting and user.has_perm(payout_batches.APPROVE_PERMISSION)
        else None,
        "may_cancel": awaiting
        and batch.created_by_id == user.pk
        and user.has_perm(payout_batches.CREATE_PERMISSION),
        "decline_form": BatchDeclineForm(auto_id="decline-%s"),
    }


def _batch(code: str) -> PayoutBatch:
    return get_object_or_404(
        PayoutBatch.objects.select_related("approval", "created_by", "sender", "file"), code=code
    )


@require_safe
@permission_required(VIEW_PERMISSION, raise_exception=True)
@vary_on_headers("HX-Request")
def batch_detail(request: HttpRequest, code: str) -> HttpResponse:
    """Count, total, approvals and every row's outcome; an htmx request gets the progress
    section alone (it polls itself while the batch is in flight)."""
    context = _detail_context(request, _batch(code))
    if is_fragment_request(request):
        return render(request, "payments/payout_batches/_poll.html", context)
    return render(request, "payments/payout_batches/detail.html", context)


@require_POST
@permission_required(payout_batches.APPROVE_PERMISSION, raise_exception=True)
@step_up_required
def batch_decide(request: HttpRequest, code: str, decision: str) -> HttpResponse:
    """Approve or decline the whole batch (fresh step-up). Never its maker."""
    if decision not in DECISIONS:
        raise Http404("No such decision.")
    batch = _batch(code)
    if batch.created_by_id == request.user.pk:
        raise PermissionDenied("You submitted this batch; other members must approve it.")
    try:
        if decision == "approve":
            batch = payout_batches.batch_approve(batch=batch, by=request.user)
            tasks.payout_batch_enqueue(batch)  # sent after commit, when this was the last
        else:
            form = BatchDeclineForm(request.POST)
            note = form.cleaned_data["note"] if form.is_valid() else ""
            batch = payout_batches.batch_decline(batch=batch, by=request.user, note=note)
    except payout_batches.BatchError as exc:
        messages.error(request, str(exc))
    else:
        if decision == "decline":
            messages.success(request, f"Declined: batch {batch.code}.")
        elif batch.state == PayoutBatch.State.AWAITING_APPROVAL:
            messages.success(request, f"Approved: batch {batch.code} waits for another member.")
        else:
            messages.success(
                request, f"Approved: batch {batch.code}, {batch.count} payouts, is being sent."
            )
    return redirect(batch)


@require_POST
@permission_required(payout_batches.CREATE_PERMISSION, raise_exception=True)
def batch_cancel(request: HttpRequest, code: str) -> HttpResponse:
    batch = _batch(code)
    try:
        batch = payout_batches.batch_cancel(batch=batch, by=request.user)
    except payout_batches.BatchError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"Batch {batch.code} withdrawn; none of its payouts is sent.")
    return redirect(batch)


@require_safe
@permission_required(VIEW_PERMISSION, raise_exception=True)
def batch_result(request: HttpRequest, code: str) -> HttpResponse:
    """The result file: row, our code, FlashFX id, status, error (formula-safe cells)."""
    batch = _batch(code)
    response = HttpResponse(
        payout_batches.batch_result_csv(batch), content_type="text/csv; charset=utf-8"
    )
    response["Content-Disposition"] = f'attachment; filename="{batch.code}-result.csv"'
    response["Cache-Control"] = "no-store"
    return response
