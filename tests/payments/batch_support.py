"""What the batch payout tests share (services, views, browser, faults, bench): a CSV written
from rows, a batch submitted and approved through the services, and the sandbox's withdrawals
under a batch's codes.

A plain module beside the tests (pytest puts this folder on sys.path):
`from batch_support import ...`. Parties and funding come from payout_support.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from typing import Any

from django.core.files.uploadedfile import SimpleUploadedFile
from payout_support import withdrawals_at_flashfx

from payments.models import PayoutBatch
from payments.services import payout_batches

COLUMNS = ("recipient_id", "amount", "reference")


def csv_bytes(rows: Iterable[dict[str, Any]], columns: Iterable[str] = COLUMNS) -> bytes:
    """A batch file: the column names in row 1, then one line per dict (missing cells blank)."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(columns), lineterminator="\r\n")
    writer.writeheader()
    for row in rows:
        writer.writerow(row)
    return out.getvalue().encode("utf-8")


def csv_upload(data: bytes, name: str = "batch.csv") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, data, content_type="text/csv")


def rows_for(recipient, count: int, *, amount: str = "10.00", prefix: str = "INV") -> list[dict]:
    """`count` clean rows paying this recipient, each with its own reference."""
    return [
        {"recipient_id": recipient.flashfx_id, "amount": amount, "reference": f"{prefix} {i:04d}"}
        for i in range(1, count + 1)
    ]


def submit(maker, rows: list[dict], *, sender=None, columns=COLUMNS, drop_bad_rows=False):
    """Upload a file of these rows and submit it for approval: the batch."""
    file, _ = payout_batches.batch_upload(upload=csv_upload(csv_bytes(rows, columns)), by=maker)
    return payout_batches.batch_create(
        file=file, by=maker, sender=sender, drop_bad_rows=drop_bad_rows
    )


def approve(batch: PayoutBatch, *approvers) -> PayoutBatch:
    for approver in approvers:
        batch = payout_batches.batch_approve(batch=batch, by=approver)
    return batch


def batch_codes(batch: PayoutBatch) -> list[str]:
    """Every payout code of the batch's rows (rows with bank details: reserved codes too)."""
    return list(
        batch.rows.filter(dropped=False)
        .order_by("row_number")
        .values_list("payout_code", flat=True)
    )


def withdrawals_per_code(batch: PayoutBatch) -> dict[str, int]:
    """How many withdrawals the sandbox holds under each of the batch's codes (exactly once:
    every value 1)."""
    return {code: len(withdrawals_at_flashfx(code)) for code in batch_codes(batch)}
