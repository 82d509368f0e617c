"""Payouts under maker-checker approval (payments/services/payouts.py, payout_policy.py): what
is checked before saving, the tiers, who may approve, distinct approvers, expiry, and an edit
that voids every signature. No call to FlashFX happens in any of these."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission
from django.core.exceptions import ImproperlyConfigured
from django.utils import timezone
from staff import make_staff

from backoffice.models import AuditEvent
from parties.models import Recipient, Sender, SubClient
from payments import tasks
from payments.models import Approval, Payout, PayoutEvent, PayoutOutbox
from payments.selectors.payouts import payouts_waiting_for
from payments.services import approvals, payouts
from payments.services.payout_policy import parse_tiers, payout_policy
from payments.services.payouts import PayoutError

pytestmark = pytest.mark.django_db
State = Payout.State


@pytest.fixture
def recipient():
    return Recipient.objects.create(
        flashfx_id="a" * 24,
        account_id_type="BSB",
        currency="AUD",
        display_name="Mia Ng",
        first_name="Mia",
        last_name="Ng",
        bsb="062000",
        account_no="12345678",
    )


@pytest.fixture
def sender():
    return Sender.objects.create(flashfx_id="b" * 24, company_name="Demo Company Pty Ltd")


@pytest.fixture
def maker():
    return make_staff("operator")


@pytest.fixture
def alice():
    return make_staff("approver", "alice")


@pytest.fixture
def bob():
    return make_staff("approver", "bob")


def propose(maker, recipient, sender, amount="250.00", reference="INV 1042", **kw):
    return payouts.payout_create(
        by=maker,
        recipient=recipient,
        sender=sender,
        amount=Decimal(amount),
        reference=reference,
        reason=kw.pop("reason", "SERVICES"),
        **kw,
    )


# --- Checked before anything is saved ---------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"amount": "0"}, "amount", "more than zero"),
        ({"amount": "-1"}, "amount", "more than zero"),
        ({"amount": "1.005"}, "amount", "two decimal places"),
        ({"reference": "x" * 19}, "reference", "At most 18 characters"),
        ({"reference": "Café 12"}, "reference", "ASCII"),
        ({"reference": "N/A"}, "reference", "placeholder"),
        ({"reference": "  "}, "reference", "Give a reference"),
        ({"reason": "BRIBE"}, "reason", "reason"),
        ({"currency": "USD"}, "currency", "Payouts are in AUD"),
    ],
)
def test_a_payout_is_checked_before_it_is_saved(maker, recipient, sender, changes, field, message):
    args = {"amount": "250.00", "reference": "INV 1042"} | changes
    amount = args.pop("amount")
    with pytest.raises(PayoutError, match=message) as refused:
        propose(maker, recipient, sender, amount=amount, **args)
    assert refused.value.field == field
    assert not Payout.objects.exists() and not Approval.objects.exists()


def test_eighteen_characters_is_the_direct_entry_limit_itself(maker, recipient, sender):
    assert propose(maker, recipient, sender, reference="x" * 18).reference == "x" * 18


def test_the_sender_is_one_of_a_sender_or_a_sub_client(maker, recipient, sender):
    sub_client = SubClient.objects.create(flashfx_id="c" * 24, full_name="Kim's Bakery")
    with pytest.raises(PayoutError, match="not both"):
        propose(maker, recipient, sender, sub_client=sub_client)
    with pytest.raises(PayoutError, match="Payment from"):
        propose(maker, recipient, None)
    assert propose(maker, recipient, None, sub_client=sub_client).sub_client == sub_client


def test_only_local_aud_recipients_take_a_payout(maker, sender):
    iban = Recipient.objects.create(
        flashfx_id="d" * 24, account_id_type="IBAN", currency="EUR", iban="DE89370400440532013000"
    )
    with pytest.raises(PayoutError, match="international payment"):
        propose(maker, iban, sender)


@pytest.mark.parametrize("role", ["viewer", "approver", "compliance", "admin", None])
def test_only_members_who_may_start_payouts_can(role, recipient, sender):
    with pytest.raises(PayoutError, match="permission to start payouts"):
        propose(make_staff(role), recipient, sender)


# --- The request, bound to what will be sent --------------------------------------------------


def test_a_payout_waits_for_approval_bound_to_exactly_what_will_be_sent(maker, recipient, sender):
    payout = propose(maker, recipient, sender, amount="250.00")
    assert payout.state == State.AWAITING_APPROVAL
    assert payout.code.startswith("PO-") and len(payout.code) == 13
    approval = payout.approval
    assert approval.permission == "payments.approve_payout" and approval.required == 1
    assert approval.payload == {
        "operation": "createWithdrawal",
        "payout": payout.code,
        "amount": "250.00",
        "currency": "AUD",
        "recipient": {
            "id": recipient.flashfx_id,
            "name": "Mia Ng",
            "account_id_type": "BSB",
            "bsb": "062000",
            "account_no": "12345678",
            "payid": "",
        },
        "reference": "INV 1042",
        "reason": "SERVICES",
        "sender": {"id": sender.flashfx_id, "name": "Demo Company Pty Ltd"},
        "sub_client": None,
    }
    assert approval.payload_hash == approvals.payload_hash(approval.payload)
    assert list(payout.events.values_list("from_state", "to_state")) == [("", "awaiting_approval")]
    assert AuditEvent.objects.filter(action="payout.requested", actor=maker.username).count() == 1


# --- The policy ---------------------------------------------------------------------------------


def test_the_tiers_decide_how_many_approvers(maker, recipient, sender, settings):
    settings.PAYOUT_APPROVAL_TIERS = "100.00:1, 1000.00:2, *:3"
    required = {
        amount: propose(maker, recipient, sender, amount=amount).approval.required
        for amount in ("100.00", "100.01", "1000.00", "5000.00")
    }
    assert required == {"100.00": 1, "100.01": 2, "1000.00": 2, "5000.00": 3}
    assert payout_policy().describe() == [
        "up to AUD 100.00: one approver",
        "up to AUD 1000.00: 2 approvers",
        "above AUD 1000.00: 3 approvers",
    ]


@pytest.mark.parametrize(
    "text", ["", "10000:1", "abc:1,*:2", "100:0,*:1", "*:1,100:2", "200:1,100:1,*:2"]
)
def test_a_tier_setting_that_makes_no_sense_is_refused(text):
    with pytest.raises(ImproperlyConfigured, match="PAYOUT_APPROVAL_TIERS"):
        parse_tiers(text)


# --- Who approves -------------------------------------------------------------------------------


def test_the_maker_never_approves_their_own_payout(maker, recipient, sender):
    payout = propose(maker, recipient, sender)
    maker.user_permissions.add(Permission.objects.get(codename="approve_payout"))
    maker = type(maker).objects.get(pk=maker.pk)  # fresh permission cache
    with pytest.raises(PayoutError, match="other members must approve"):
        payouts.payout_approve(payout=payout, by=maker)
    assert Payout.objects.get().state == State.AWAITING_APPROVAL
    assert not PayoutOutbox.objects.exists()


def test_one_approval_up_to_the_first_tier_writes_the_outbox_and_enqueues_after_commit(
    maker, recipient, sender, alice, django_capture_on_commit_callbacks, monkeypatch
):
    sent = []
    monkeypatch.setattr(tasks.payout_submit, "delay", lambda *a: sent.append(a))
    payout = propose(maker, recipient, sender, amount="9000.00")
    with django_capture_on_commit_callbacks(execute=True):
        payouts.payout_approve(payout=payout, by=alice)
        tasks.payout_enqueue(Payout.objects.get())
    payout.refresh_from_db()
    assert payout.state == State.APPROVED
    outbox = PayoutOutbox.objects.get()
    assert (outbox.state, outbox.attempts, outbox.payload_hash) == (
        "approved",
        0,
        payout.approval.payload_hash,
    )
    assert outbox.request == {
        "amount": "9000.00",
        "currency": "AUD",
        "recipientId": recipient.flashfx_id,
        "senderId": sender.flashfx_id,
        "externalReference": "INV 1042",
        "externalId": payout.code,
        "idempotencyKey": payout.code,
        "reason": "SERVICES",
    }
    assert sent == [(outbox.pk,)]
    assert AuditEvent.objects.filter(action="payout.approved", actor=alice.username).exists()


def test_above_the_tier_two_distinct_approvers_are_needed(maker, recipient, sender, alice, bob):
    payout = propose(maker, recipient, sender, amount="10000.01")
    assert payout.approval.required == 2
    payouts.payout_approve(payout=payout, by=alice)
    payout.refresh_from_db()
    assert payout.state == State.AWAITING_APPROVAL  # one of two
    assert not PayoutOutbox.objects.exists()
    with pytest.raises(PayoutError, match="already approved"):
        payouts.payout_approve(payout=payout, by=alice)  # the same approver twice
    assert payouts.approval_blocker(payout, alice) == (
        "You have approved it; it waits for another member."
    )
    payouts.payout_approve(payout=payout, by=bob)
    payout.refresh_from_db()
    assert payout.state == State.APPROVED
    assert [u.username for u in approvals.approval_signers(payout.approval)] == ["alice", "bob"]
    assert PayoutOutbox.objects.count() == 1
    assert AuditEvent.objects.filter(action="approval.signed").count() == 2


def test_a_viewer_or_an_operator_cannot_approve(maker, recipient, sender):
    payout = propose(maker, recipient, sender)
    for role in ("viewer", "operator"):
        with pytest.raises(PayoutError, match="permission"):
            payouts.payout_approve(payout=payout, by=make_staff(role, f"x-{role}"))
    assert Payout.objects.get().state == State.AWAITING_APPROVAL


def test_a_declined_payout_is_closed_with_the_approvers_words(maker, recipient, sender, alice):
    payout = propose(maker, recipient, sender)
    payouts.payout_decline(payout=payout, by=alice, note="Wrong invoice")
    payout.refresh_from_db()
    assert (payout.state, payout.error_message) == (State.DECLINED, "Wrong invoice")
    with pytest.raises(PayoutError, match="declined"):
        payouts.payout_approve(payout=payout, by=make_staff("approver", "carol"))
    assert not PayoutOutbox.objects.exists()


def test_a_payout_not_approved_in_time_expires(maker, recipient, sender, alice, settings):
    settings.PAYOUT_APPROVAL_TTL_HOURS = 2
    payout = propose(maker, recipient, sender)
    assert payout.approval.expires_at - payout.approval.requested_at == timedelta(hours=2)
    Approval.objects.filter(pk=payout.approval_id).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    with pytest.raises(PayoutError, match="expired"):
        payouts.payout_approve(payout=payout, by=alice)
    payout.refresh_from_db()
    assert payout.state == State.EXPIRED
    assert not PayoutOutbox.objects.exists()


def test_the_sweep_expires_payouts_waiting_too_long(maker, recipient, sender):
    payout = propose(maker, recipient, sender)
    Approval.objects.filter(pk=payout.approval_id).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    tasks.payments_sweep.apply()
    assert Payout.objects.get().state == State.EXPIRED
    assert PayoutEvent.objects.filter(to_state="expired", actor=None).count() == 1


# --- Edits void the signatures ----------------------------------------------------------------


def test_an_edit_voids_every_signature_and_asks_again(maker, recipient, sender, alice, bob):
    payout = propose(maker, recipient, sender, amount="20000.00")
    first = payout.approval
    payouts.payout_approve(payout=payout, by=alice)  # one of two
    payout = payouts.payout_edit(payout=payout, by=maker, amount=Decimal("20500.00"))
    first.refresh_from_db()
    assert first.state == Approval.State.CANCELLED
    assert payout.approval != first and payout.approval.signatures.count() == 0
    assert payout.approval.payload["amount"] == "20500.00"
    # Alice must sign the new one too: her earlier signature no longer counts.
    payouts.payout_approve(payout=payout, by=bob)
    payout.refresh_from_db()
    assert payout.state == State.AWAITING_APPROVAL
    payouts.payout_approve(payout=payout, by=alice)
    payout.refresh_from_db()
    assert payout.state == State.APPROVED
    assert PayoutOutbox.objects.get().request["amount"] == "20500.00"
    assert AuditEvent.objects.filter(action="approval.cancelled").count() == 1
    assert AuditEvent.objects.filter(action="payout.edited", actor=maker.username).count() == 1


def test_an_edit_that_changes_nothing_keeps_the_approval(maker, recipient, sender, alice):
    payout = propose(maker, recipient, sender, amount="20000.00")
    payouts.payout_approve(payout=payout, by=alice)
    same = payouts.payout_edit(payout=payout, by=maker, amount=Decimal("20000"))
    assert same.approval_id == payout.approval_id
    assert same.approval.signatures.count() == 1


def test_only_the_maker_edits_and_only_while_awaiting_approval(maker, recipient, sender, alice):
    payout = propose(maker, recipient, sender)
    with pytest.raises(PayoutError, match="Only the member who started"):
        payouts.payout_edit(payout=payout, by=make_staff("operator", "other"), reference="X")
    with pytest.raises(PayoutError, match="At most 18"):
        payouts.payout_edit(payout=payout, by=maker, reference="y" * 19)
    payouts.payout_approve(payout=payout, by=alice)
    with pytest.raises(PayoutError, match="only one awaiting approval can be changed"):
        payouts.payout_edit(payout=payout, by=maker, reference="Changed")
    assert Payout.objects.get().reference == "INV 1042"


def test_recipient_details_changed_before_approval_ask_again_instead(
    maker, recipient, sender, alice
):
    payout = propose(maker, recipient, sender)
    first = payout.approval
    Recipient.objects.filter(pk=recipient.pk).update(account_no="99999999")
    with pytest.raises(PayoutError, match="asked for again"):
        payouts.payout_approve(payout=payout, by=alice)
    payout.refresh_from_db()
    assert payout.state == State.AWAITING_APPROVAL
    assert payout.approval != first
    assert payout.approval.payload["recipient"]["account_no"] == "99999999"
    payouts.payout_approve(payout=payout, by=alice)  # now what they see is what is bound
    assert Payout.objects.get().state == State.APPROVED


def test_the_maker_can_withdraw_a_payout_awaiting_approval(maker, recipient, sender, alice):
    payout = propose(maker, recipient, sender)
    with pytest.raises(PayoutError, match="Only the member who started"):
        payouts.payout_cancel(payout=payout, by=alice)
    payouts.payout_cancel(payout=payout, by=maker)
    payout.refresh_from_db()
    assert payout.state == State.CANCELLED
    assert payout.approval.state == Approval.State.CANCELLED


# --- Waiting for my approval, and bulk approve ------------------------------------------------


def test_waiting_for_my_approval_lists_only_what_i_may_approve(
    maker, recipient, sender, alice, bob
):
    mine_to_sign = propose(maker, recipient, sender, amount="100.00")
    signed_by_me = propose(maker, recipient, sender, amount="20000.00")
    payouts.payout_approve(payout=signed_by_me, by=alice)
    declined = propose(maker, recipient, sender, amount="300.00")
    payouts.payout_decline(payout=declined, by=bob)
    expired = propose(maker, recipient, sender, amount="400.00")
    Approval.objects.filter(pk=expired.approval_id).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    assert [p.code for p in payouts_waiting_for(user=alice)] == [mine_to_sign.code]
    assert {p.code for p in payouts_waiting_for(user=bob)} == {mine_to_sign.code, signed_by_me.code}
    assert list(payouts_waiting_for(user=maker)) == []  # operators approve nothing


def test_bulk_approve_approves_only_what_the_member_may_approve_one_by_one(
    maker, recipient, sender, alice
):
    ok = propose(maker, recipient, sender, amount="100.00")
    declined = propose(maker, recipient, sender, amount="200.00")
    payouts.payout_decline(payout=declined, by=make_staff("approver", "carol"))
    done, refused = payouts.payouts_approve_bulk(
        codes=[ok.code, declined.code, "PO-NOSUCHCODE"], by=alice
    )
    assert [p.code for p in done] == [ok.code]
    assert refused == [
        f"{declined.code}: This payout is declined.",
        "PO-NOSUCHCODE: no such payout.",
    ]
    assert Payout.objects.get(pk=ok.pk).state == State.APPROVED
    # The maker's own bulk approve approves nothing of theirs.
    done, refused = payouts.payouts_approve_bulk(codes=[declined.code], by=maker)
    assert done == [] and len(refused) == 1
