"""Starting an export, running a large one as a job, and removing old files.

export_begin() is the one way in (the list pages and the Django admin): it checks what was
asked, counts the rows, records the audit event (who, which list, which filters, how many
rows, which format), and then either hands back a small export to stream at once or creates an
ExportJob for the worker (more than EXPORT_ASYNC_ROWS rows).
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.conf import settings
from django.db import connection, transaction
from django.db.models import QuerySet
from django.http import HttpRequest, QueryDict
from django.utils import timezone

from backoffice import audit

from ..models import ExportJob
from .registry import Column, ExportError, ExportList, export_list
from .writers import RowCounter, csv_chunks, write_xlsx

log = logging.getLogger(__name__)

EXPORT_PERMISSION = "backoffice.export_data"
ACCOUNT_NUMBER_PERMISSION = "payments.view_account_number"
FORMATS = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
}
DEFAULT_ZONE = "Australia/Sydney"
ZONES = (
    "Australia/Sydney",
    "Australia/Melbourne",
    "Australia/Brisbane",
    "Australia/Adelaide",
    "Australia/Darwin",
    "Australia/Perth",
    "Australia/Hobart",
    "Pacific/Auckland",
    "Asia/Singapore",
    "Asia/Hong_Kong",
    "Europe/London",
    "America/New_York",
    "UTC",
)
STALE_RUNNING = timedelta(minutes=30)  # a running job not heard of this long is taken over


@dataclass
class Export:
    """What was asked, checked."""

    entry: ExportList
    columns: list[Column]
    file_format: str
    zone_name: str
    filters: dict[str, Any]
    unmasked: bool
    rows: QuerySet = field(repr=False)

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.zone_name)

    def file_name(self, stamp: str) -> str:
        return f"{self.entry.name}-{stamp}.{self.file_format}"


@dataclass
class Begun:
    export: Export
    count: int
    job: ExportJob | None  # None: small enough to answer at once


def zone_checked(name: str) -> str:
    name = (name or DEFAULT_ZONE).strip()
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ExportError(f"{name!r} is not a time zone we know (e.g. Australia/Sydney).") from exc
    return name


def export_prepare(
    *,
    entry: ExportList,
    user: Any,
    filters: dict[str, Any],
    column_keys: Sequence[str],
    file_format: str,
    zone_name: str,
    rows: QuerySet | None = None,
) -> Export:
    if file_format not in FORMATS:
        raise ExportError("Choose CSV or XLSX.")
    if not column_keys:
        raise ExportError("Choose at least one column.")
    columns = [entry.column(k) for k in column_keys]
    return Export(
        entry=entry,
        columns=columns,
        file_format=file_format,
        zone_name=zone_checked(zone_name),
        filters=filters,
        unmasked=user.has_perm(ACCOUNT_NUMBER_PERMISSION),
        rows=rows if rows is not None else entry.rows(filters, user),
    )


def export_begin(
    export: Export, *, user: Any, request: HttpRequest | None, run_job: Callable[[int], None]
) -> Begun:
    """Count, check the XLSX cap, audit, and make a job when it is large; `run_job(job_id)`
    enqueues one (after commit)."""
    count = export.rows.count()
    if export.file_format == "xlsx" and count > settings.EXPORT_XLSX_MAX_ROWS:
        raise ExportError(
            f"{count:,} rows: more than an XLSX export holds ({settings.EXPORT_XLSX_MAX_ROWS:,}"
            " rows, below Excel's limit). Export them as CSV, or narrow the filters."
        )
    job = None
    with transaction.atomic():
        if count > settings.EXPORT_ASYNC_ROWS:
            job = ExportJob.objects.create(
                owner=user,
                list_name=export.entry.name,
                title=export.entry.title,
                file_format=export.file_format,
                filters=export.filters,
                columns=[c.key for c in export.columns],
                zone=export.zone_name,
                unmasked=export.unmasked,
                rows_total=count,
            )
            transaction.on_commit(lambda: run_job(job.pk))
        audit.record(
            audit.EXPORTED,
            actor=user,
            request=request,
            obj=job,
            details={
                "list": export.entry.name,
                "filters": export.filters,
                "rows": count,
                "format": export.file_format,
                "columns": [c.key for c in export.columns],
                "zone": export.zone_name,
                "masked": not export.unmasked,
                "job": str(job.code) if job else None,
            },
        )
    return Begun(export=export, count=count, job=job)


def export_csv_stream(
    export: Export, counter: RowCounter | None = None, copy_connection: Any = None
) -> Iterator[bytes]:
    return csv_chunks(
        export.rows,
        export.columns,
        zone=export.zone,
        zone_name=export.zone_name,
        unmasked=export.unmasked,
        counter=counter,
        copy_connection=copy_connection,
    )


def export_xlsx_to(export: Export, out: Any, progress: Callable[[int], None] | None = None) -> int:
    return write_xlsx(
        out,
        export.rows,
        export.columns,
        zone=export.zone,
        zone_name=export.zone_name,
        unmasked=export.unmasked,
        title=export.entry.title,
        progress=progress,
    )


def export_directory() -> Path:
    path = Path(settings.EXPORT_DIR)
    path.mkdir(parents=True, exist_ok=True)
    return path


def export_job_file(job: ExportJob) -> Path | None:
    if not job.file_name:
        return None
    return export_directory() / job.file_name


# --- The job ----------------------------------------------------------------------------------


def _claim(job_id: int) -> ExportJob | None:
    """QUEUED -> RUNNING, or take over one left RUNNING by a worker that died; None when done,
    failed, expired, or running elsewhere (a second delivery of the same task)."""
    now = timezone.now()
    claimed = ExportJob.objects.filter(pk=job_id, state=ExportJob.State.QUEUED).update(
        state=ExportJob.State.RUNNING, started_at=now, rows_written=0
    ) or ExportJob.objects.filter(
        pk=job_id, state=ExportJob.State.RUNNING, started_at__lt=now - STALE_RUNNING
    ).update(started_at=now, rows_written=0)
    return ExportJob.objects.get(pk=job_id) if claimed else None


def export_job_run(job_id: int) -> str:
    """QUEUED -> RUNNING -> DONE (file written, expires_at set) or FAILED (error kept, raised).
    Safe to run twice: only the run that claims the job writes, to a file of its own, and the
    finished file appears under its name in one rename."""
    job = _claim(job_id)
    if job is None:
        return "not claimed"
    entry = export_list(job.list_name)
    try:
        if entry is None:
            raise ExportError(f"No export list is named {job.list_name!r} any more.")
        owner = job.owner
        export = export_prepare(
            entry=entry,
            user=owner,
            filters=job.filters,
            column_keys=job.columns,
            file_format=job.file_format,
            zone_name=job.zone,
        )
        export.unmasked = job.unmasked and owner.has_perm(ACCOUNT_NUMBER_PERMISSION)
        directory = export_directory()
        final = f"{job.code}.{job.file_format}"

        def progress(rows: int) -> None:
            ExportJob.objects.filter(pk=job.pk).update(rows_written=rows)

        fd, part = tempfile.mkstemp(dir=directory, prefix=f"{job.code}.", suffix=".part")
        try:
            with os.fdopen(fd, "wb") as out:
                if job.file_format == "csv":
                    rows = _write_csv(export, out, progress)
                else:
                    rows = export_xlsx_to(export, out, progress)
            size = os.path.getsize(part)
            os.replace(part, directory / final)
        except BaseException:
            Path(part).unlink(missing_ok=True)
            raise
    except Exception as exc:
        log.exception("export job %s failed", job.code)
        ExportJob.objects.filter(pk=job.pk).update(
            state=ExportJob.State.FAILED, error=str(exc)[:500], finished_at=timezone.now()
        )
        raise
    now = timezone.now()
    ExportJob.objects.filter(pk=job.pk).update(
        state=ExportJob.State.DONE,
        rows_written=rows,
        file_name=final,
        size=size,
        finished_at=now,
        expires_at=now + timedelta(hours=settings.EXPORT_RETENTION_HOURS),
    )
    return "done"


def _write_csv(export: Export, out: Any, progress: Callable[[int], None]) -> int:
    """COPY runs on a connection of its own: Django's reports progress while it streams."""
    counter = RowCounter()
    reported = 0
    own = None
    if connection.vendor == "postgresql":
        own = connection.get_new_connection(connection.get_connection_params())
    try:
        for chunk in export_csv_stream(export, counter, copy_connection=own):
            out.write(chunk)
            if counter.rows - reported >= 5000:
                reported = counter.rows
                progress(reported)
    finally:
        if own is not None:
            own.close()
    return counter.rows


def exports_prune(*, now: Any = None) -> int:
    """Beat: remove the files of jobs past expires_at (DONE -> EXPIRED), and of failed ones
    as old; how many jobs were expired."""
    now = now or timezone.now()
    expired = 0
    for job in ExportJob.objects.filter(state=ExportJob.State.DONE, expires_at__lte=now):
        path = export_job_file(job)
        if path is not None:
            path.unlink(missing_ok=True)
        expired += ExportJob.objects.filter(pk=job.pk, state=ExportJob.State.DONE).update(
            state=ExportJob.State.EXPIRED, file_name=""
        )
    # Parts a killed worker left behind (a run that claims the job again writes a new one).
    cutoff = (now - timedelta(hours=settings.EXPORT_RETENTION_HOURS)).timestamp()
    for part in export_directory().glob("*.part"):
        if part.stat().st_mtime < cutoff:
            part.unlink(missing_ok=True)
    return expired


def export_jobs_of(user: Any) -> QuerySet[ExportJob]:
    return ExportJob.objects.filter(owner=user).order_by("-created_at", "-id")


def query_filters(entry: ExportList, raw: str, user: Any) -> dict[str, Any]:
    """The list's filters from the page's query string (as the page itself reads them)."""
    return entry.filters(QueryDict(raw.lstrip("?")), user)
