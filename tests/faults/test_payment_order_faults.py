"""International payments sent exactly once by real Celery workers: two approvers at the same
moment, the same message on two workers, FlashFX's commit-then-drop and a 5xx, and a worker
SIGKILLed before its createPayment call, during it, and after it before our commit. In every
case the sandbox holds exactly one payment per approved order (looked up by its externalId,
the order's code) and none for an order that was not approved.

As for payouts (tests/faults/test_payout_faults.py): recovery comes from the payment orders'
sweep (payments.tasks.payment_orders_sweep, every minute in beat); rather than wait
PAYOUT_STUCK_AFTER, a test ages the outbox row by that much, then a fresh worker runs the
sweep and what it enqueues.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone
from faults_support import needs_postgres_and_redis, pause
from harness import race, wait_until
from staff import make_staff

from backoffice import audit
from mirrors.client import flashfx_client
from mirrors.registry import registry
from parties.models import Recipient, Sender
from payments import tasks
from payments.models import ApprovalSignature, PaymentOrder, PaymentOrderOutbox
from payments.services import payment_orders

pytestmark = [needs_postgres_and_redis, pytest.mark.django_db(transaction=True)]

SUBMIT_TASK = "payments.tasks.payment_order_submit"
ORDER_TABLE = PaymentOrder._meta.db_table
OUTBOX_TABLE = PaymentOrderOutbox._meta.db_table
RECIPIENT = {
    "accountIdType": "IBAN",
    "currency": "EUR",
    "iban": "DE89370400440532013000",
    "bic": "COBADEFFXXX",
    "companyName": "Muster GmbH",
}
SENDER = {
    "companyName": "Demo Company Pty Ltd",
    "email": "accounts@demo.example",
    "address": {"street": "1 Martin Place", "suburb": "Sydney", "country": "AU"},
}


# --- Making payment orders ----------------------------------------------------------------------


@pytest.fixture
def parties(app_sandbox) -> tuple[Recipient, Sender]:
    """A funded balance, and a recipient abroad and a sender at FlashFX, mirrored here."""
    funding = app_sandbox.receive_deposit("100000.00")
    assert app_sandbox.advance("deposits", funding["id"], "CONFIRMED").status_code == 200
    client = flashfx_client()
    recipient = client.recipient(client.create_recipient(RECIPIENT).id)
    registry.get("recipients").apply(recipient, observed_at=timezone.now(), source="sync")
    sender = client.sender(client.create_sender(SENDER).id)
    registry.get("senders").apply(sender, observed_at=timezone.now(), source="sync")
    return (
        Recipient.objects.get(flashfx_id=recipient.id),
        Sender.objects.get(flashfx_id=sender.id),
    )


def propose(parties, *, size: str = "250.00", reference: str = "INV 2042") -> PaymentOrder:
    """An order an operator submitted for approval with a live quote (one approver below
    10,000 AUD)."""
    recipient, sender = parties
    first = PaymentOrder.objects.first()
    maker = first.created_by if first else make_staff("operator")
    amount = {
        "from_currency": "AUD",
        "to_currency": "EUR",
        "size": Decimal(size),
        "size_currency": "AUD",
    }
    return payment_orders.payment_order_create(
        by=maker,
        sender=sender,
        recipient=recipient,
        sub_client=None,
        reason="SERVICES",
        source_of_funds="BUSINESS_FUNDS",
        reference=reference,
        quote=payment_orders.quote_for(**amount),
        **amount,
    )


def approver(name: str = "alice"):
    return make_staff("approver", name)


def approve(order: PaymentOrder, by) -> PaymentOrder:
    """What the Approve button does: sign, then enqueue the send after commit."""
    order = payment_orders.payment_order_approve(order=order, by=by)
    tasks.payment_order_enqueue(order)
    return order


# --- Reading the outcome ------------------------------------------------------------------------


def at_flashfx(order: PaymentOrder) -> list:
    """The payments FlashFX holds under this order's code (its externalId)."""
    return flashfx_client().payments(externalId=order.code)


def all_at_flashfx() -> list:
    return flashfx_client().payments()


def state(order: PaymentOrder) -> str:
    return PaymentOrder.objects.get(pk=order.pk).state


def outbox(order: PaymentOrder) -> PaymentOrderOutbox:
    return PaymentOrderOutbox.objects.get(order=order)


def wait_for_state(order: PaymentOrder, wanted: str, *, timeout: float = 20.0) -> None:
    wait_until(
        lambda: state(order) == wanted,
        timeout=timeout,
        what=f"payment order {order.code} to be {wanted} (it is {state(order)})",
    )


def sweep_later(order: PaymentOrder) -> None:
    """PAYOUT_STUCK_AFTER passes (the outbox row is aged by it instead), then beat's payment
    orders sweep runs: on a worker, with what it enqueues."""
    earlier = timezone.now() - tasks.PAYOUT_STUCK_AFTER - timedelta(seconds=1)
    row = PaymentOrderOutbox.objects.filter(order=order)
    row.update(created_at=earlier)
    row.exclude(claimed_at=None).update(claimed_at=earlier)
    tasks.payment_orders_sweep.delay()


def assert_sent_once(workers, order: PaymentOrder, *, calls: int) -> None:
    """One payment at FlashFX under the order's code, linked to the SUBMITTED order; the
    workers finished `calls` createPayment calls (one cut short by a kill logs nothing)."""
    held = at_flashfx(order)
    assert len(held) == 1, held
    fresh = PaymentOrder.objects.select_related("payment").get(pk=order.pk)
    assert fresh.state == PaymentOrder.State.SUBMITTED
    assert fresh.payment is not None and fresh.payment.flashfx_id == held[0].id
    assert held[0].size == fresh.size and held[0].from_amount == fresh.size
    assert outbox(order).state == PaymentOrderOutbox.State.SUBMITTED
    made = workers.calls("CreatePayment")
    assert len(made) == calls, made


def audit_actions(order: PaymentOrder) -> list[str]:
    return list(
        audit.AuditEvent.objects.filter(
            object_type=PaymentOrder._meta.label_lower, object_id=str(order.pk)
        )
        .order_by("pk")
        .values_list("action", flat=True)
    )


# --- Staff and messages at the same moment ------------------------------------------------------


def test_two_approvers_approving_at_once_send_one_payment(parties, workers):
    order = propose(parties)
    workers.start()
    alice, bob = approver("alice"), approver("bob")
    results = race(lambda: approve(order, alice), lambda: approve(order, bob))
    refused = [r for r in results if isinstance(r, payment_orders.PaymentOrderError)]
    assert len(refused) == 1, results
    assert ApprovalSignature.objects.count() == 1

    wait_for_state(order, PaymentOrder.State.SUBMITTED)
    assert_sent_once(workers, order, calls=1)


def test_the_same_send_delivered_to_two_workers_and_again_later_makes_one_call(parties, workers):
    order = propose(parties)
    payment_orders.payment_order_approve(order=order, by=approver())  # sent below
    workers.start()
    workers.start()
    box = outbox(order)
    tasks.payment_order_submit.delay(box.pk)
    tasks.payment_order_submit.delay(box.pk)
    wait_until(lambda: workers.finished(SUBMIT_TASK) == 2, what="both deliveries to run")
    tasks.payment_order_submit.delay(box.pk)  # the message back after the visibility timeout
    wait_until(lambda: workers.finished(SUBMIT_TASK) == 3, what="the late redelivery to run")
    assert_sent_once(workers, order, calls=1)


def test_only_approved_orders_reach_flashfx(parties, workers, settings):
    """Five orders: two approved, one awaiting its approver, one declined, one withdrawn by its
    maker, one above the tier with one of its two signatures. The sweep runs too (every row
    aged); FlashFX holds the two approved ones, once each, and nothing else."""
    settings.PAYOUT_APPROVAL_TIERS = "10000:1,*:2"
    sent = [propose(parties, reference=f"SENT {i}") for i in range(2)]
    waiting = propose(parties, reference="WAITING")
    declined = propose(parties, reference="DECLINED")
    withdrawn = propose(parties, reference="WITHDRAWN")
    half = propose(parties, size="20000.00", reference="HALF SIGNED")
    alice, bob = approver("alice"), approver("bob")
    workers.start()
    for order in sent:
        approve(order, alice)
    payment_orders.payment_order_decline(order=declined, by=bob, note="not ours")
    payment_orders.payment_order_cancel(order=withdrawn, by=withdrawn.created_by)
    assert approve(half, alice).state == PaymentOrder.State.AWAITING_APPROVAL  # one of two
    for order in sent:
        wait_for_state(order, PaymentOrder.State.SUBMITTED)
    PaymentOrderOutbox.objects.update(created_at=timezone.now() - tasks.PAYOUT_STUCK_AFTER)
    tasks.payment_orders_sweep.delay()
    wait_until(
        lambda: workers.finished("payments.tasks.payment_orders_sweep") == 1,
        what="the sweep to run",
    )

    assert sorted(p.external_id for p in all_at_flashfx()) == sorted(o.code for o in sent)
    for order in sent:
        assert len(at_flashfx(order)) == 1
    for order in (waiting, declined, withdrawn, half):
        assert at_flashfx(order) == []
        assert not PaymentOrderOutbox.objects.filter(order=order).exists()
    assert len(workers.calls("CreatePayment")) == 2


# --- Crashes and lost answers -------------------------------------------------------------------


def test_a_send_finding_its_row_held_sends_nothing_and_the_sweep_sends_it_once(
    parties, workers, locker
):
    order = propose(parties)
    payment_orders.payment_order_approve(order=order, by=approver())
    box = outbox(order)
    with locker.row(OUTBOX_TABLE, box.pk):
        workers.start()
        tasks.payment_order_enqueue(PaymentOrder.objects.get(pk=order.pk))
        wait_until(
            lambda: workers.finished(SUBMIT_TASK) == 1,
            what="the worker to run the send and pass the held row by",
        )
    assert outbox(order).state == PaymentOrderOutbox.State.APPROVED
    assert state(order) == PaymentOrder.State.APPROVED
    assert at_flashfx(order) == []

    sweep_later(order)
    wait_for_state(order, PaymentOrder.State.SUBMITTED)
    assert_sent_once(workers, order, calls=1)
    assert outbox(order).attempts == 1


def test_killed_before_the_call_nothing_is_claimed_and_it_is_sent_once(parties, workers, locker):
    """The claim, SUBMITTING and its audit event commit together; the worker dies waiting for
    the audit trail's lock inside that transaction, before any call: none of it happened."""
    order = propose(parties)
    payment_orders.payment_order_approve(order=order, by=approver())
    with locker.advisory(audit.LOCK_KEY):
        first = workers.start()
        tasks.payment_order_enqueue(PaymentOrder.objects.get(pk=order.pk))
        workers.wait_blocked(first, "pg_advisory_xact_lock")
        workers.kill(first)
    assert outbox(order).state == PaymentOrderOutbox.State.APPROVED
    assert outbox(order).attempts == 0
    assert at_flashfx(order) == []

    workers.start()
    sweep_later(order)
    wait_for_state(order, PaymentOrder.State.SUBMITTED)
    assert_sent_once(workers, order, calls=1)


def test_killed_during_the_call_it_is_looked_up_not_created_again(parties, app_sandbox, workers):
    """FlashFX takes 3 s to answer; the worker is killed while it waits. FlashFX creates the
    payment all the same; recovery finds it by externalId."""
    app_sandbox.faults(slow=1, slow_seconds=3, operations=["createPayment"], limit=1)
    order = propose(parties)
    first = workers.start()
    approve(order, approver())
    wait_until(
        lambda: outbox(order).state == PaymentOrderOutbox.State.SUBMITTING,
        what="the claim to commit (the call follows at once)",
    )
    pause(1.0)  # the call is out; FlashFX answers after 3 s
    workers.kill(first)
    wait_until(lambda: len(at_flashfx(order)) == 1, what="FlashFX to finish the dead call")
    assert state(order) == PaymentOrder.State.SUBMITTING

    workers.start()
    sweep_later(order)
    wait_for_state(order, PaymentOrder.State.SUBMITTED)
    assert_sent_once(workers, order, calls=0)  # only the dead worker's call, unlogged
    assert outbox(order).attempts == 1


def test_killed_after_the_call_before_recording_it_it_is_looked_up_not_created_again(
    parties, app_sandbox, workers, locker
):
    """FlashFX answered; the worker waits for the order's row to link the payment and dies
    there, the mirrored payment and the link lost with its transaction."""
    app_sandbox.faults(slow=1, slow_seconds=2, operations=["createPayment"], limit=1)
    order = propose(parties)
    first = workers.start()
    approve(order, approver())
    wait_until(
        lambda: outbox(order).state == PaymentOrderOutbox.State.SUBMITTING,
        what="the claim to commit (the call follows at once)",
    )
    with locker.row(ORDER_TABLE, order.pk):
        # The order's locking read (pg_stat_activity cuts its text before FOR UPDATE).
        workers.wait_blocked(first, f'SELECT "{ORDER_TABLE}"."id"')
        workers.kill(first)
    assert len(at_flashfx(order)) == 1
    assert state(order) == PaymentOrder.State.SUBMITTING
    assert PaymentOrder.objects.get(pk=order.pk).payment is None
    assert len(workers.calls("CreatePayment")) == 1  # it had its answer

    workers.start()
    sweep_later(order)
    wait_for_state(order, PaymentOrder.State.SUBMITTED)
    assert_sent_once(workers, order, calls=1)


def test_committed_then_dropped_call_is_looked_up_not_created_again(parties, app_sandbox, workers):
    app_sandbox.faults(commit_then_drop=1, operations=["createPayment"], limit=1)
    order = propose(parties)
    workers.start()
    approve(order, approver())
    wait_until(
        lambda: "payment_order.no_answer" in audit_actions(order),
        what="the worker to get no answer",
    )
    assert len(at_flashfx(order)) == 1  # committed at FlashFX
    assert state(order) == PaymentOrder.State.SUBMITTING

    sweep_later(order)  # instead of the recovery task's own countdown
    wait_for_state(order, PaymentOrder.State.SUBMITTED)
    made = workers.calls("CreatePayment")
    assert len(made) == 1 and "OutcomeUnknown" in made[0], made
    assert_sent_once(workers, order, calls=1)


def test_a_call_refused_with_a_5xx_is_looked_up_then_sent_again_with_the_same_key(
    parties, app_sandbox, workers
):
    """A 502 before FlashFX did anything: recovery finds nothing under the code and repeats
    the same request with the same idempotencyKey, once."""
    app_sandbox.faults(html_502=1, operations=["createPayment"], limit=1)
    order = propose(parties)
    workers.start()
    approve(order, approver())
    wait_until(
        lambda: "payment_order.no_answer" in audit_actions(order),
        what="the worker to get no answer",
    )
    assert at_flashfx(order) == []

    sweep_later(order)
    wait_for_state(order, PaymentOrder.State.SUBMITTED)
    assert_sent_once(workers, order, calls=2)
    assert outbox(order).attempts == 2
