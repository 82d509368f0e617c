"""End to end, no manual step: the sandbox posts its own signed webhooks (with its retries) to
the back-office served by `live_server`, whose receiver hands each event to Celery after commit;
Celery runs eagerly here, so the event is processed inline and the mirror follows FlashFX."""

from __future__ import annotations

from decimal import Decimal

import pytest
from harness import wait_until
from processing_support import (
    BSB_RECIPIENT,
    app_pointed_at_sandbox,
    assert_mirror_matches,
    sandbox_client,
)

from backoffice.celery import app
from payments.models import Deposit, Withdrawal
from webhooks.models import InboundEvent

pytestmark = pytest.mark.django_db(transaction=True)

Status = InboundEvent.Status
FAIL_ACC = [
    "withdrawal_initiated",
    "withdrawal_pending",
    "withdrawal_completed",
    "withdrawal_failed",
    "withdrawal_refunded",
]


@pytest.fixture
def eager(settings):
    """Celery runs tasks where they are sent: the receiver's hand-off processes inline."""
    settings.CELERY_TASK_ALWAYS_EAGER = True
    assert app.conf.task_always_eager is True  # the Celery app reads Django's settings live
    yield
    settings.CELERY_TASK_ALWAYS_EAGER = False
    assert app.conf.task_always_eager is False


@pytest.fixture
def app_at_sandbox(sandbox, settings):
    with app_pointed_at_sandbox(sandbox, settings):
        yield sandbox


def send_webhooks_to(sandbox, live_server, secret: str, **config) -> None:
    sandbox.configure(
        webhook_url=live_server.url + "/webhooks/flashfx/",
        webhook_secret=secret,
        **{"webhook_retry_scale": 0.01, **config},
    )


def all_delivered(sandbox) -> list[dict]:
    deliveries = sandbox.deliveries()
    return deliveries if all(d["status"] == "DELIVERED" for d in deliveries) else []


def test_the_sandboxs_own_webhooks_keep_the_mirror_up_to_date(
    live_server, app_at_sandbox, eager, settings
):
    sandbox = app_at_sandbox
    send_webhooks_to(sandbox, live_server, settings.FLASHFX_WEBHOOK_SECRET)
    client = sandbox_client(sandbox)

    deposit = sandbox.receive_deposit("50.25")
    sandbox.wait_for_status("deposit", deposit["id"], "CONFIRMED")
    withdrawal = client.create_withdrawal(
        {
            "amount": Decimal("20.5"),
            "currency": "AUD",
            "externalReference": "e2e FAIL_ACC",
            "recipient": BSB_RECIPIENT,
        }
    )
    sandbox.wait_for_status("withdrawal", withdrawal.id, "REFUNDED")

    wait_until(
        lambda: (
            Deposit.objects.filter(flashfx_id=deposit["id"], flashfx_status="CONFIRMED").exists()
            and Withdrawal.objects.filter(
                flashfx_id=withdrawal.id, flashfx_status="REFUNDED"
            ).exists()
        ),
        what="the mirror to reach the sandbox's final statuses",
    )
    deliveries = wait_until(lambda: all_delivered(sandbox), what="every delivery to land")
    assert_mirror_matches("deposit", client.deposit(deposit["id"]))
    assert_mirror_matches("withdrawal", client.withdrawal(withdrawal.id))
    client.close()

    # One accepted event per delivery, each processed once, in FlashFX's order.
    events = InboundEvent.objects.filter(accepted=True).order_by("id")
    assert {e.request_id for e in events} == {d["requestId"] for d in deliveries}
    assert {(e.status, e.attempts) for e in events} == {(Status.PROCESSED, 1)}
    assert [e.event for e in events if e.entity_id == withdrawal.id] == FAIL_ACC
    assert [e.event for e in events if e.entity_id == deposit["id"]] == [
        "deposit_initiated",
        "deposit_cleared",
    ]
    first = events.get(entity_id=withdrawal.id, event="withdrawal_initiated")
    assert first.outcome.startswith("fetched from FlashFX first")  # new to us: fetched whole
    assert not InboundEvent.objects.filter(accepted=False).exists()


def test_a_delivery_refused_at_first_lands_with_the_sandboxs_retry(
    live_server, app_at_sandbox, eager, settings
):
    """The app's secret is wrong at first (a rotation done in the wrong order): FlashFX's
    first attempt is refused with 401 and quarantined; once the secret is right, FlashFX's
    retry of the same request (same id, same bytes) is accepted and applied."""
    sandbox = app_at_sandbox
    right = settings.FLASHFX_WEBHOOK_SECRET
    settings.FLASHFX_WEBHOOK_SECRET = "not-the-endpoints-secret"
    # Retries after 0.6 s, 6 s and 60 s: time enough to put the secret right in between.
    send_webhooks_to(sandbox, live_server, right, webhook_retry_scale=0.1, step_delay_seconds=3600)

    deposit = sandbox.receive_deposit("12.34")  # held: one event, deposit_initiated
    refused = wait_until(
        lambda: InboundEvent.objects.filter(reason=InboundEvent.Reason.BAD_SIGNATURE).first(),
        what="the first attempt to be refused",
    )
    settings.FLASHFX_WEBHOOK_SECRET = right

    delivery = wait_until(
        lambda: (rows := all_delivered(sandbox)) and rows[0], timeout=30, what="the retry"
    )
    wait_until(
        lambda: Deposit.objects.filter(flashfx_id=deposit["id"]).exists(),
        what="the deposit in the mirror",
    )
    codes = [attempt["statusCode"] for attempt in delivery["attemptLog"]]
    assert codes[0] == 401 and codes[-1] == 200 and set(codes[:-1]) == {401}, codes
    accepted = InboundEvent.objects.get(accepted=True)
    assert accepted.request_id == refused.request_id == delivery["requestId"]
    assert bytes(accepted.body) == bytes(refused.body)
    assert (accepted.status, accepted.event) == (Status.PROCESSED, "deposit_initiated")
    assert refused.status == Status.QUARANTINED  # kept, visibly, never processed
    client = sandbox_client(sandbox)
    assert_mirror_matches("deposit", client.deposit(deposit["id"]))
    client.close()
