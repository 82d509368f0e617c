"""International payments through the services against the sandbox with the back-office's
real client: the live quote, validation before saving, maker-checker bound to the amounts (not
the rate), the fresh quote's difference, exactly-once createPayment (a task run twice, no
answer settled by reading back by externalId before any resend, a refusal), and FlashFX's news
through the payments mirror to CLOSED."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone
from payment_order_support import (
    approve_payment,
    payment_calls,
    payments_at_flashfx,
    propose_payment,
    recipient_abroad,
)
from payout_support import fund, recipient_at_flashfx, sender_at_flashfx
from refund_support import app_at, log_calls
from staff import make_staff

from mirrors.client import flashfx_client
from mirrors.registry import registry
from parties.models import Recipient
from payments import tasks
from payments.models import Approval, Payment, PaymentOrder, PaymentOrderOutbox
from payments.selectors import payment_orders as selectors
from payments.services import approvals, payment_orders
from payments.services.payment_orders import PaymentOrderError

pytestmark = pytest.mark.django_db
State = PaymentOrder.State
Box = PaymentOrderOutbox.State


@pytest.fixture
def app_sandbox(sandbox, settings):
    with app_at(sandbox, settings):
        fund(sandbox)
        yield sandbox


@pytest.fixture
def recipient(app_sandbox):
    return recipient_abroad()


@pytest.fixture
def sender(app_sandbox):
    return sender_at_flashfx()


@pytest.fixture
def maker():
    return make_staff("operator")


@pytest.fixture
def approver():
    return make_staff("approver")


def settled(outbox):
    """As if the last claim was long ago: recovery need not wait for a call still running."""
    PaymentOrderOutbox.objects.filter(pk=outbox.pk).update(
        claimed_at=timezone.now() - timedelta(minutes=5)
    )


# --- Quotes -----------------------------------------------------------------------------------


def test_a_quote_gives_the_rate_no_fee_both_amounts_and_how_long_it_holds(app_sandbox):
    quote = payment_orders.quote_for(
        from_currency="AUD", to_currency="EUR", size=Decimal("1000.00"), size_currency="AUD"
    )
    # §5.26: the bid, 0.5 % under the fixture mid rate (EUR 0.6010 per AUD).
    assert quote.rate == (Decimal("0.6010") * Decimal("0.995")).quantize(Decimal("1e-8"))
    assert quote.fee == Decimal("0.00")
    assert quote.from_amount == Decimal("1000.00")
    assert quote.to_amount == (Decimal("1000.00") * quote.rate).quantize(Decimal("0.01"))
    assert quote.quoted_at < quote.expires_at <= quote.quoted_at + timedelta(seconds=120)
    assert not quote.expired()


def test_a_quote_on_the_to_side_gives_the_amount_taken(app_sandbox):
    quote = payment_orders.quote_for(
        from_currency="AUD", to_currency="EUR", size=Decimal("500.00"), size_currency="EUR"
    )
    assert quote.to_amount == Decimal("500.00")
    assert quote.from_amount == (Decimal("500.00") / quote.rate).quantize(Decimal("0.01"))


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"from_currency": "JPY"}, "from_currency"),
        ({"to_currency": "AUD"}, "to_currency"),
        ({"size_currency": "USD"}, "size_currency"),
        ({"size": Decimal("0")}, "size"),
        ({"size": Decimal("1.001")}, "size"),
        ({"size": 10.5}, "size"),
    ],
)
def test_a_quote_for_bad_amounts_is_refused_with_its_field(app_sandbox, changes, field):
    amount = {
        "from_currency": "AUD",
        "to_currency": "EUR",
        "size": Decimal("10.00"),
        "size_currency": "AUD",
    }
    with pytest.raises(PaymentOrderError) as caught:
        payment_orders.quote_for(**{**amount, **changes})
    assert caught.value.field == field


def test_flashfx_refusing_a_quote_says_why(app_sandbox):
    with pytest.raises(PaymentOrderError) as caught:
        payment_orders.quote_for(
            from_currency="AUD", to_currency="XAU", size=Decimal("10.00"), size_currency="AUD"
        )
    assert "FlashFX gives no quote" in str(caught.value) and "XAU" in str(caught.value)


# --- Creating ---------------------------------------------------------------------------------


def test_an_order_keeps_the_makers_quote_and_asks_for_approval_bound_to_the_amounts(
    maker, recipient, sender
):
    order = propose_payment(maker, recipient=recipient, sender=sender)
    assert order.state == State.AWAITING_APPROVAL
    assert order.code.startswith("PM-") and len(order.code) == 13
    assert order.quoted_from_amount == Decimal("1000.00") and order.quoted_fee == 0
    assert order.quoted_to_amount > 0 and order.quote_expires_at > order.quoted_at
    approval = order.approval
    assert approval.action == payment_orders.ACTION
    assert approval.permission == "payments.approve_payment"
    payload = approval.payload
    assert payload["size"] == "1000.00" and payload["size_currency"] == "AUD"
    assert payload["recipient"]["iban"] == "DE89370400440532013000"
    assert "rate" not in str(payload).lower()  # bound to the amounts, not to a rate
    assert order.events.get().to_state == State.AWAITING_APPROVAL


def test_the_company_itself_may_send_it(maker, recipient):
    order = propose_payment(maker, recipient=recipient)
    assert order.sender is None and order.sub_client is None
    assert "senderId" not in payment_orders.payment_input(order)


def test_tiers_apply_to_the_aud_amount(maker, recipient, settings):
    settings.PAYOUT_APPROVAL_TIERS = "5000:1,*:2"
    small = propose_payment(maker, recipient=recipient, size="1000.00")
    # EUR 4000 takes about AUD 6,690: the second tier.
    large = propose_payment(maker, recipient=recipient, size="4000.00", size_currency="EUR")
    assert small.approval.required == 1
    assert large.approval.required == 2
    # Paid from US dollars: no AUD value an approver could check, so the highest tier.
    from_usd = propose_payment(
        maker, recipient=recipient, size="10.00", size_currency="USD", from_currency="USD"
    )
    assert from_usd.approval.required == 2


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"reference": ""}, "reference"),
        ({"reference": "N/A"}, "reference"),
        ({"reference": "Caf\u00e9"}, "reference"),
        ({"reason": "BRIBE"}, "reason"),
        ({"source_of_funds": ""}, "source_of_funds"),
    ],
)
def test_bad_input_is_refused_with_its_field_and_nothing_saved(maker, recipient, changes, field):
    with pytest.raises(PaymentOrderError) as caught:
        propose_payment(maker, recipient=recipient, **changes)
    assert caught.value.field == field
    assert not PaymentOrder.objects.exists()
    assert not Approval.objects.exists()


def test_a_local_aud_account_is_sent_a_payout_not_a_payment(maker, app_sandbox):
    local = recipient_at_flashfx()
    with pytest.raises(PaymentOrderError) as caught:
        propose_payment(
            maker,
            recipient=local,
            quote=payment_orders.quote_for(
                from_currency="AUD", to_currency="EUR", size=Decimal("10"), size_currency="AUD"
            ),
        )
    assert caught.value.field == "recipient"


def test_an_expired_or_mismatched_quote_is_refused(maker, recipient):
    quote = payment_orders.quote_for(
        from_currency="AUD", to_currency="EUR", size=Decimal("1000.00"), size_currency="AUD"
    )
    with pytest.raises(PaymentOrderError, match="expired"):
        propose_payment(
            maker,
            recipient=recipient,
            quote=replace(quote, expires_at=timezone.now() - timedelta(seconds=1)),
        )
    with pytest.raises(PaymentOrderError, match="other amounts"):
        propose_payment(maker, recipient=recipient, size="999.00", quote=quote)
    assert not PaymentOrder.objects.exists()


def test_a_member_without_the_permission_cannot_start_one(recipient):
    viewer = make_staff("viewer")
    with pytest.raises(PaymentOrderError, match="permission"):
        propose_payment(viewer, recipient=recipient)


# --- Approving --------------------------------------------------------------------------------


def test_the_maker_never_approves_and_another_approver_does(maker, approver, recipient):
    order = propose_payment(maker, recipient=recipient)
    assert "You started" in payment_orders.approval_blocker(order, maker)
    assert payment_orders.approval_blocker(order, approver) is None
    with pytest.raises(PaymentOrderError):
        payment_orders.payment_order_approve(order=order, by=maker)
    order, outbox = approve_payment(order, approver)
    assert outbox.state == Box.APPROVED
    assert outbox.request["externalId"] == outbox.request["idempotencyKey"] == order.code
    assert "quoteId" not in outbox.request
    assert "approved" in payment_orders.approval_blocker(order, approver).lower()


def test_the_approver_sees_a_fresh_quote_and_the_difference(maker, approver, recipient):
    order = propose_payment(maker, recipient=recipient)
    fresh = payment_orders.order_quote(order)
    moved = replace(fresh, rate=fresh.rate + Decimal("0.01"), to_amount=fresh.to_amount + 10)
    diff = payment_orders.quote_difference(order, moved)
    assert diff.rate == moved.rate - order.quoted_rate
    assert diff.to_amount == moved.to_amount - order.quoted_to_amount
    assert diff.from_amount == Decimal("0.00")
    assert diff.rate_percent > 0


def test_a_recipient_changed_after_asking_is_asked_about_again(maker, approver, recipient):
    order = propose_payment(maker, recipient=recipient)
    first = order.approval
    Recipient.objects.filter(pk=recipient.pk).update(iban="DE02120300000000202051")
    with pytest.raises(PaymentOrderError, match="asked for again"):
        payment_orders.payment_order_approve(order=order, by=approver)
    order.refresh_from_db()
    first.refresh_from_db()
    assert order.state == State.AWAITING_APPROVAL
    assert first.state == Approval.State.CANCELLED
    assert order.approval.payload["recipient"]["iban"] == "DE02120300000000202051"


def test_decline_and_cancel_close_it(maker, approver, recipient):
    declined = propose_payment(maker, recipient=recipient)
    declined = payment_orders.payment_order_decline(order=declined, by=approver, note="no")
    assert declined.state == State.DECLINED and declined.error_message == "no"
    cancelled = propose_payment(maker, recipient=recipient)
    with pytest.raises(PaymentOrderError):
        payment_orders.payment_order_cancel(order=cancelled, by=approver)
    cancelled = payment_orders.payment_order_cancel(order=cancelled, by=maker)
    assert cancelled.state == State.CANCELLED
    assert cancelled.approval.state == Approval.State.CANCELLED


def test_an_approval_past_its_time_expires_the_order(maker, recipient):
    order = propose_payment(maker, recipient=recipient)
    Approval.objects.filter(pk=order.approval_id).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    assert approvals.expire_due() == 1
    order.refresh_from_db()
    assert order.state == State.EXPIRED


# --- Sending, exactly once --------------------------------------------------------------------


def test_an_approved_order_is_sent_once_with_its_code_as_key_and_linked(
    maker, approver, recipient, sender, caplog
):
    log_calls(caplog)
    order, outbox = approve_payment(
        propose_payment(maker, recipient=recipient, sender=sender), approver
    )
    assert tasks.payment_order_submit.run(outbox.pk) == Box.SUBMITTED
    assert tasks.payment_order_submit.run(outbox.pk) == Box.SUBMITTED  # a second run: nothing
    assert len(payment_calls(caplog)) == 1
    order.refresh_from_db()
    outbox.refresh_from_db()
    assert order.state == State.SUBMITTED and outbox.attempts == 1
    [at_flashfx] = payments_at_flashfx(order.code)
    assert order.payment.flashfx_id == at_flashfx.id
    assert order.payment.flashfx_status == "OPEN"
    assert order.payment.from_amount == Decimal("1000.00")
    states = [e.to_state for e in order.events.all()]
    assert states == ["awaiting_approval", "approved", "submitting", "submitted"]


def test_no_answer_is_settled_by_reading_back_before_any_resend(
    maker, approver, recipient, app_sandbox, caplog
):
    log_calls(caplog)
    order, outbox = approve_payment(propose_payment(maker, recipient=recipient), approver)
    # FlashFX creates the payment, then the connection drops before its answer arrives.
    app_sandbox.faults(commit_then_drop=1, operations=["createPayment"], limit=1)
    assert payment_orders.payment_order_submit(outbox.pk) == "unknown"
    order.refresh_from_db()
    assert order.state == State.SUBMITTING and order.payment is None
    assert payment_orders.payment_order_submit(outbox.pk) == Box.SUBMITTING  # a no-op
    assert payment_orders.payment_order_recover(outbox.pk) == "wait"  # the call may still run
    settled(outbox)
    assert payment_orders.payment_order_recover(outbox.pk) == Box.SUBMITTED
    assert len(payments_at_flashfx(order.code)) == 1
    assert len(payment_calls(caplog)) == 1
    order.refresh_from_db()
    assert order.state == State.SUBMITTED and order.payment is not None


def test_no_answer_and_nothing_at_flashfx_sends_the_same_request_again(
    maker, approver, recipient, app_sandbox
):
    order, outbox = approve_payment(propose_payment(maker, recipient=recipient), approver)
    app_sandbox.faults(http_500=1, operations=["createPayment"], limit=1)
    assert payment_orders.payment_order_submit(outbox.pk) == "unknown"  # a 500 proves nothing
    assert payments_at_flashfx(order.code) == []
    settled(outbox)
    assert payment_orders.payment_order_recover(outbox.pk) == Box.SUBMITTED
    outbox.refresh_from_db()
    assert outbox.attempts == 2
    assert len(payments_at_flashfx(order.code)) == 1


def test_a_refusal_is_submit_failed_with_flashfxs_code(
    maker, approver, recipient, app_sandbox, settings
):
    settings.PAYOUT_APPROVAL_TIERS = "*:1"
    order, outbox = approve_payment(
        propose_payment(maker, recipient=recipient, size="900000.00"), approver
    )
    assert payment_orders.payment_order_submit(outbox.pk) == Box.SUBMIT_FAILED
    order.refresh_from_db()
    assert order.state == State.SUBMIT_FAILED and order.error_code == "INSUFFICIENT_FUNDS"
    assert payments_at_flashfx(order.code) == []


def test_a_recipient_changed_after_approval_sends_nothing(maker, approver, recipient, caplog):
    log_calls(caplog)
    order, outbox = approve_payment(propose_payment(maker, recipient=recipient), approver)
    Recipient.objects.filter(pk=recipient.pk).update(bic="DEUTDEFFXXX")
    assert payment_orders.payment_order_submit(outbox.pk) == Box.VOIDED
    order.refresh_from_db()
    assert order.state == State.AWAITING_APPROVAL
    assert payment_calls(caplog) == []


def test_flashfxs_news_follows_the_payment_to_closed(maker, approver, recipient, app_sandbox):
    order, outbox = approve_payment(propose_payment(maker, recipient=recipient), approver)
    payment_orders.payment_order_submit(outbox.pk)
    order.refresh_from_db()
    response = app_sandbox.advance("payments", order.payment.flashfx_id, "CLOSED")
    assert response.status_code == 200, response.text
    wire = flashfx_client().payment(order.payment.flashfx_id)
    registry.get("payments").apply(wire, observed_at=timezone.now(), source="sync")
    payment = Payment.objects.get(pk=order.payment_id)
    assert payment.flashfx_status == "CLOSED"
    assert payment.to_amount == order.quoted_to_amount  # the rate did not move in the sandbox
    order = selectors.payment_order_get(code=order.code)
    timeline = selectors.payment_order_timeline(order=order)
    assert [e.title for e in timeline if e.kind == "ours"] == [
        "Awaiting approval",
        "Approved",
        "Submitting",
        "Submitted",
    ]
    assert "FlashFX: OPEN \u2192 CLOSED" in [e.title for e in timeline if e.kind == "flashfx"]


def test_the_list_pages_by_keyset_and_filters_by_state(maker, approver, recipient):
    orders = [propose_payment(maker, recipient=recipient, reference=f"INV {n}") for n in range(3)]
    payment_orders.payment_order_decline(order=orders[0], by=approver)
    first = selectors.payment_order_list(limit=2)
    assert [o.code for o in first.rows] == [orders[2].code, orders[1].code]
    second = selectors.payment_order_list(limit=2, after=first.next_cursor)
    assert [o.code for o in second.rows] == [orders[0].code] and second.next_cursor is None
    declined = selectors.payment_order_list(state=State.DECLINED)
    assert [o.code for o in declined.rows] == [orders[0].code]
    assert [o.code for o in selectors.payment_orders_waiting_for(user=approver)] == [
        orders[1].code,
        orders[2].code,
    ]
    assert not selectors.payment_orders_waiting_for(user=maker).exists()


def test_a_payment_mirrored_before_our_reply_links_the_order(maker, approver, recipient):
    """A webhook or a sync brought the payment first: the order links to it and is never
    sent again."""
    order, outbox = approve_payment(propose_payment(maker, recipient=recipient), approver)
    created = flashfx_client().create_payment(
        payment_orders._wire(outbox.request)  # as if our earlier call had gone through
    )
    registry.get("payments").apply(created, observed_at=timezone.now(), source="webhook")
    order.refresh_from_db()
    assert order.payment.flashfx_id == created.id
    assert payment_orders.payment_order_submit(outbox.pk) == Box.SUBMITTED
    assert len(payments_at_flashfx(order.code)) == 1


def test_the_sweep_sends_what_a_lost_message_left(maker, approver, recipient):
    order, outbox = approve_payment(propose_payment(maker, recipient=recipient), approver)
    PaymentOrderOutbox.objects.filter(pk=outbox.pk).update(
        created_at=timezone.now() - timedelta(minutes=5)
    )
    approved, submitting = payment_orders.payment_orders_due(stuck_after=tasks.PAYOUT_STUCK_AFTER)
    assert approved == [outbox.pk] and submitting == []
