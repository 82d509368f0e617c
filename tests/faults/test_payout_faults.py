"""Payouts sent exactly once by real Celery workers: two approvers at the same moment, a
double-clicked Approve, the same message on two workers, FlashFX's commit-then-drop and a 5xx,
and a worker SIGKILLed before its createWithdrawal call, during it, and after it before our
commit. In every case the sandbox holds exactly one withdrawal per approved payout (looked up
by its externalId, the payout's code) and none for a payout that was not approved.

Recovery comes from the payouts sweep (payments.tasks.payouts_sweep, every minute in beat),
not from Redis: a SIGKILLed worker's unacked message comes back only after the broker's
visibility_timeout (the project's CELERY_BROKER_TRANSPORT_OPTIONS, which these workers keep)
plus kombu's restore pass (about 100 s more): beyond a test, and a shorter timeout would test
other settings than production's. The sweep sends outbox rows approved but never claimed, and
recovers rows left submitting, after PAYOUT_STUCK_AFTER (2 minutes); rather than wait, a test
ages the outbox row by that much, then a fresh worker runs the sweep and what it enqueues.
"""

from __future__ import annotations

import threading
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.contrib.messages import get_messages
from django.db import connection
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from faults_support import WAIT_SECONDS, needs_postgres_and_redis, wait_for_call_at_flashfx
from harness import wait_until
from staff import make_staff, sign_in

from backoffice import audit
from mirrors.client import flashfx_client
from payments import tasks
from payments.models import ApprovalSignature, Payout, PayoutOutbox
from payments.services import payouts

pytestmark = [needs_postgres_and_redis, pytest.mark.django_db(transaction=True)]

SUBMIT_TASK = "payments.tasks.payout_submit"
OUTBOX_TABLE = PayoutOutbox._meta.db_table
PAYOUT_TABLE = Payout._meta.db_table


# --- Making payouts -----------------------------------------------------------------------------


def propose(parties, *, amount: str = "250.00", reference: str = "INV 1042") -> Payout:
    """A payout an operator submitted for approval (one approver below 10,000 AUD)."""
    recipient, sender = parties
    maker = Payout.objects.first().maker if Payout.objects.exists() else make_staff("operator")
    return payouts.payout_create(
        by=maker,
        recipient=recipient,
        sender=sender,
        amount=Decimal(amount),
        reference=reference,
        reason="SERVICES",
    )


def approver(name: str = "alice"):
    return make_staff("approver", name)


def approve(payout: Payout, by) -> Payout:
    """What the Approve button does: sign, then enqueue the send after commit."""
    payout = payouts.payout_approve(payout=payout, by=by)
    tasks.payout_enqueue(payout)
    return payout


# --- Reading the outcome ------------------------------------------------------------------------


def at_flashfx(payout: Payout) -> list:
    """The withdrawals FlashFX holds under this payout's code (its externalId)."""
    return flashfx_client().withdrawals(externalId=payout.code)


def all_at_flashfx() -> list:
    return flashfx_client().withdrawals()


def state(payout: Payout) -> str:
    return Payout.objects.get(pk=payout.pk).state


def outbox(payout: Payout) -> PayoutOutbox:
    return PayoutOutbox.objects.get(payout=payout)


def wait_for_state(payout: Payout, wanted: str, *, timeout: float = WAIT_SECONDS) -> None:
    wait_until(
        lambda: state(payout) == wanted,
        timeout=timeout,
        what=f"payout {payout.code} to be {wanted} (it is {state(payout)})",
    )


def sweep_later(payout: Payout) -> None:
    """PAYOUT_STUCK_AFTER passes (the outbox row is aged by it instead), then beat's payouts
    sweep runs: on a worker, with what it enqueues."""
    earlier = timezone.now() - tasks.PAYOUT_STUCK_AFTER - timedelta(seconds=1)
    row = PayoutOutbox.objects.filter(payout=payout)
    row.update(created_at=earlier)
    row.exclude(claimed_at=None).update(claimed_at=earlier)
    tasks.payouts_sweep.delay()


def assert_sent_once(workers, payout: Payout, *, calls: int) -> None:
    """One withdrawal at FlashFX under the payout's code, linked to the SUBMITTED payout; the
    workers finished `calls` createWithdrawal calls (one cut short by a kill logs nothing)."""
    held = at_flashfx(payout)
    assert len(held) == 1, held
    fresh = Payout.objects.select_related("withdrawal").get(pk=payout.pk)
    assert fresh.state == Payout.State.SUBMITTED
    assert fresh.withdrawal is not None and fresh.withdrawal.flashfx_id == held[0].id
    assert held[0].amount == fresh.amount
    assert outbox(payout).state == PayoutOutbox.State.SUBMITTED
    made = workers.calls("CreateWithdrawal")
    assert len(made) == calls, made


# --- Staff at the same moment -------------------------------------------------------------------


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


def said(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def test_two_approvers_clicking_approve_at_once_send_one_withdrawal(parties, workers):
    payout = propose(parties)
    workers.start()
    browsers = []
    for name in ("alice", "bob"):
        browser = Client()
        sign_in(browser, approver(name))
        browsers.append(browser)
    url = reverse("payments:payout-decide", args=[payout.code, "approve"])
    responses = race(*(lambda b=b: b.post(url) for b in browsers))
    assert [r.status_code for r in responses] == [302, 302], responses
    messages = [m for r in responses for m in said(r)]
    assert len(messages) == 2, messages
    assert len([m for m in messages if m.startswith("Approved: ")]) == 1, messages  # one refused
    assert ApprovalSignature.objects.count() == 1

    wait_for_state(payout, Payout.State.SUBMITTED)
    assert_sent_once(workers, payout, calls=1)


def test_a_double_clicked_approve_sends_one_withdrawal(parties, workers):
    """Two POSTs of the Approve form from one browser (one session), at the same moment."""
    payout = propose(parties)
    workers.start()
    first = Client()
    sign_in(first, approver())
    second = Client()
    second.cookies = first.cookies  # the same browser
    url = reverse("payments:payout-decide", args=[payout.code, "approve"])
    responses = race(lambda: first.post(url), lambda: second.post(url))
    assert [r.status_code for r in responses] == [302, 302], responses
    assert ApprovalSignature.objects.count() == 1
    assert PayoutOutbox.objects.count() == 1

    wait_for_state(payout, Payout.State.SUBMITTED)
    assert_sent_once(workers, payout, calls=1)


def test_the_same_send_delivered_to_two_workers_and_again_later_makes_one_call(parties, workers):
    payout = propose(parties)
    payouts.payout_approve(payout=payout, by=approver())  # not enqueued: we send it below
    workers.start()
    workers.start()
    box = outbox(payout)
    tasks.payout_submit.delay(box.pk)
    tasks.payout_submit.delay(box.pk)
    wait_until(lambda: workers.finished(SUBMIT_TASK) == 2, what="both deliveries to run")
    tasks.payout_submit.delay(box.pk)  # the message back after the visibility timeout
    wait_until(lambda: workers.finished(SUBMIT_TASK) == 3, what="the late redelivery to run")
    assert_sent_once(workers, payout, calls=1)


def test_only_approved_payouts_reach_flashfx(parties, workers):
    """Six payouts: two approved, one awaiting its approver, one declined, one withdrawn by its
    maker, one above the tier with one of its two signatures. The sweep runs too (every row
    aged); FlashFX holds the two approved ones, once each, and nothing else."""
    sent = [propose(parties, reference=f"SENT {i}") for i in range(2)]
    waiting = propose(parties, reference="WAITING")
    declined = propose(parties, reference="DECLINED")
    withdrawn = propose(parties, reference="WITHDRAWN")
    half = propose(parties, amount="20000.00", reference="HALF SIGNED")
    alice, bob = approver("alice"), approver("bob")
    workers.start()
    for payout in sent:
        approve(payout, alice)
    payouts.payout_decline(payout=declined, by=bob, note="not ours")
    payouts.payout_cancel(payout=withdrawn, by=withdrawn.maker)
    assert approve(half, alice).state == Payout.State.AWAITING_APPROVAL  # one of two
    for payout in sent:
        wait_for_state(payout, Payout.State.SUBMITTED)
    PayoutOutbox.objects.update(created_at=timezone.now() - tasks.PAYOUT_STUCK_AFTER)
    tasks.payouts_sweep.delay()
    wait_until(
        lambda: workers.finished("payments.tasks.payouts_sweep") == 1, what="the sweep to run"
    )

    assert sorted(w.external_id for w in all_at_flashfx()) == sorted(p.code for p in sent)
    for payout in sent:
        assert len(at_flashfx(payout)) == 1
    for payout in (waiting, declined, withdrawn, half):
        assert at_flashfx(payout) == []
        assert not PayoutOutbox.objects.filter(payout=payout).exists()
    assert len(workers.calls("CreateWithdrawal")) == 2


# --- Crashes and lost answers -------------------------------------------------------------------


def test_a_send_finding_its_row_held_sends_nothing_and_the_sweep_sends_it_once(
    parties, workers, locker
):
    """Approved (the outbox row committed), but another transaction holds the row when the
    worker comes to claim it (an edit voiding it, another sender): the worker passes it by
    rather than wait, and sends nothing; the sweep sends it once the holder is done."""
    payout = propose(parties)
    payouts.payout_approve(payout=payout, by=approver())
    box = outbox(payout)
    with locker.row(OUTBOX_TABLE, box.pk):
        workers.start()
        tasks.payout_enqueue(Payout.objects.get(pk=payout.pk))
        wait_until(
            lambda: workers.finished(SUBMIT_TASK) == 1,
            what="the worker to run the send and pass the held row by",
        )
    assert outbox(payout).state == PayoutOutbox.State.APPROVED
    assert state(payout) == Payout.State.APPROVED
    assert at_flashfx(payout) == []

    sweep_later(payout)
    wait_for_state(payout, Payout.State.SUBMITTED)
    assert_sent_once(workers, payout, calls=1)
    assert outbox(payout).attempts == 1


def test_killed_in_the_middle_of_a_group_each_payout_is_looked_up_and_sent_once(
    parties, app_sandbox, workers
):
    """Five payouts approved while no worker runs go out as one group: one claim, then the
    calls one after another, the answers recorded together at the end. FlashFX takes 2.5 s
    per call; the worker dies during the third, FlashFX makes it all the same, and the last two
    were never sent. Recovery looks each one up: three found, two sent with their own keys."""
    app_sandbox.faults(slow=1, slow_seconds=2.5, operations=["createWithdrawal"], limit=5)
    group = [propose(parties, reference=f"INV {n}") for n in range(5)]
    checker = approver()
    for payout in group:
        approve(payout, checker)
    first = workers.start()
    wait_until(
        lambda: len(all_at_flashfx()) == 2,
        timeout=30,
        what="FlashFX to answer the group's first two calls",
    )
    wait_for_call_at_flashfx(app_sandbox, faults_left=2, what="the group's third call")
    workers.kill(first)
    wait_until(lambda: len(all_at_flashfx()) == 3, what="FlashFX to finish the dead call")
    assert {state(p) for p in group} == {Payout.State.SUBMITTING}  # one claim, nothing recorded
    assert len(workers.calls("CreateWithdrawal")) == 2  # answered; the third was cut short

    app_sandbox.faults(slow=0)
    workers.start()
    for payout in group:
        sweep_later(payout)
    for payout in group:
        wait_for_state(payout, Payout.State.SUBMITTED)
    for n, payout in enumerate(group):  # sent in the order they were approved
        held = at_flashfx(payout)
        assert len(held) == 1, (payout.code, held)
        assert Payout.objects.get(pk=payout.pk).withdrawal.flashfx_id == held[0].id
        assert outbox(payout).attempts == (1 if n < 3 else 2)  # found, or sent again
    assert len(workers.calls("CreateWithdrawal")) == 4  # two answered, two sent again


def test_killed_while_recording_the_claim_nothing_is_claimed_and_it_is_sent_once(
    parties, workers, locker
):
    """The claim, SUBMITTING and its audit event commit together; the worker dies waiting for
    the audit trail's lock inside that transaction: none of it happened."""
    payout = propose(parties)
    payouts.payout_approve(payout=payout, by=approver())
    with locker.advisory(audit.LOCK_KEY):
        first = workers.start()
        tasks.payout_enqueue(Payout.objects.get(pk=payout.pk))
        workers.wait_blocked(first, "pg_advisory_xact_lock")
        workers.kill(first)
    assert outbox(payout).state == PayoutOutbox.State.APPROVED
    assert outbox(payout).attempts == 0
    assert at_flashfx(payout) == []

    workers.start()
    sweep_later(payout)
    wait_for_state(payout, Payout.State.SUBMITTED)
    assert_sent_once(workers, payout, calls=1)


def test_killed_during_the_call_it_is_looked_up_not_created_again(parties, app_sandbox, workers):
    """FlashFX takes 3 s to answer (the sandbox's `slow` fault); the worker is killed while it
    waits. FlashFX creates the withdrawal all the same; recovery finds it by externalId."""
    app_sandbox.faults(slow=1, slow_seconds=3, operations=["createWithdrawal"], limit=1)
    payout = propose(parties)
    first = workers.start()
    approve(payout, approver())
    wait_until(
        lambda: outbox(payout).state == PayoutOutbox.State.SUBMITTING,
        what="the claim to commit (the call follows at once)",
    )
    wait_for_call_at_flashfx(app_sandbox)  # FlashFX answers 3 s after it arrives
    workers.kill(first)
    wait_until(lambda: len(at_flashfx(payout)) == 1, what="FlashFX to finish the dead call")
    assert state(payout) == Payout.State.SUBMITTING

    workers.start()
    sweep_later(payout)
    wait_for_state(payout, Payout.State.SUBMITTED)
    assert_sent_once(workers, payout, calls=0)  # only the dead worker's call, unlogged
    assert outbox(payout).attempts == 1


def test_killed_after_the_call_before_recording_it_it_is_looked_up_not_created_again(
    parties, app_sandbox, workers, locker
):
    """FlashFX answered; the worker waits for the payout's row to link the withdrawal and dies
    there, the answer lost with its transaction."""
    app_sandbox.faults(slow=1, slow_seconds=2, operations=["createWithdrawal"], limit=1)
    payout = propose(parties)
    first = workers.start()
    approve(payout, approver())
    wait_until(
        lambda: outbox(payout).state == PayoutOutbox.State.SUBMITTING,
        what="the claim to commit (the call follows at once)",
    )
    with locker.row(PAYOUT_TABLE, payout.pk):
        workers.wait_blocked(first, "UPDATE", f'"{PAYOUT_TABLE}"')
        workers.kill(first)
    assert len(at_flashfx(payout)) == 1
    assert state(payout) == Payout.State.SUBMITTING
    assert Payout.objects.get(pk=payout.pk).withdrawal is None
    assert len(workers.calls("CreateWithdrawal")) == 1  # it had its answer

    workers.start()
    sweep_later(payout)
    wait_for_state(payout, Payout.State.SUBMITTED)
    assert_sent_once(workers, payout, calls=1)


def test_committed_then_dropped_call_is_looked_up_not_created_again(parties, app_sandbox, workers):
    app_sandbox.faults(commit_then_drop=1, operations=["createWithdrawal"], limit=1)
    payout = propose(parties)
    workers.start()
    approve(payout, approver())
    wait_until(
        lambda: "payout.no_answer" in audit_actions(payout), what="the worker to get no answer"
    )
    assert len(at_flashfx(payout)) == 1  # committed at FlashFX
    assert state(payout) == Payout.State.SUBMITTING

    sweep_later(payout)  # instead of the recovery task's own countdown
    wait_for_state(payout, Payout.State.SUBMITTED)
    made = workers.calls("CreateWithdrawal")
    assert len(made) == 1 and "OutcomeUnknown" in made[0], made
    assert_sent_once(workers, payout, calls=1)


def test_a_call_refused_with_a_5xx_is_looked_up_then_sent_again_with_the_same_key(
    parties, app_sandbox, workers
):
    """A 502 before FlashFX did anything: recovery finds nothing under the code and repeats
    the same request with the same idempotencyKey, once."""
    app_sandbox.faults(html_502=1, operations=["createWithdrawal"], limit=1)
    payout = propose(parties)
    workers.start()
    approve(payout, approver())
    wait_until(
        lambda: "payout.no_answer" in audit_actions(payout), what="the worker to get no answer"
    )
    assert at_flashfx(payout) == []

    sweep_later(payout)
    wait_for_state(payout, Payout.State.SUBMITTED)
    assert_sent_once(workers, payout, calls=2)
    assert outbox(payout).attempts == 2


def audit_actions(payout: Payout) -> list[str]:
    return list(
        audit.AuditEvent.objects.filter(
            object_type=Payout._meta.label_lower, object_id=str(payout.pk)
        )
        .order_by("pk")
        .values_list("action", flat=True)
    )
