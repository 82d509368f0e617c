"""Batch file benchmark: a 1,000-row batch file read and checked against 1,000 recipients.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/wt_batch_bench \\
        .venv/bin/python bench/batch_validate.py [--rows 1000] [--repeat 5]

PostgreSQL only; DATABASE_URL's database is dropped and created again: give it to the bench
alone. Fills it (not timed) with --rows mirrored recipients, two senders and --rows payouts of
the last 30 days under the file's references (other amounts: found by the duplicate check's
query, flagged by none), then times `parse` + `validate` (payments/services/batch_file.py) on
a CSV and on the same rows as XLSX, --repeat times each, and counts the SQL statements of one
check. A quarter of the rows name their recipient by FlashFX id, a quarter by external id, a
quarter by nickname, a quarter give new bank details (each checked by the recipient form).

Goal: parse + validate under 2 s for 1,000 rows (issue 12), every row clean; exits 1 otherwise.
The lead's bench/batch.py can import `fill` and `time_check` for its own run.
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from payments.services.batch_file import Validation

BASE_DIR = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(BASE_DIR))
sys.path.insert(0, str(BASE_DIR / "bench"))
GOAL_SECONDS = 2.0
COLUMNS = (
    "recipient_id,recipient_external_id,recipient_nick_name,account_name,bsb,account_no,"
    "amount,reference,sender,reason"
)


def fid(n: int, kind: str = "a") -> str:
    return f"{kind}{n:023x}"


def fill(rows: int) -> list[list[str]]:
    """--rows recipients, two senders and --rows recent payouts in the database; returns the
    batch's rows (cells as text) that name them."""
    from django.contrib.auth import get_user_model
    from django.utils import timezone

    from parties.models import Recipient, Sender
    from payments.models import Payout

    recipients = Recipient.objects.bulk_create(
        Recipient(
            flashfx_id=fid(n),
            external_id=f"SUP-{n:05d}",
            nick_name=f"Payee{n:05d}",
            account_id_type="BSB",
            currency="AUD",
            first_name="Pat",
            last_name=f"Payee{n}",
            bsb="062000",
            account_no=f"1{n:07d}",
        )
        for n in range(rows)
    )
    Sender.objects.bulk_create(
        [
            Sender(flashfx_id=fid(1, "b"), nick_name="DemoCompan", company_name="Demo Co"),
            Sender(flashfx_id=fid(2, "b"), nick_name="OtherCo", company_name="Other Co"),
        ]
    )
    maker = get_user_model().objects.create_user("bench-maker")
    now = timezone.now()
    Payout.objects.bulk_create(
        Payout(
            recipient=r,
            amount=Decimal("1.00"),
            reference=f"INV {n:05d}",
            reason="SERVICES",
            maker=maker,
            state=Payout.State.SUBMITTED,
            created_at=now - timedelta(days=n % 29),
        )
        for n, r in enumerate(recipients)
    )
    table = []
    for n in range(rows):
        way = n % 4
        table.append(
            [
                fid(n) if way == 0 else "",
                f"SUP-{n:05d}" if way == 1 else "",
                f"Payee{n:05d}" if way == 2 else "",
                f"New Payee {n}" if way == 3 else "",
                "062-001" if way == 3 else "",
                f"2{n:07d}" if way == 3 else "",
                f"{10 + n}.{n % 100:02d}",
                f"INV {n:05d}",
                "DemoCompan" if n % 2 else fid(2, "b"),
                "GOODS" if n % 3 else "",
            ]
        )
    return table


def csv_bytes(table: list[list[str]]) -> bytes:
    return (COLUMNS + "\n" + "".join(",".join(row) + "\n" for row in table)).encode()


def xlsx_bytes(table: list[list[str]]) -> bytes:
    import openpyxl

    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(COLUMNS.split(","))
    for row in table:
        sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def time_check(name: str, data: bytes, *, repeat: int) -> tuple[list[float], Validation]:
    """`repeat` timings of parse + validate of this file, and the last Validation."""
    from django.core.files.uploadedfile import SimpleUploadedFile

    from payments.services.batch_file import parse, validate

    assert repeat > 0
    timings = []
    for _ in range(repeat):
        upload = SimpleUploadedFile(name, data)
        started = time.perf_counter()
        validation = validate(parse(upload))
        timings.append(time.perf_counter() - started)
    return timings, validation


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    database_url = os.environ.get("DATABASE_URL", "")
    if not database_url.startswith("postgres"):
        raise SystemExit(
            "bench/batch_validate.py needs DATABASE_URL=postgres://... naming a database of "
            "the bench's own (see its docstring)"
        )
    from payouts import fresh_database  # bench/payouts.py

    fresh_database(database_url)
    os.environ |= {
        "DEBUG": "true",
        "VAR_DIR": tempfile.mkdtemp(prefix="bench-batch-"),
        "DJANGO_SETTINGS_MODULE": "backoffice.settings",
        "LOG_LEVEL": "WARNING",
        "BATCH_MAX_ROWS": str(max(args.rows, 1000)),
    }
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    call_command("migrate", verbosity=0)
    settings.DEBUG = False  # DEBUG keeps every SQL statement in memory
    table = fill(args.rows)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")

    failed = False
    for name, data in (("batch.csv", csv_bytes(table)), ("batch.xlsx", xlsx_bytes(table))):
        time_check(name, data, repeat=1)  # warm: imports, the connection, the plan cache
        timings, validation = time_check(name, data, repeat=args.repeat)
        with CaptureQueriesContext(connection) as queries:
            time_check(name, data, repeat=1)
        clean = validation.count == args.rows and validation.ok
        worst = max(timings)
        print(
            f"{name}: {args.rows} rows ({len(data):,} bytes), parse + validate "
            f"median {statistics.median(timings):.3f} s, worst {worst:.3f} s over {args.repeat}; "
            f"{len(queries)} SQL statements; {validation.count} clean rows, "
            f"{len(validation.errors)} errors"
        )
        failed |= worst >= GOAL_SECONDS or not clean
    print(f"goal: under {GOAL_SECONDS} s, every row clean: {'missed' if failed else 'met'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
