"""Exports: the panel's POST (a small export answers at once, a large one becomes a job), the
member's jobs at /exports/ (progress polled by htmx), and a job's file for its owner alone."""

from __future__ import annotations

import tempfile
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import permission_required
from django.core.exceptions import PermissionDenied
from django.http import (
    FileResponse,
    Http404,
    HttpRequest,
    HttpResponse,
    StreamingHttpResponse,
)
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST, require_safe
from django.views.decorators.vary import vary_on_headers

from backoffice.http import is_fragment_request

from .. import tasks
from ..exports import jobs
from ..exports.registry import ExportError, export_list
from ..models import ExportJob


def _attachment(response: HttpResponse, file_name: str) -> HttpResponse:
    response["Content-Disposition"] = f'attachment; filename="{file_name}"'
    return response


def answer_export(request: HttpRequest, export: jobs.Export, *, back: str) -> HttpResponse:
    """Begin the export (audited): the file now when small, else the jobs page. Also the
    Django admin's actions (payments/admin_exports.py)."""
    try:
        begun = jobs.export_begin(
            export, user=request.user, request=request, run_job=tasks.export_job_enqueue
        )
    except ExportError as exc:
        messages.error(request, str(exc))
        return redirect(back)
    if begun.job is not None:
        messages.info(
            request,
            f"{begun.count:,} rows: your export runs in the background; "
            "its file will be here when it is ready.",
        )
        return redirect("payments:exports")
    stamp = timezone.localtime(timezone.now(), export.zone).strftime("%Y%m%d-%H%M%S")
    name = export.file_name(stamp)
    if export.file_format == "csv":
        response = StreamingHttpResponse(
            jobs.export_csv_stream(export), content_type=jobs.FORMATS["csv"]
        )
        return _attachment(response, name)
    out = tempfile.TemporaryFile()  # noqa: SIM115 (FileResponse closes it)
    jobs.export_xlsx_to(export, out)
    out.seek(0)
    return FileResponse(out, as_attachment=True, filename=name, content_type=jobs.FORMATS["xlsx"])


@never_cache
@require_POST
@permission_required(jobs.EXPORT_PERMISSION, raise_exception=True)
def export_start(request: HttpRequest, list_name: str) -> HttpResponse:
    entry = export_list(list_name)
    if entry is None:
        raise Http404("No such list.")
    if not request.user.has_perm(entry.permission):
        raise PermissionDenied
    raw_filters = request.POST.get("filters", "").lstrip("?")
    back = reverse(entry.url_name) + (f"?{raw_filters}" if raw_filters else "")
    try:
        export = jobs.export_prepare(
            entry=entry,
            user=request.user,
            filters=jobs.query_filters(entry, raw_filters, request.user),
            column_keys=request.POST.getlist("columns"),
            file_format=request.POST.get("format", ""),
            zone_name=request.POST.get("zone", ""),
        )
    except ExportError as exc:
        messages.error(request, str(exc))
        return redirect(back)
    request.session["export_zone"] = export.zone_name  # the member's choice, offered next time
    return answer_export(request, export, back=back)


def _jobs_context(request: HttpRequest) -> dict[str, Any]:
    rows = list(jobs.export_jobs_of(request.user)[:50])
    busy = any(j.state in (ExportJob.State.QUEUED, ExportJob.State.RUNNING) for j in rows)
    return {
        "title": "Exports",
        "jobs": rows,
        "busy": busy,
        "poll_seconds": settings.EXPORT_PAGE_POLL_SECONDS,
        "now": timezone.now(),
        "async_rows": settings.EXPORT_ASYNC_ROWS,
        "retention_hours": settings.EXPORT_RETENTION_HOURS,
    }


@require_safe
@permission_required(jobs.EXPORT_PERMISSION, raise_exception=True)
@vary_on_headers("HX-Request")
def exports(request: HttpRequest) -> HttpResponse:
    """The member's export jobs; while one runs, the list asks for itself again (htmx)."""
    context = _jobs_context(request)
    template = "payments/exports/_jobs.html" if is_fragment_request(request) else None
    return render(request, template or "payments/exports/jobs.html", context)


@never_cache
@require_safe
@permission_required(jobs.EXPORT_PERMISSION, raise_exception=True)
def export_download(request: HttpRequest, code: str) -> HttpResponse:
    """The job's file, to the member who asked for it alone, until it expires (410 after)."""
    job = ExportJob.objects.filter(code=code, owner=request.user).first()
    if job is None:
        raise Http404("No such export of yours.")
    path = jobs.export_job_file(job)
    expired = job.state == ExportJob.State.EXPIRED or (
        job.expires_at is not None and job.expires_at <= timezone.now()
    )
    if expired:
        return render(request, "payments/exports/gone.html", {"job": job}, status=410)
    if job.state != ExportJob.State.DONE or path is None or not path.exists():
        raise Http404("This export has no file (yet).")
    stamp = timezone.localtime(job.created_at).strftime("%Y%m%d-%H%M%S")
    return FileResponse(
        path.open("rb"),
        as_attachment=True,
        filename=f"{job.list_name}-{stamp}.{job.file_format}",
        content_type=jobs.FORMATS[job.file_format],
    )
