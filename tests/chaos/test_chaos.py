"""Chaos: a stream of payouts, deposits, refunds and webhooks while worker processes are
SIGKILLed at random, Redis is restarted and FlashFX (the sandbox with its fault mix on) is slow,
failing and rate-limiting; then the invariants a payments team relies on:

- every approved payout exists exactly once at FlashFX (by its code, the externalId), and is
  SUBMITTED here, linked to it;
- every refund was made once at FlashFX (the deposit's refund amount is the one asked for);
- every deposit and withdrawal at FlashFX is in the mirror with FlashFX's current status;
- every webhook FlashFX delivered was processed (none left received, failing or dead);
- the audit trail verifies, with no gap;
- nothing was lost: once the faults stop, the documented recovery (the beat sweeps after
  PAYOUT_STUCK_AFTER / STUCK_AFTER / the webhook backlog's timeouts, which the test lets pass
  by ageing the rows, as tests/faults does) brings everything there.

It prints one summary line with the counts. Runs on PostgreSQL and Redis (.ci/run's second
pass), with real workers (tests/faults/faults_support.py) and the app under gunicorn.
"""

from __future__ import annotations

import random
import threading
import time
from datetime import timedelta
from decimal import Decimal

import pytest
from faults_support import needs_postgres_and_redis
from harness import wait_until
from staff import make_staff

from backoffice import audit
from mirrors.client import flashfx_client
from mirrors.registry import registry
from parties.models import Recipient, Sender
from payments import tasks
from payments.models import Deposit, DepositRefund, Payout, PayoutOutbox, Withdrawal
from payments.services import payouts, refunds
from webhooks import tasks as webhook_tasks
from webhooks.models import InboundEvent

pytestmark = [needs_postgres_and_redis, pytest.mark.django_db(transaction=True)]

PAYOUTS = 24
DEPOSITS = 10
REFUNDS = 4
WORKERS = 2
FAULTS = {
    "html_502": 0.06,
    "rate_limit_429": 0.06,
    "graphql_error": 0.04,
    "slow": 0.04,
    "commit_then_drop": 0.06,
    "slow_seconds": 6,  # longer than the workers' FLASHFX_READ_TIMEOUT (4 s)
    "retry_after_seconds": 1,
}
RECOVERY_SECONDS = 180
DEPOSIT_SENDER = {"accountName": "Chaos Payer Pty Ltd", "bsb": "062000", "accountNo": "55501234"}


def mirror(entity: str, wire) -> None:
    registry.get(entity).apply(wire, observed_at=time_now(), source="sync")


def time_now():
    from django.utils import timezone

    return timezone.now()


def parties(sandbox) -> tuple[Recipient, Sender]:
    funding = sandbox.receive_deposit("500000.00")  # confirmed by the sandbox's clock
    client = flashfx_client()
    wait_until(
        lambda: client.deposit(funding["id"]).status == "CONFIRMED",
        timeout=30,
        what="the funding deposit to be confirmed",
    )
    recipient = client.create_recipient(
        {
            "accountIdType": "BSB",
            "currency": "AUD",
            "bsb": "062000",
            "accountNo": "12345678",
            "firstName": "Mia",
            "lastName": "Ng",
        }
    )
    mirror("recipients", client.recipient(recipient.id))
    sender = client.create_sender(
        {
            "companyName": "Demo Company Pty Ltd",
            "email": "accounts@demo.example",
            "address": {"street": "1 Martin Place", "suburb": "Sydney", "country": "AU"},
        }
    )
    mirror("senders", client.sender(sender.id))
    return Recipient.objects.get(flashfx_id=recipient.id), Sender.objects.get(flashfx_id=sender.id)


class Killer(threading.Thread):
    """Every 2-5 s, SIGKILL a random worker (its whole process group) and start a new one."""

    def __init__(self, workers) -> None:
        super().__init__(daemon=True)
        self.workers = workers
        self.stop = threading.Event()
        self.kills = 0
        self.random = random.Random(1729)

    def run(self) -> None:
        while not self.stop.wait(self.random.uniform(2, 5)):
            alive = [w for w in self.workers.started if w.alive]
            if alive:
                self.workers.kill(self.random.choice(alive))
                self.kills += 1
            self.workers.start(timeout=60)


def age_stuck_rows() -> None:
    """Let the documented recovery times pass for whatever is still on its way (the sweeps
    compare these timestamps with PAYOUT_STUCK_AFTER, STUCK_AFTER and the webhook backlog's
    RECEIVED_GRACE / PROCESSING_TIMEOUT / RETRY_LOST_AFTER)."""
    earlier = time_now() - timedelta(minutes=16)
    outbox = PayoutOutbox.objects.filter(
        state__in=[PayoutOutbox.State.APPROVED, PayoutOutbox.State.SUBMITTING]
    )
    outbox.update(created_at=earlier)
    outbox.exclude(claimed_at=None).update(claimed_at=earlier)
    DepositRefund.objects.filter(
        state__in=[
            DepositRefund.State.QUEUED,
            DepositRefund.State.SENDING,
            DepositRefund.State.UNKNOWN,
        ]
    ).update(updated_at=earlier)
    unfinished = InboundEvent.objects.filter(
        accepted=True,
        status__in=[
            InboundEvent.Status.RECEIVED,
            InboundEvent.Status.PROCESSING,
            InboundEvent.Status.FAILED,
        ],
    )
    unfinished.update(received_at=earlier)
    unfinished.exclude(processed_at=None).update(processed_at=earlier)


def sweep() -> None:
    """What beat runs every minute, published for the workers."""
    tasks.payouts_sweep.delay()
    tasks.payments_sweep.delay()
    webhook_tasks.sweep_inbound_events.delay()


def test_payouts_deposits_refunds_and_webhooks_survive_kills_a_redis_restart_and_flashfx_faults(
    sandbox, app_env, own_redis, chaos_workers, web
):
    recipient, sender = parties(sandbox)
    maker = make_staff("operator", "olivia")
    approver = make_staff("approver", "amir")
    rejecter = make_staff("operator", "oscar")
    for _ in range(WORKERS):
        chaos_workers.start()

    sandbox.faults(**FAULTS)
    killer = Killer(chaos_workers)
    killer.start()
    started = time.monotonic()
    approved: list[Payout] = []
    deposit_ids: list[str] = []
    refunded: dict[int, Decimal] = {}
    publish_errors = 0
    try:
        for i in range(PAYOUTS):
            payout = payouts.payout_create(
                by=maker,
                recipient=recipient,
                sender=sender,
                amount=Decimal("100.00") + i,
                reference=f"CHAOS {i}",
                reason="SERVICES",
            )
            payout = payouts.payout_approve(payout=payout, by=approver)
            approved.append(payout)
            try:
                tasks.payout_enqueue(payout)  # after commit; a lost message is the sweep's
            except Exception:  # the broker down: the approval stands, the sweep sends it
                publish_errors += 1
            if i % 2 == 0 and len(deposit_ids) < DEPOSITS:
                made = sandbox.receive_deposit(f"{200 + i}.00", sender=DEPOSIT_SENDER)
                deposit_ids.append(made["id"])
            if i == PAYOUTS // 2:
                own_redis.restart()
            if i % 5 == 4 and len(refunded) < REFUNDS:
                # Reject a deposit FlashFX told us about (by webhook) and that is CONFIRMED.
                deposit = (
                    Deposit.objects.filter(
                        flashfx_id__in=deposit_ids, flashfx_status="CONFIRMED", refunds=None
                    )
                    .order_by("id")
                    .first()
                )
                if deposit is not None:
                    refund = refunds.deposit_refund_request(
                        deposit=deposit, amount=deposit.amount, reason_code="duplicate", by=rejecter
                    )
                    refunded[refund.pk] = deposit.amount
                    try:
                        tasks.deposit_refund_enqueue(refund)
                    except Exception:
                        publish_errors += 1
            time.sleep(0.4)
        time.sleep(3)  # the last sends and webhooks, under faults
        # A loaded machine starts replacement workers slowly (the killer waits for each to be
        # ready): the work still on its way keeps being killed under until three kills, or
        # two minutes, have passed.
        deadline = time.monotonic() + 120
        while killer.kills < 3 and time.monotonic() < deadline:
            time.sleep(0.5)
    finally:
        killer.stop.set()
        killer.join(timeout=120)
        sandbox.faults()  # FlashFX healthy again
    chaos_seconds = time.monotonic() - started
    assert killer.kills >= 3, "the run killed workers"
    assert refunded, "deposits arrived by webhook during the run and some were rejected"

    # Recovery: a worker or two up, beat's sweeps with their documented times let pass.
    while sum(w.alive for w in chaos_workers.started) < WORKERS:
        chaos_workers.start()
    client = flashfx_client()
    recovery_started = time.monotonic()

    def settled() -> bool:
        age_stuck_rows()
        sweep()
        sent = Payout.objects.filter(pk__in=[p.pk for p in approved], state=Payout.State.SUBMITTED)
        if sent.count() < len(approved):
            return False
        refunds_left = DepositRefund.objects.filter(pk__in=refunded).exclude(
            state__in=[DepositRefund.State.SENT, DepositRefund.State.COMPLETED]
        )
        if refunds_left.exists():
            return False
        return not InboundEvent.objects.filter(
            accepted=True,
            status__in=[
                InboundEvent.Status.RECEIVED,
                InboundEvent.Status.PROCESSING,
                InboundEvent.Status.FAILED,
                InboundEvent.Status.DEAD,
            ],
        ).exists()

    wait_until(settled, timeout=RECOVERY_SECONDS, interval=3, what="recovery after the chaos")
    # FlashFX's last webhooks (the sandbox retries a failed delivery) and their processing.
    time.sleep(3)
    wait_until(settled, timeout=60, interval=2, what="the last webhooks")
    recovery_seconds = time.monotonic() - recovery_started

    # Every approved payout: exactly one withdrawal at FlashFX, linked here.
    for payout in approved:
        held = client.withdrawals(externalId=payout.code)
        assert len(held) == 1, (payout.code, held)
        fresh = Payout.objects.select_related("withdrawal").get(pk=payout.pk)
        assert fresh.withdrawal is not None and fresh.withdrawal.flashfx_id == held[0].id
        assert held[0].amount == fresh.amount
    assert len(client.withdrawals()) == len(approved)  # and no other

    # Every refund made once: FlashFX's refund amount is what was asked.
    for refund in DepositRefund.objects.filter(pk__in=refunded).select_related("deposit"):
        at_flashfx = client.deposit(refund.deposit.flashfx_id)
        assert at_flashfx.refund_amount == refunded[refund.pk], refund

    # Every deposit and withdrawal FlashFX holds is mirrored with its current status.
    def story(flashfx_id: str) -> list:
        return list(
            InboundEvent.objects.filter(entity_id=flashfx_id).values_list(
                "event", "event_scheduled_at", "status", "outcome"
            )
        )

    for wire in client.deposits():
        mirrored = Deposit.objects.get(flashfx_id=wire.id).flashfx_status
        assert mirrored == wire.status, (wire.id, mirrored, wire.status, story(wire.id))
    for wire in client.withdrawals():
        mirrored = Withdrawal.objects.get(flashfx_id=wire.id).flashfx_status
        assert mirrored == wire.status, (wire.id, mirrored, wire.status, story(wire.id))

    count, head, breaks = audit.verify_chain()
    assert not breaks, breaks

    events = InboundEvent.objects.filter(accepted=True).count()
    # The workers' client logs one line per call (flashfx/call_log.py): the faults they met.
    calls = [line for line in chaos_workers.logs().splitlines() if " flashfx " in line]
    failed_calls = sum(1 for line in calls if " ok " not in line or "attempts=1" not in line)
    print(
        f"\nchaos: {len(approved)} payouts sent once, {len(deposit_ids)} deposits mirrored, "
        f"{len(refunded)} refunds made once, {events} webhooks processed, "
        f"{killer.kills} workers killed, {own_redis.restarts} Redis restart, "
        f"{publish_errors} publishes refused, {failed_calls} FlashFX calls failed, "
        f"audit {count} rows verified; chaos {chaos_seconds:.0f} s, "
        f"recovered in {recovery_seconds:.0f} s"
    )
