"""Batch payouts benchmark: a 1,000-row file checked, then sent end to end, against 1,000 direct
createWithdrawal calls in the same run.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/wt_batch_bench \\
    REDIS_URL=redis://127.0.0.1:6379/15 \\
        .venv/bin/python bench/batch.py [--rows 1000] [--workers 2] [--repeat 5]

PostgreSQL and Redis only, as bench/payouts.py (whose sandbox, database, broker and worker
helpers this imports): DATABASE_URL's database is dropped and created again, and REDIS_URL's
database is the workers' broker, its Celery keys deleted first: give both to the bench alone.

On a sandbox of its own (funded; one recipient and one sender made there and mirrored here):

1. check: writes a --rows CSV (docs/batch-payouts.md: each row names the recipient by its
   FlashFX id, an exact amount, a reference of its own; the batch's sender) and times `parse` +
   `validate` (payments/services/batch_file.py) --repeat times (bench/batch_validate.py's
   `time_check`). Goal: under 2 s (issue 12).
2. submit and approve, through the services as the pages do (payments/services/
   payout_batches.py: batch_upload, batch_create by an operator, batch_approve by two
   approvers, the tier of a total above 10,000): printed, not part of the ratio.
3. send: from the approval's commit, the Approve button's publish (payments.tasks.
   payout_batch_enqueue) until every payout of the batch is recorded SUBMITTED, by --workers
   real `celery -A backoffice worker` processes (concurrency 1, prefetch 1, the project's
   settings with DEBUG off): the batch's send task fans out drains that feed the payout
   pipeline in groups of PAYOUT_SEND_GROUP (payments/services/payouts.py). Against: as many
   direct `FlashFXClient.create_withdrawal` calls (each a payout's request, its own externalId
   and idempotencyKey) from --workers threads sharing one client, half before the batch and
   half after, so that a machine slowed by something else slows both alike. Goal: the batch
   within 1.3x of the direct calls.
4. the sandbox's count of withdrawals under the batch's codes: exactly --rows, one per code.

Exits 1 if any goal is missed.
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import shutil
import signal
import statistics
import sys
import tempfile
import time
from collections import Counter
from decimal import Decimal
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(BASE_DIR))
sys.path.insert(0, str(BASE_DIR / "bench"))

from batch_validate import GOAL_SECONDS, time_check  # noqa: E402  (bench/batch_validate.py)
from payouts import (  # noqa: E402  (bench/payouts.py)
    GOAL,
    bench_databases,
    direct_calls,
    fund,
    member,
    mirrored_parties,
    set_up,
    start_sandbox,
    start_worker,
    stop,
    wait_idle,
    wait_ready,
    wait_submitted,
    worker_env,
)


def amount_of(n: int) -> Decimal:
    """Row n's amount: exact cents, 10.00 to 10.99."""
    return Decimal(f"10.{n % 100:02d}")


def batch_csv(recipient_id: str, rows: int, prefix: str = "BENCH") -> bytes:
    """A batch file (docs/batch-payouts.md): each row pays the recipient, with a reference of
    its own (so none is a duplicate of another); the sender is the batch's."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(("recipient_id", "amount", "reference", "reason"))
    for n in range(rows):
        writer.writerow((recipient_id, amount_of(n), f"{prefix} {n:05d}", "SERVICES"))
    return out.getvalue().encode()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument(
        "--workers", type=int, default=2, help="worker processes, and threads of direct calls"
    )
    parser.add_argument("--repeat", type=int, default=5, help="timings of the check")
    args = parser.parse_args()
    database_url, redis_url = bench_databases("bench/batch.py")

    workdir = Path(tempfile.mkdtemp(prefix="bench-batch-"))
    sandbox, url = start_sandbox(workdir)
    token_key = f"flashfx:token:bench-batch-{os.getpid()}"
    workers = []
    result = 1
    try:
        set_up(
            workdir,
            url,
            token_key,
            database_url,
            redis_url,
            BATCH_MAX_ROWS=str(max(args.rows, 1000)),
        )
        import redis
        from django.core.files.uploadedfile import SimpleUploadedFile

        from mirrors.client import flashfx_client
        from payments import tasks
        from payments.models import Payout, PayoutBatch
        from payments.services import payout_batches, payouts

        maker = member("operator")
        approvers = [member("approver", "alice"), member("approver", "bob")]
        fund(url, Decimal(11) * args.rows * 3)
        client = flashfx_client()
        recipient, sender = mirrored_parties(client)

        # 1. The file, written and checked.
        data = batch_csv(recipient.flashfx_id, args.rows)
        (workdir / "batch.csv").write_bytes(data)
        time_check("batch.csv", data, repeat=1)  # warm: imports, the connection, plans
        timings, validation = time_check("batch.csv", data, repeat=args.repeat)
        check_ok = validation.ok and validation.count == args.rows
        check_worst = max(timings)

        # 2. Uploaded, submitted and approved through the services (not in the ratio).
        started = time.perf_counter()
        upload = SimpleUploadedFile("batch.csv", data, content_type="text/csv")
        file, _ = payout_batches.batch_upload(upload=upload, by=maker)
        batch = payout_batches.batch_create(file=file, by=maker, sender=sender)
        submitting = time.perf_counter() - started
        started = time.perf_counter()
        for approver in approvers[: batch.approval.required]:
            batch = payout_batches.batch_approve(batch=batch, by=approver)
        approving = time.perf_counter() - started
        if batch.state != PayoutBatch.State.APPROVED:
            raise SystemExit(f"the batch is {batch.state} after its approvals, not approved")
        pks = list(Payout.objects.filter(batch=batch).values_list("pk", flat=True))
        codes = set(batch.rows.values_list("payout_code", flat=True))

        # The direct calls: the request each payout sends, under codes of their own.
        requests = []
        for n in range(args.rows):
            shape = Payout(
                code=f"DIRECT-{n:05d}",
                recipient=recipient,
                sender=sender,
                amount=amount_of(n),
                reference=f"DIRECT {n:05d}",
                reason="SERVICES",
            )
            requests.append({**payouts.withdrawal_input(shape), "amount": shape.amount})
        client.create_withdrawal({**requests[0], "externalId": "WARM", "idempotencyKey": "WARM"})

        launched = time.perf_counter()
        env = worker_env()
        workers = [start_worker(workdir, env, n) for n in range(args.workers)]
        wait_ready(workdir, workers)
        booting = time.perf_counter() - launched
        broker = redis.Redis.from_url(redis_url)

        # 3. Direct calls, half before the batch and half after; the batch between.
        half = args.rows // 2
        direct = direct_calls(client, requests[:half], args.workers)
        started = time.perf_counter()
        tasks.payout_batch_enqueue(batch)  # the Approve button's publish, after its commit
        wait_submitted(Payout, pks, workers, workdir)
        sending = time.perf_counter() - started
        wait_idle(broker, workers, workdir)  # nothing of the batch's left running
        direct += direct_calls(client, requests[half:], args.workers)
        for w in workers:  # a graceful stop: nothing is running any more
            w.send_signal(signal.SIGTERM)
        for w in workers:
            w.wait(timeout=60)

        # Where the time goes: a tenth as many rows as a batch of their own, sent in this
        # process without Celery (batch_send_next: a group at a time, as a drain does).
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        sample_rows = max(1, args.rows // 10)
        upload = SimpleUploadedFile(
            "sample.csv", batch_csv(recipient.flashfx_id, sample_rows, "SAMPLE")
        )
        file, _ = payout_batches.batch_upload(upload=upload, by=maker)
        sample = payout_batches.batch_create(file=file, by=maker, sender=sender)
        for approver in approvers[: sample.approval.required]:
            sample = payout_batches.batch_approve(batch=sample, by=approver)
        payout_batches.batch_prepare(sample)
        started = time.perf_counter()
        with CaptureQueriesContext(connection) as in_process:
            while payout_batches.batch_send_next(sample) is not None:
                pass
        in_process_ms = (time.perf_counter() - started) / sample_rows * 1000

        # 4. What FlashFX holds, and what the batch says of itself.
        held = Counter(w.external_id for w in client.withdrawals() if w.external_id in codes)
        at_flashfx = sum(held.values())
        twice = [code for code, n in held.items() if n > 1]
        batch.refresh_from_db()
        progress = payout_batches.batch_progress(batch)
        ratio = sending / direct
        print(
            f"batch of {args.rows} rows, {args.workers} worker process(es) and as many threads "
            "of direct calls, PostgreSQL + Redis, sandbox on loopback"
        )
        print(
            f"  check parse + validate        median {statistics.median(timings):.3f} s, "
            f"worst {check_worst:.3f} s over {args.repeat}   (goal < {GOAL_SECONDS} s); "
            f"{validation.count} clean rows, {len(validation.errors)} errors"
        )
        print(
            f"  direct create_withdrawal     {direct:7.2f} s   ({args.rows / direct:6.0f} calls/s)"
        )
        print(
            f"  batch publish..submitted     {sending:7.2f} s   ({args.rows / sending:6.0f} "
            "payouts/s)"
        )
        print(f"  ratio batch / direct         {ratio:7.2f}x   (goal <= {GOAL}x)")
        print(
            f"  per payout and thread/worker: direct call "
            f"{direct / args.rows * 1000 * args.workers:.0f} ms, through a worker "
            f"{sending / args.rows * 1000 * args.workers:.0f} ms, in this process (no Celery) "
            f"{in_process_ms:.0f} ms with {len(in_process.captured_queries) / sample_rows:.1f} "
            "SQL statements"
        )
        print(
            f"  (not timed: upload + submit {submitting:.2f} s, {batch.approval.required} "
            f"approval(s) {approving:.2f} s, starting the workers {booting:.2f} s)"
        )
        print(
            f"  batch {batch.code}: {batch.get_state_display().lower()}, {progress.sent} sent "
            f"of {progress.total}, {progress.failed} failed"
        )
        print(
            f"  sandbox withdrawals under the batch's codes: {at_flashfx} for {len(codes)} rows "
            f"(expected exactly {args.rows}, one each; {len(twice)} codes held twice)"
        )
        ok = (
            check_ok
            and check_worst < GOAL_SECONDS
            and ratio <= GOAL
            and at_flashfx == args.rows == len(held) == progress.sent
            and not twice
        )
        print("  OK" if ok else "  GOAL MISSED")
        client.logout()
        client.close()
        result = 0 if ok else 1
    finally:
        stop(workers, sandbox, redis_url, token_key)
    if result == 0:
        shutil.rmtree(workdir, ignore_errors=True)  # kept (with the logs) when something failed
    else:
        print(f"  logs and the file kept in {workdir}")
    return result


if __name__ == "__main__":
    sys.exit(main())
