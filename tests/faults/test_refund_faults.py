"""A deposit refund (money leaving) sent exactly once by a real Celery worker that is killed
before, during and after its refundDeposit call, whose call is committed at FlashFX and then
dropped, whose task is delivered twice, and whose approval two approvers click at once:
FlashFX refunds the deposit once, our refund ends SENT, and no worker makes a second call.

Recovery here comes from the sweep (payments.tasks.payments_sweep, every minute in beat), not
from Redis: a SIGKILLed worker's unacked message comes back only after the broker's
visibility_timeout (the project's CELERY_BROKER_TRANSPORT_OPTIONS, which these workers keep;
kombu's default is an hour) and then on kombu's next restore pass (unacked_restore_interval x
unacked_restore_throttle, about 100 s): far beyond a test, and shortening it would test other
settings than production's. The
sweep takes refunds left QUEUED, SENDING or UNKNOWN for STUCK_AFTER (2 minutes); rather than
wait, a test ages the row's updated_at by that much, then a fresh worker runs the sweep and
whatever it enqueues. The redelivery itself (the same message run again, later) is the last
test: a no-op once the refund has gone out.
"""

from __future__ import annotations

import threading
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from faults_support import WAIT_SECONDS, needs_postgres_and_redis, wait_for_call_at_flashfx
from harness import wait_until
from staff import make_staff, sign_in

from backoffice import audit
from mirrors.client import flashfx_client
from mirrors.registry import registry
from payments import tasks
from payments.models import Approval, Deposit, DepositRefund
from payments.services import refunds

pytestmark = [needs_postgres_and_redis, pytest.mark.django_db(transaction=True)]

SENDER = {"accountName": "Pat Payer", "bsb": "062000", "accountNo": "11112222"}
AMOUNT = Decimal("300.00")
SEND_TASK = "payments.tasks.deposit_refund_send"
REFUND_TABLE = DepositRefund._meta.db_table


def queued_refund(sandbox, amount: Decimal = AMOUNT) -> DepositRefund:
    """A CONFIRMED deposit at FlashFX, mirrored here, that an operator rejected in full: QUEUED
    below the approval threshold (AWAITING_APPROVAL above it), nothing sent or enqueued yet."""
    created = sandbox.receive_deposit(str(amount), sender=SENDER)
    response = sandbox.advance("deposits", created["id"], "CONFIRMED")
    assert response.status_code == 200, response.text
    wire = flashfx_client().deposit(created["id"])
    registry.get("deposits").apply(wire, observed_at=timezone.now(), source="sync")
    deposit = Deposit.objects.get(flashfx_id=created["id"])
    refund = refunds.deposit_refund_request(
        deposit=deposit,
        amount=amount,
        reason_code="duplicate",
        by=make_staff("operator", "olive"),
    )
    if not refunds.needs_approval(amount=amount, currency="AUD"):
        assert refund.state == DepositRefund.State.QUEUED
    return refund


def at_flashfx(sandbox, refund: DepositRefund) -> dict:
    return sandbox.data(
        "query D($id: ID!) { deposit(id: $id) { status refundAmount } }",
        {"id": refund.deposit.flashfx_id},
    )["deposit"]


def state(refund: DepositRefund) -> str:
    return DepositRefund.objects.get(pk=refund.pk).state


def wait_for_state(refund: DepositRefund, wanted: str, *, timeout: float = WAIT_SECONDS) -> None:
    wait_until(
        lambda: state(refund) == wanted,
        timeout=timeout,
        what=f"refund {refund.pk} to be {wanted} (it is {state(refund)})",
    )


def sweep_later(refund: DepositRefund) -> None:
    """Two minutes pass (the row is aged by payments.tasks.STUCK_AFTER instead), then beat's
    sweep runs: on a worker, with what it enqueues."""
    DepositRefund.objects.filter(pk=refund.pk).update(
        updated_at=timezone.now() - tasks.STUCK_AFTER - timedelta(seconds=1)
    )
    tasks.payments_sweep.delay()


def assert_refunded_once(sandbox, workers, refund: DepositRefund, *, calls: int) -> None:
    """FlashFX holds one refund of the whole deposit; ours is SENT; the workers finished
    `calls` refundDeposit calls (a call cut short by a kill logs nothing) and no other."""
    assert at_flashfx(sandbox, refund) == {"status": "REFUNDING", "refundAmount": refund.amount}
    assert sandbox.balance("AUD") == (Decimal("0.00"), Decimal("0.00"))
    assert state(refund) == DepositRefund.State.SENT
    made = workers.calls("RefundDeposit")
    assert len(made) == calls, made


def test_killed_waiting_to_claim_the_refund_the_sweep_sends_it_once(app_sandbox, workers, locker):
    refund = queued_refund(app_sandbox)
    with locker.row(REFUND_TABLE, refund.pk):
        first = workers.start()
        tasks.deposit_refund_enqueue(refund)
        workers.wait_blocked(first, "UPDATE", f'"{REFUND_TABLE}"')  # the claim, QUEUED -> SENDING
        workers.kill(first)
    assert state(refund) == DepositRefund.State.QUEUED
    assert DepositRefund.objects.get(pk=refund.pk).attempts == 0
    assert at_flashfx(app_sandbox, refund)["status"] == "CONFIRMED"

    workers.start()
    sweep_later(refund)
    wait_for_state(refund, DepositRefund.State.SENT)
    assert_refunded_once(app_sandbox, workers, refund, calls=1)


def test_killed_after_the_claim_before_the_call_it_is_read_back_then_sent_once(
    app_sandbox, workers, locker
):
    """The claim committed (SENDING); the worker then waits for the audit trail's lock to
    write "sending", just before the call, and dies there. Nothing reached FlashFX: the
    sweep reads the deposit back (still CONFIRMED, no refund), queues it again, and it goes."""
    refund = queued_refund(app_sandbox)
    with locker.advisory(audit.LOCK_KEY):
        first = workers.start()
        tasks.deposit_refund_enqueue(refund)
        workers.wait_blocked(first, "SELECT pg_advisory_xact_lock")
        workers.kill(first)
    assert state(refund) == DepositRefund.State.SENDING
    assert at_flashfx(app_sandbox, refund)["status"] == "CONFIRMED"

    workers.start()
    sweep_later(refund)
    wait_for_state(refund, DepositRefund.State.SENT)
    assert_refunded_once(app_sandbox, workers, refund, calls=1)
    assert DepositRefund.objects.get(pk=refund.pk).attempts == 2  # two claims, one call


def test_killed_during_the_call_the_refund_is_read_back_not_sent_again(app_sandbox, workers):
    """FlashFX takes 3 s to answer (the sandbox's `slow` fault); the worker is killed while it
    waits. FlashFX executes the request all the same; the sweep finds it done."""
    app_sandbox.faults(slow=1, slow_seconds=3, operations=["refundDeposit"], limit=1)
    refund = queued_refund(app_sandbox)
    first = workers.start()
    tasks.deposit_refund_enqueue(refund)
    wait_for_state(refund, DepositRefund.State.SENDING)
    wait_until(
        lambda: audit_actions(refund)[-1:] == ["deposit.refund.sending"],
        what="the worker to record 'sending', right before its call",
    )
    wait_for_call_at_flashfx(app_sandbox)  # FlashFX answers 3 s after it arrives
    workers.kill(first)
    wait_until(
        lambda: at_flashfx(app_sandbox, refund)["status"] == "REFUNDING",
        what="FlashFX to finish the request the dead worker made",
    )
    assert state(refund) == DepositRefund.State.SENDING

    workers.start()
    sweep_later(refund)
    wait_for_state(refund, DepositRefund.State.SENT)
    assert_refunded_once(app_sandbox, workers, refund, calls=0)  # only the dead worker's call
    assert DepositRefund.objects.get(pk=refund.pk).attempts == 1


def test_killed_after_the_call_before_recording_the_answer_it_is_not_sent_again(
    app_sandbox, workers, locker
):
    """FlashFX answered; the worker waits for the refund's row to write SENT and dies there,
    its answer lost. The sweep reads the deposit back and records what FlashFX did."""
    app_sandbox.faults(slow=1, slow_seconds=2, operations=["refundDeposit"], limit=1)
    refund = queued_refund(app_sandbox)
    first = workers.start()
    tasks.deposit_refund_enqueue(refund)
    wait_for_state(refund, DepositRefund.State.SENDING)  # claimed and committed; the call is due
    with locker.row(REFUND_TABLE, refund.pk):
        workers.wait_blocked(
            first, "UPDATE", f'"{REFUND_TABLE}"'
        )  # SENDING -> SENT, after the call
        workers.kill(first)
    assert at_flashfx(app_sandbox, refund)["status"] == "REFUNDING"
    assert state(refund) == DepositRefund.State.SENDING
    assert len(workers.calls("RefundDeposit")) == 1  # it had its answer

    workers.start()
    sweep_later(refund)
    wait_for_state(refund, DepositRefund.State.SENT)
    assert_refunded_once(app_sandbox, workers, refund, calls=1)


def test_committed_then_dropped_call_is_resolved_by_reading_back(app_sandbox, workers):
    """FlashFX commits the refund and cuts the connection before answering: the worker records
    UNKNOWN, and resolving reads the deposit back instead of calling again."""
    app_sandbox.faults(commit_then_drop=1, operations=["refundDeposit"], limit=1)
    refund = queued_refund(app_sandbox)
    workers.start()
    tasks.deposit_refund_enqueue(refund)
    wait_for_state(refund, DepositRefund.State.UNKNOWN)
    assert at_flashfx(app_sandbox, refund)["status"] == "REFUNDING"

    sweep_later(refund)  # instead of the resolve task's own 30 s countdown
    wait_for_state(refund, DepositRefund.State.SENT)
    made = workers.calls("RefundDeposit")
    assert len(made) == 1 and "OutcomeUnknown" in made[0], made
    assert_refunded_once(app_sandbox, workers, refund, calls=1)


def test_the_same_task_delivered_twice_to_two_workers_and_again_later_sends_once(
    app_sandbox, workers
):
    """Two workers get the same message at once (a redelivery racing the first), and the
    message comes back once more after the refund went out (Redis's visibility timeout)."""
    refund = queued_refund(app_sandbox)
    workers.start()
    workers.start()
    tasks.deposit_refund_send.delay(refund.pk)
    tasks.deposit_refund_send.delay(refund.pk)
    wait_until(lambda: workers.finished(SEND_TASK) == 2, what="both deliveries to run")
    assert state(refund) == DepositRefund.State.SENT
    tasks.deposit_refund_send.delay(refund.pk)
    wait_until(lambda: workers.finished(SEND_TASK) == 3, what="the late redelivery to run")
    assert_refunded_once(app_sandbox, workers, refund, calls=1)


def test_two_approvers_clicking_approve_at_once_refund_once_and_at_once(app_sandbox, workers):
    """A refund above the threshold waits for a second member; two approvers click Approve
    at the same moment on the Approvals page. One decision, one refundDeposit, sent by the
    worker as soon as the approval commits (not left for the sweep)."""
    refund = queued_refund(app_sandbox, Decimal("20000.00"))
    assert refund.state == DepositRefund.State.AWAITING_APPROVAL
    workers.start()
    browsers = []
    for name in ("alice", "bob"):
        browser = Client()
        sign_in(browser, make_staff("approver", name))
        browsers.append(browser)
    url = reverse("payments:approval-decide", args=[refund.approval.code, "approve"])
    responses = race(*(lambda b=b: b.post(url) for b in browsers))
    assert [r.status_code for r in responses] == [302, 302], responses
    assert Approval.objects.get(pk=refund.approval.pk).state == Approval.State.APPROVED

    wait_for_state(refund, DepositRefund.State.SENT)
    assert_refunded_once(app_sandbox, workers, refund, calls=1)


def race(*calls) -> list[Any]:
    """Run each call on its own thread (its own database connection), released together."""
    barrier = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)

    def run(i, call):
        try:
            barrier.wait()
            results[i] = call()
        except Exception as exc:  # the outcome under test
            results[i] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return results


def audit_actions(refund: DepositRefund) -> list[str]:
    return list(
        audit.AuditEvent.objects.filter(
            object_type=DepositRefund._meta.label_lower, object_id=str(refund.pk)
        )
        .order_by("pk")
        .values_list("action", flat=True)
    )
