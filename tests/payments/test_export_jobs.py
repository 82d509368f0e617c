"""Exports above EXPORT_ASYNC_ROWS: a job a worker runs (safe twice), its progress on /exports/,
a download for its owner alone, a link that expires and a file that beat removes.

transaction=True: on PostgreSQL the job's COPY reads through a connection of its own, which
sees only committed rows.
"""

from __future__ import annotations

import io
import os
import re
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import openpyxl
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from export_support import DEPOSIT_DEFAULT, body, export, member
from queue_support import make_deposit

from backoffice import audit
from backoffice.models import AuditEvent
from payments import tasks
from payments.exports import jobs
from payments.models import Deposit, ExportJob

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _small_jobs(settings, tmp_path):
    settings.EXPORT_ASYNC_ROWS = 3
    settings.EXPORT_DIR = tmp_path / "exports"
    settings.EXPORT_RETENTION_HOURS = 24


def deposits(n: int) -> None:
    for i in range(n):
        make_deposit(
            amount=Decimal(f"{i}.05"), flashfx_status="REVIEWING" if i % 2 else "CONFIRMED"
        )


def test_a_large_export_becomes_a_job_that_ends_with_the_same_file(settings):
    settings.CELERY_TASK_ALWAYS_EAGER = True  # the worker's part, at the commit
    deposits(8)  # 4 REVIEWING: above 3
    client = member("operator", "olivia")
    response = export(client, "deposits", filters="status=REVIEWING", columns=DEPOSIT_DEFAULT)
    assert response.status_code == 302 and response["Location"] == "/exports/"
    job = ExportJob.objects.get()
    assert (job.rows_total, job.filters, job.list_name, job.owner.username) == (
        4,
        {"status": "REVIEWING"},
        "deposits",
        "olivia",
    )
    event = AuditEvent.objects.get(action=audit.EXPORTED)
    assert event.details["job"] == str(job.code) and event.details["rows"] == 4
    assert event.object_type == "payments.exportjob" and event.object_id == str(job.pk)
    assert "4 rows: your export runs in the background" in client.get("/exports/").content.decode()

    job.refresh_from_db()
    assert job.state == "done" and job.rows_written == 4 and job.expires_at is not None
    page = client.get("/exports/", headers={"HX-Request": "true"}).content.decode()
    assert "hx-trigger" not in page  # finished: the polling stops
    link = re.search(r'href="(/exports/[0-9a-f-]+/download/)">Download CSV', page)[1]
    download = client.get(link)
    assert download.status_code == 200 and "no-store" in download["Cache-Control"]
    assert download["Content-Disposition"].startswith('attachment; filename="deposits-')

    settings.EXPORT_ASYNC_ROWS = 100  # the same export, answered at once
    direct = export(client, "deposits", filters="status=REVIEWING", columns=DEPOSIT_DEFAULT)
    assert body(download) == (direct_bytes := body(direct))
    assert direct_bytes.count(b"\n") == 5


def test_a_job_reports_its_progress_as_it_writes(settings):
    Deposit.objects.bulk_create(
        Deposit(
            flashfx_id=f"BULK{i:06d}",
            flashfx_status="CONFIRMED",
            currency="AUD",
            amount=Decimal("1.00"),
            flashfx_created_at=datetime(2026, 11, 1, tzinfo=UTC) + timedelta(seconds=i),
        )
        for i in range(12_000)
    )
    owner = member("operator", "olivia")
    export(owner, "deposits", columns=["flashfx_id", "amount"])
    job = ExportJob.objects.get()
    with CaptureQueriesContext(connection) as queries:
        jobs.export_job_run(job.pk)
    reported = [
        int(m[1])
        for q in queries.captured_queries
        if (m := re.search(r'"rows_written" = (\d+)', q["sql"])) and "UPDATE" in q["sql"]
    ]
    assert reported[0] == 0  # claimed
    assert 5000 <= reported[1] < 12_000 and reported[-1] == 12_000  # progress, then done
    job.refresh_from_db()
    assert job.rows_written == 12_000 and job.size > 0

    ExportJob.objects.filter(pk=job.pk).update(state="running", rows_written=4800)
    page = owner.get("/exports/").content.decode()
    assert 'value="40"' in page and "4800 of 12000 rows" in page
    assert 'hx-trigger="every 2s"' in page  # polls while it runs
    ExportJob.objects.filter(pk=job.pk).update(state="queued", rows_written=0)
    page = owner.get("/exports/", headers={"HX-Request": "true"}).content.decode()
    assert page.lstrip().startswith('<section id="export-jobs"')  # the section alone
    assert "Queued" in page and 'hx-trigger="every 2s"' in page


def test_a_job_runs_once_however_often_it_is_delivered():
    deposits(5)
    export(member("operator", "olivia"), "deposits", columns=["flashfx_id"])
    job = ExportJob.objects.get()
    assert jobs.export_job_run(job.pk) == "done"
    job.refresh_from_db()
    path = jobs.export_job_file(job)
    written = path.stat().st_mtime_ns
    assert jobs.export_job_run(job.pk) == "not claimed"  # the same message, again
    assert path.stat().st_mtime_ns == written
    # One running elsewhere is left alone; one left running by a dead worker is taken over.
    ExportJob.objects.filter(pk=job.pk).update(state="running", started_at=timezone.now())
    assert jobs.export_job_run(job.pk) == "not claimed"
    ExportJob.objects.filter(pk=job.pk).update(
        started_at=timezone.now() - jobs.STALE_RUNNING - timedelta(seconds=1)
    )
    assert jobs.export_job_run(job.pk) == "done"
    assert sorted(os.listdir(path.parent)) == [path.name]  # no part left behind


def test_an_xlsx_job_writes_a_workbook():
    deposits(4)
    client = member("approver", "abe")
    export(
        client, "deposits", columns=["flashfx_id", "amount", "payer_account"], file_format="xlsx"
    )
    job = ExportJob.objects.get()
    jobs.export_job_run(job.pk)
    download = client.get(f"/exports/{job.code}/download/")
    sheet = openpyxl.load_workbook(io.BytesIO(body(download))).active
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0] == ("FlashFX id", "Amount", "Payer account")
    assert len(rows) == 5 and {r[1] for r in rows[1:]} == {0.05, 1.05, 2.05, 3.05}
    assert all(r[2].startswith("*****") for r in rows[1:])  # approvers see masked numbers


def test_only_the_member_who_asked_downloads_the_file():
    deposits(4)
    export(member("operator", "olivia"), "deposits", columns=["flashfx_id"])
    job = ExportJob.objects.get()
    jobs.export_job_run(job.pk)
    other = member("compliance", "cora")
    assert other.get(f"/exports/{job.code}/download/").status_code == 404
    assert str(job.code) not in other.get("/exports/").content.decode()


def test_the_link_expires_and_beat_removes_the_file(settings):
    deposits(4)
    owner = member("operator", "olivia")
    export(owner, "deposits", columns=["flashfx_id"])
    job = ExportJob.objects.get()
    jobs.export_job_run(job.pk)
    job.refresh_from_db()
    path = jobs.export_job_file(job)
    assert path.exists()
    assert job.expires_at - job.finished_at == timedelta(hours=24)

    ExportJob.objects.filter(pk=job.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    response = owner.get(f"/exports/{job.code}/download/")
    assert response.status_code == 410 and "This export has expired" in response.content.decode()
    assert "Expired: the file was removed" in owner.get("/exports/").content.decode()

    stale_part = path.parent / "left-by-a-dead-worker.part"
    stale_part.write_bytes(b"half")
    old = time.time() - 25 * 3600
    os.utime(stale_part, (old, old))
    assert tasks.exports_prune.apply().get() == 1
    job.refresh_from_db()
    assert job.state == "expired" and not path.exists() and not stale_part.exists()
    assert owner.get(f"/exports/{job.code}/download/").status_code == 410


def test_a_job_that_cannot_be_made_fails_and_says_why():
    owner = member("operator", "olivia")
    from django.contrib.auth import get_user_model

    job = ExportJob.objects.create(
        owner=get_user_model().objects.get(username="olivia"),
        list_name="gone",
        title="Gone",
        file_format="csv",
        columns=["x"],
        zone="UTC",
        rows_total=5,
    )
    with pytest.raises(Exception, match="No export list is named 'gone'"):
        jobs.export_job_run(job.pk)
    job.refresh_from_db()
    assert job.state == "failed" and "No export list" in job.error
    assert "No export list is named" in owner.get("/exports/").content.decode()
