"""International payments sent exactly once by real Celery workers (createPayment, docs/flashfx.md
§3.6.1, with the order's code as externalId and idempotencyKey, §5.13): two approvers at once,
the same message on two workers, a row another transaction holds, unapproved orders beside
approved ones, FlashFX's commit-then-drop and a 5xx, and a worker SIGKILLed before its call,
during it, and after it before our commit. Whatever happens, the sandbox holds exactly one
payment per approved order (read back by its externalId) and none for an order not approved.

Recovery is beat's payment-orders sweep (payments.tasks.payment_orders_sweep): as in
test_payout_faults.py, a dead worker's unacked message comes back from Redis only after the
broker's visibility timeout, so a test ages the order's outbox row by PAYOUT_STUCK_AFTER
instead of waiting, then runs the sweep on a fresh worker.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone
from faults_support import WAIT_SECONDS, needs_postgres_and_redis, wait_for_call_at_flashfx
from harness import race, wait_until
from staff import make_staff

from backoffice import audit
from mirrors.client import flashfx_client
from mirrors.registry import registry
from parties.models import Recipient
from payments import tasks
from payments.models import PaymentOrder, PaymentOrderOutbox
from payments.services import payment_orders

pytestmark = [needs_postgres_and_redis, pytest.mark.django_db(transaction=True)]

SUBMIT = "payments.tasks.payment_order_submit"
SWEEP = "payments.tasks.payment_orders_sweep"
CREATE = "CreatePayment"  # the client's operation name in its call log (flashfx/call_log.py)
ORDER_TABLE = PaymentOrder._meta.db_table
OUTBOX_TABLE = PaymentOrderOutbox._meta.db_table
Order = PaymentOrder.State
Box = PaymentOrderOutbox.State
# A euro account abroad (parties/forms/recipients.py's IBAN type).
EUR_IBAN = {
    "accountIdType": "IBAN",
    "currency": "EUR",
    "iban": "DE89370400440532013000",
    "bic": "COBADEFFXXX",
    "companyName": "Muster GmbH",
}


@pytest.fixture
def abroad(app_sandbox) -> Recipient:
    """Australian dollars on the sandbox's balance, and a euro recipient there and here."""
    credit = app_sandbox.receive_deposit("500000.00")
    assert app_sandbox.advance("deposits", credit["id"], "CONFIRMED").status_code == 200
    api = flashfx_client()
    made = api.recipient(api.create_recipient(EUR_IBAN).id)
    registry.get("recipients").apply(made, observed_at=timezone.now(), source="sync")
    return Recipient.objects.get(flashfx_id=made.id)


def order_for(
    recipient: Recipient, size: str = "1000.00", reference: str = "INV 7"
) -> PaymentOrder:
    """Proposed by the operator with a live quote for its amounts (AUD -> EUR, AUD side)."""
    amounts = {
        "from_currency": "AUD",
        "to_currency": recipient.currency,
        "size": Decimal(size),
        "size_currency": "AUD",
    }
    return payment_orders.payment_order_create(
        by=get_user_model().objects.filter(username="operator").first() or make_staff("operator"),
        sender=None,
        sub_client=None,
        recipient=recipient,
        reason="SERVICES",
        source_of_funds="BUSINESS_FUNDS",
        reference=reference,
        quote=payment_orders.quote_for(**amounts),
        **amounts,
    )


def checker(name: str = "alice"):
    return make_staff("approver", name)


def approved(order: PaymentOrder, by, *, enqueue: bool = True) -> PaymentOrder:
    """The decide view's Approve: sign; once committed, the send is queued."""
    order = payment_orders.payment_order_approve(order=order, by=by)
    if enqueue:
        tasks.payment_order_enqueue(order)
    return order


def held_at_flashfx(order: PaymentOrder | None = None) -> list:
    """The sandbox's payments, under this order's code (its externalId) or all of them."""
    if order is None:
        return flashfx_client().payments()
    return flashfx_client().payments(externalId=order.code)


def now_in(order: PaymentOrder) -> str:
    return PaymentOrder.objects.values_list("state", flat=True).get(pk=order.pk)


def row_of(order: PaymentOrder) -> PaymentOrderOutbox:
    return PaymentOrderOutbox.objects.get(order=order)


def reaches(order: PaymentOrder, state: str, timeout: float = WAIT_SECONDS) -> None:
    wait_until(
        lambda: now_in(order) == state,
        timeout=timeout,
        what=f"payment order {order.code} to reach {state} (now {now_in(order)})",
    )


def sweep_after_stuck(*orders: PaymentOrder) -> None:
    """As if PAYOUT_STUCK_AFTER had passed (the rows aged by it), beat's sweep on a worker."""
    aged = timezone.now() - tasks.PAYOUT_STUCK_AFTER - timedelta(seconds=1)
    rows = PaymentOrderOutbox.objects.filter(order__in=orders)
    rows.update(created_at=aged)
    rows.exclude(claimed_at=None).update(claimed_at=aged)
    tasks.payment_orders_sweep.delay()


def no_answer_seen(order: PaymentOrder) -> bool:
    return audit.AuditEvent.objects.filter(
        object_type=PaymentOrder._meta.label_lower,
        object_id=str(order.pk),
        action="payment_order.no_answer",
    ).exists()


def exactly_one_payment(workers, order: PaymentOrder, *, calls: int, attempts: int) -> None:
    """FlashFX holds one payment under the order's code, linked to the SUBMITTED order, for
    its amounts; the workers finished `calls` createPayment calls (one a kill cut short logs
    nothing) over `attempts` claims of the outbox row."""
    held = held_at_flashfx(order)
    assert len(held) == 1, held
    order = PaymentOrder.objects.select_related("payment").get(pk=order.pk)
    assert order.state == Order.SUBMITTED
    assert order.payment is not None and order.payment.flashfx_id == held[0].id
    assert (held[0].from_currency, held[0].from_amount) == ("AUD", order.size)
    box = row_of(order)
    assert (box.state, box.attempts) == (Box.SUBMITTED, attempts)
    assert len(workers.calls(CREATE)) == calls, workers.calls(CREATE)


# --- Many hands ---------------------------------------------------------------------------------


def test_two_approvers_at_once_and_a_send_delivered_three_times_make_one_payment(abroad, workers):
    """Alice and Bob approve at the same moment (one signature is needed: one of them is told
    no); the send reaches two workers at once, then comes back once more later."""
    order = order_for(abroad)
    outcomes = race(
        lambda: approved(order, checker("alice"), enqueue=False),
        lambda: approved(order, checker("bob"), enqueue=False),
    )
    refused = [o for o in outcomes if isinstance(o, payment_orders.PaymentOrderError)]
    assert len(refused) == 1, outcomes
    assert now_in(order) == Order.APPROVED
    box = row_of(order)
    workers.start()
    workers.start()
    tasks.payment_order_submit.delay(box.pk)
    tasks.payment_order_submit.delay(box.pk)
    wait_until(lambda: workers.finished(SUBMIT) == 2, what="both deliveries to run")
    tasks.payment_order_submit.delay(box.pk)  # back after the broker's visibility timeout
    wait_until(lambda: workers.finished(SUBMIT) == 3, what="the late delivery to run")
    exactly_one_payment(workers, order, calls=1, attempts=1)


def test_only_approved_orders_become_payments(abroad, workers):
    """Two approved; one waiting; one declined; one withdrawn by its maker; one above the first
    tier with one of its two signatures. Every row is swept too: FlashFX holds the two
    approved ones, once each, and nothing for the others."""
    sent = [order_for(abroad, reference=f"PAID {n}") for n in range(2)]
    waiting = order_for(abroad, reference="WAITING")
    declined = order_for(abroad, reference="DECLINED")
    withdrawn = order_for(abroad, reference="WITHDRAWN")
    half = order_for(abroad, size="20000.00", reference="HALF")
    alice, bob = checker("alice"), checker("bob")
    workers.start()
    for order in sent:
        approved(order, alice)
    payment_orders.payment_order_decline(order=declined, by=bob, note="not ours")
    payment_orders.payment_order_cancel(order=withdrawn, by=withdrawn.created_by)
    assert approved(half, alice).state == Order.AWAITING_APPROVAL
    for order in sent:
        reaches(order, Order.SUBMITTED)
    sweep_after_stuck(*sent, waiting, declined, withdrawn, half)
    wait_until(lambda: workers.finished(SWEEP) == 1, what="the sweep to run")

    assert sorted(p.external_id for p in held_at_flashfx()) == sorted(o.code for o in sent)
    for order in (waiting, declined, withdrawn, half):
        assert not PaymentOrderOutbox.objects.filter(order=order).exists()
    assert len(workers.calls(CREATE)) == 2


def test_a_row_held_elsewhere_is_passed_by_and_the_sweep_sends_it_once(abroad, workers, locker):
    """When the worker comes to claim the outbox row another transaction holds it: the worker
    does not wait for it and sends nothing; the sweep sends it once the holder is done."""
    order = approved(order_for(abroad), checker(), enqueue=False)
    with locker.row(OUTBOX_TABLE, row_of(order).pk):
        workers.start()
        tasks.payment_order_enqueue(order)
        wait_until(lambda: workers.finished(SUBMIT) == 1, what="the send to pass the row by")
    assert (now_in(order), row_of(order).state) == (Order.APPROVED, Box.APPROVED)
    assert held_at_flashfx(order) == []

    sweep_after_stuck(order)
    reaches(order, Order.SUBMITTED)
    exactly_one_payment(workers, order, calls=1, attempts=1)


# --- Workers killed -----------------------------------------------------------------------------


def test_killed_before_the_call_nothing_was_claimed_and_the_sweep_sends_it_once(
    abroad, workers, locker
):
    """The worker dies inside its claim's transaction (waiting for the audit trail's lock):
    no claim, no SUBMITTING, no call; the sweep sends it."""
    order = approved(order_for(abroad), checker(), enqueue=False)
    with locker.advisory(audit.LOCK_KEY):
        doomed = workers.start()
        tasks.payment_order_enqueue(order)
        workers.wait_blocked(doomed, "pg_advisory_xact_lock")
        workers.kill(doomed)
    assert (row_of(order).state, row_of(order).attempts) == (Box.APPROVED, 0)
    assert now_in(order) == Order.APPROVED and held_at_flashfx(order) == []

    workers.start()
    sweep_after_stuck(order)
    reaches(order, Order.SUBMITTED)
    exactly_one_payment(workers, order, calls=1, attempts=1)


def test_killed_during_the_call_the_payment_is_read_back_not_made_twice(
    abroad, app_sandbox, workers
):
    """FlashFX answers after 3 s; the worker dies waiting. The payment exists all the same,
    and recovery finds it by externalId: no second createPayment."""
    app_sandbox.faults(slow=1, slow_seconds=3, operations=["createPayment"], limit=1)
    order = order_for(abroad)
    doomed = workers.start()
    approved(order, checker())
    wait_until(lambda: row_of(order).state == Box.SUBMITTING, what="the claim to commit")
    wait_for_call_at_flashfx(app_sandbox)  # FlashFX answers 3 s after it arrives
    workers.kill(doomed)
    wait_until(lambda: held_at_flashfx(order), what="FlashFX to finish the dead worker's call")
    assert now_in(order) == Order.SUBMITTING

    workers.start()
    sweep_after_stuck(order)
    reaches(order, Order.SUBMITTED)
    exactly_one_payment(workers, order, calls=0, attempts=1)


def test_killed_after_the_answer_before_recording_it_the_payment_is_read_back(
    abroad, app_sandbox, workers, locker
):
    """FlashFX answered; the worker waits for the order's row to record the answer and dies
    there: the answer is lost with its transaction, the payment is not."""
    app_sandbox.faults(slow=1, slow_seconds=2, operations=["createPayment"], limit=1)
    order = order_for(abroad)
    doomed = workers.start()
    approved(order, checker())
    wait_until(lambda: row_of(order).state == Box.SUBMITTING, what="the claim to commit")
    with locker.row(ORDER_TABLE, order.pk):
        workers.wait_blocked(doomed, f'"{ORDER_TABLE}"')
        workers.kill(doomed)
    assert len(held_at_flashfx(order)) == 1
    assert now_in(order) == Order.SUBMITTING
    assert PaymentOrder.objects.get(pk=order.pk).payment_id is None
    assert len(workers.calls(CREATE)) == 1  # it had its answer

    workers.start()
    sweep_after_stuck(order)
    reaches(order, Order.SUBMITTED)
    exactly_one_payment(workers, order, calls=1, attempts=1)


# --- Answers lost on the way --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "made_it", "calls"),
    [
        ({"commit_then_drop": 1}, 1, 1),  # FlashFX made it, then the answer was lost
        ({"html_502": 1}, 0, 2),  # a proxy's 502 before FlashFX did anything
    ],
    ids=["commit-then-drop", "html-502"],
)
def test_a_lost_answer_is_read_back_and_sent_again_only_if_flashfx_has_none(
    abroad, app_sandbox, workers, fault, made_it, calls
):
    app_sandbox.faults(**fault, operations=["createPayment"], limit=1)
    order = order_for(abroad)
    workers.start()
    approved(order, checker())
    wait_until(lambda: no_answer_seen(order), what="the worker to get no answer")
    assert len(held_at_flashfx(order)) == made_it
    assert now_in(order) == Order.SUBMITTING

    sweep_after_stuck(order)  # rather than the recovery task's own countdown
    reaches(order, Order.SUBMITTED)
    exactly_one_payment(workers, order, calls=calls, attempts=calls)
