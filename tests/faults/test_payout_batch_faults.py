"""A batch of payouts (docs/batch-payouts.md) sent exactly once by real Celery workers while
things go wrong mid-batch: the worker SIGKILLed in the middle of a group and restarted,
FlashFX's 429 (rate limit) on createWithdrawal, and FlashFX committing a withdrawal then
dropping the connection. In every case the sandbox's own records hold exactly one withdrawal
under each row's payout code (its externalId) and nothing else, and the batch ends DONE.

A batch is approved through the services (payments/services/payout_batches.py) and published
as the Approve button does (payments.tasks.payout_batch_enqueue); the workers run its send and
drain tasks, which feed the payout pipeline (payments/services/payouts.py: claim under SKIP
LOCKED in groups of PAYOUT_SEND_GROUP, createWithdrawal keyed by the payout's code, recovery
by look-up before any resend). Recovery after a crash or a lost answer comes from the sweeps
(payouts_sweep, payout_batches_sweep), as in tests/faults/test_payout_faults.py: a killed
worker's unacked message returns only after the broker's visibility timeout, so a test ages the
outbox rows by PAYOUT_STUCK_AFTER and runs the sweeps on a worker instead of waiting.

The workers keep the project's settings (PAYOUT_SEND_GROUP 20, BATCH_SEND_TASKS 4): a batch of
60 rows is three groups, enough for a kill to land mid-batch.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone
from faults_support import needs_postgres_and_redis, pause, wait_for_call_at_flashfx
from harness import wait_until
from staff import make_staff

from backoffice import audit
from mirrors.client import flashfx_client
from payments import tasks
from payments.models import Payout, PayoutBatch, PayoutOutbox
from payments.services import payout_batches

pytestmark = [needs_postgres_and_redis, pytest.mark.django_db(transaction=True)]

Box = PayoutOutbox.State
PState = Payout.State
ROWS = 60
COLUMNS = ("recipient_id", "account_name", "payid", "amount", "reference")


# --- A batch, approved ---------------------------------------------------------------------------


def approved_batch(parties, *, rows: int = ROWS, bank_details: int = 0) -> PayoutBatch:
    """A file of `rows` rows (the last `bank_details` of them new payees by PayID, made at
    FlashFX when the batch is sent), uploaded and submitted by an operator and approved by an
    approver (10.00 each: one approver); not published yet."""
    recipient, sender = parties
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\r\n")
    writer.writeheader()
    for n in range(1, rows + 1):
        payee = (
            {"account_name": f"Payee {n}", "payid": f"payee{n}@example.com"}
            if n > rows - bank_details
            else {"recipient_id": recipient.flashfx_id}
        )
        writer.writerow({**payee, "amount": "10.00", "reference": f"BATCH {n:04d}"})
    maker = make_staff("operator")
    upload = SimpleUploadedFile("batch.csv", out.getvalue().encode(), content_type="text/csv")
    file, validation = payout_batches.batch_upload(upload=upload, by=maker)
    assert validation.ok and validation.count == rows, validation.errors
    batch = payout_batches.batch_create(file=file, by=maker, sender=sender)
    batch = payout_batches.batch_approve(batch=batch, by=make_staff("approver", "alice"))
    assert batch.state == PayoutBatch.State.APPROVED
    return batch


def publish(batch: PayoutBatch) -> None:
    """What the Approve button does after its commit: the batch's send task enqueued."""
    tasks.payout_batch_enqueue(batch)


# --- Reading the outcome ------------------------------------------------------------------------


def codes(batch: PayoutBatch) -> list[str]:
    """Every row's payout code (a row with bank details has its code reserved at creation)."""
    return list(batch.rows.filter(dropped=False).values_list("payout_code", flat=True))


def held_at_flashfx() -> Counter:
    """The sandbox's withdrawals, counted per externalId: all of them, not only ours."""
    return Counter(w.external_id for w in flashfx_client().withdrawals())


def outbox_states(batch: PayoutBatch) -> Counter:
    return Counter(PayoutOutbox.objects.filter(payout__batch=batch).values_list("state", flat=True))


def batch_state(batch: PayoutBatch) -> str:
    return PayoutBatch.objects.get(pk=batch.pk).state


def sweep_later() -> None:
    """PAYOUT_STUCK_AFTER passes (every outbox row is aged by it instead), then beat's sweeps
    run on a worker, with what they enqueue."""
    earlier = timezone.now() - tasks.PAYOUT_STUCK_AFTER - timedelta(seconds=1)
    PayoutOutbox.objects.update(created_at=earlier)
    PayoutOutbox.objects.exclude(claimed_at=None).update(claimed_at=earlier)
    tasks.payouts_sweep.delay()
    tasks.payout_batches_sweep.delay()


def wait_done(batch: PayoutBatch, *, timeout: float = 90.0) -> None:
    wait_until(
        lambda: batch_state(batch) == PayoutBatch.State.DONE,
        timeout=timeout,
        interval=0.2,
        what=f"batch {batch.code} to be done (outbox: {dict(outbox_states(batch))})",
    )


def assert_each_row_sent_once(batch: PayoutBatch) -> None:
    """The sandbox holds exactly one withdrawal under each row's code and nothing else; each
    payout is SUBMITTED and linked to that withdrawal, for its amount."""
    expected = codes(batch)
    assert len(expected) == batch.count
    held = held_at_flashfx()
    assert held == Counter(expected), {c: n for c, n in held.items() if n != 1 or c not in expected}
    withdrawals = {w.external_id: w for w in flashfx_client().withdrawals()}
    payouts = Payout.objects.filter(batch=batch).select_related("withdrawal")
    assert len(payouts) == batch.count
    for payout in payouts:
        assert payout.state == PState.SUBMITTED, (payout.code, payout.state)
        assert payout.withdrawal is not None
        assert payout.withdrawal.flashfx_id == withdrawals[payout.code].id
        assert withdrawals[payout.code].amount == payout.amount
    assert outbox_states(batch) == Counter({Box.SUBMITTED: batch.count})


def no_answers(batch: PayoutBatch) -> int:
    """The batch's calls that got no answer (payout.no_answer in the audit trail)."""
    ids = [str(pk) for pk in Payout.objects.filter(batch=batch).values_list("pk", flat=True)]
    return audit.AuditEvent.objects.filter(
        action="payout.no_answer", object_type=Payout._meta.label_lower, object_id__in=ids
    ).count()


def faults_left(sandbox) -> int | None:
    """The sandbox's fault budget still to spend (read, not reset)."""
    response = sandbox.control("faults")
    assert response.status_code == 200, response.text
    return response.json()["limit"]


# --- The tests ----------------------------------------------------------------------------------


def test_a_worker_killed_mid_batch_and_restarted_sends_every_row_once(
    parties, app_sandbox, workers
):
    """Sixty rows, five of them new payees by PayID. FlashFX takes 0.2 s per createWithdrawal,
    so a group of twenty takes four seconds; the worker is SIGKILLed once the sandbox holds 25
    withdrawals: the first group recorded, the second claimed and half called (the call in
    flight finishes at FlashFX, its answer lost), the third never claimed. A fresh worker and
    the sweeps finish it: the claimed rows looked up (found, or sent with their own keys), the
    rest sent, every new payee made once."""
    app_sandbox.faults(slow=1, slow_seconds=0.2, operations=["createWithdrawal"])
    batch = approved_batch(parties, bank_details=5)
    first = workers.start()
    publish(batch)
    wait_until(
        lambda: sum(held_at_flashfx().values()) >= 25,
        timeout=60,
        interval=0.05,
        what="FlashFX to hold the batch's first 25 withdrawals",
    )
    workers.kill(first)
    pause(1.0)  # the call the worker died in ends at FlashFX (0.2 s): counted, not answered
    held_when_killed = sum(held_at_flashfx().values())
    assert held_when_killed < ROWS
    states = outbox_states(batch)
    assert states[Box.SUBMITTING] > 0, states  # a group claimed, its answers never recorded
    assert states[Box.SUBMITTED] + states[Box.SUBMITTING] < ROWS, states  # some never claimed
    assert batch_state(batch) == PayoutBatch.State.SENDING
    killed_calls = len(workers.calls("CreateWithdrawal"))

    app_sandbox.faults(slow=0)
    workers.start()
    sweep_later()
    wait_done(batch)

    assert_each_row_sent_once(batch)
    made = held_at_flashfx()
    # The second worker called FlashFX once for each row it did not have when the first one
    # died (those found by their code were looked up, not sent again): never one more.
    after_restart = len(workers.calls("CreateWithdrawal")) - killed_calls
    assert after_restart == ROWS - held_when_killed, (killed_calls, held_when_killed, made)
    batch = PayoutBatch.objects.get(pk=batch.pk)
    for row in batch.rows.exclude(new_recipient=None):
        ours = payout_batches.recipient_external_id(batch, row)
        assert len(flashfx_client().recipients(externalId=ours)) == 1, ours


def test_flashfx_rate_limiting_mid_batch_sends_every_row_once(parties, app_sandbox, workers):
    """Two workers share the batch's drains; half of the createWithdrawal calls are answered
    429 (Retry-After 1 s) until six have been: FlashFX executed none of them (docs/flashfx.md
    §1.4), so each limited row goes back APPROVED and a drain resumes after Retry-After. Every
    row is sent once; the calls are the rows plus the six refused."""
    app_sandbox.faults(
        rate_limit_429=0.5, retry_after_seconds=1, operations=["createWithdrawal"], limit=6
    )
    batch = approved_batch(parties, rows=40)
    workers.start()
    workers.start()
    publish(batch)
    wait_done(batch)

    assert faults_left(app_sandbox) == 0  # all six 429s were answered during the batch
    assert_each_row_sent_once(batch)
    calls = workers.calls("CreateWithdrawal")
    limited = [line for line in calls if ":TOO_MANY_REQUESTS " in line]
    assert len(limited) == 6, limited
    assert len(calls) == 40 + 6, calls
    assert no_answers(batch) == 0  # a 429 is an answer: nothing to look up


def test_flashfx_committing_then_dropping_calls_mid_batch_leaves_one_withdrawal_per_row(
    parties, app_sandbox, workers
):
    """Two workers; FlashFX commits some of the batch's withdrawals and then drops the
    connection (four times). Those rows stay SUBMITTING with no answer; recovery looks each up
    by its externalId and finds it: nothing is sent again."""
    app_sandbox.faults(commit_then_drop=0.4, operations=["createWithdrawal"], limit=4)
    batch = approved_batch(parties, rows=40)
    workers.start()
    workers.start()
    publish(batch)

    def settled_but_unknown() -> bool:
        states = outbox_states(batch)
        dropped = no_answers(batch)
        return (
            dropped > 0
            and states[Box.SUBMITTING] == dropped
            and states[Box.SUBMITTED] == 40 - dropped
        )

    wait_until(
        settled_but_unknown,
        timeout=60,
        interval=0.1,
        what=f"every row sent, the dropped ones unknown (outbox: {dict(outbox_states(batch))})",
    )
    dropped = no_answers(batch)
    assert faults_left(app_sandbox) == 4 - dropped
    assert held_at_flashfx() == Counter(codes(batch))  # committed at FlashFX, answers lost
    assert batch_state(batch) == PayoutBatch.State.SENDING

    app_sandbox.faults(limit=0)
    sweep_later()  # instead of the recovery tasks' own countdown
    wait_done(batch)

    assert_each_row_sent_once(batch)
    calls = workers.calls("CreateWithdrawal")
    assert len(calls) == 40, calls  # recovery found each dropped one: no second call
    assert len([line for line in calls if "OutcomeUnknown" in line]) == dropped, calls


def test_a_worker_killed_while_making_the_new_payees_makes_each_once(parties, app_sandbox, workers):
    """Twelve rows, eight of them new payees by PayID: after approval the batch's send task
    makes their recipients at FlashFX one at a time, each under our externalId (the batch's
    code and the row's number). FlashFX takes 1 s per createRecipient; the worker is SIGKILLed
    during the third call or so, which FlashFX finishes all the same. A fresh worker runs what
    was queued (the named rows' drains) and beat's batch sweep sends the batch again: the
    recipient made by the dead call is found by its externalId, not made again; every row is
    sent once."""
    app_sandbox.faults(slow=1, slow_seconds=1, operations=["createRecipient"], limit=8)
    batch = approved_batch(parties, rows=12, bank_details=8)
    rows = list(batch.rows.exclude(new_recipient=None).order_by("row_number"))
    ours = [payout_batches.recipient_external_id(batch, row) for row in rows]

    def made() -> list[int]:
        return [len(flashfx_client().recipients(externalId=e)) for e in ours]

    first = workers.start()
    publish(batch)
    wait_until(lambda: sum(made()) >= 2, timeout=30, what="FlashFX to make two new payees")
    wait_for_call_at_flashfx(app_sandbox, faults_left=5, what="the third createRecipient")
    workers.kill(first)
    answered = len(workers.calls("CreateRecipient"))
    wait_until(lambda: sum(made()) > answered, what="FlashFX to finish the dead worker's call")
    held = sum(made())
    assert held == answered + 1 < len(rows), (answered, made())  # the dead call made one
    assert made() == [1] * held + [0] * (len(rows) - held)
    assert batch.rows.filter(payout=None).count() == len(rows) - answered  # its answer lost

    app_sandbox.faults(slow=0)
    workers.start()
    tasks.payout_batches_sweep.delay()
    wait_done(batch)

    assert made() == [1] * len(rows)
    # The second worker asked FlashFX to make only those it did not have: never one more.
    assert len(workers.calls("CreateRecipient")) == answered + len(rows) - held
    assert_each_row_sent_once(batch)
