"""The payout approval policy changed in the app: one admin asks, a second approves, and only
then does it apply (payments/services/payout_policy.py, /payouts/policy/)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.db import connection
from django.urls import reverse
from harness import race
from staff import make_staff, sign_in

from backoffice.models import AuditEvent
from parties.models import Recipient, Sender
from payments.models import Approval, PayoutPolicyVersion
from payments.services import approvals, payouts
from payments.services.approvals import ApprovalError
from payments.services.payout_policy import (
    PolicyError,
    parse_tiers,
    payout_policy,
    payout_policy_propose,
)

pytestmark = pytest.mark.django_db

PAGE = reverse("payments:payout-policy")


@pytest.fixture(autouse=True)
def settings_policy(settings):
    settings.PAYOUT_APPROVAL_TIERS = "10000.00:1,*:2"
    settings.PAYOUT_APPROVAL_TTL_HOURS = 24


@pytest.fixture
def ada():
    return make_staff("admin", "ada")


@pytest.fixture
def grace():
    return make_staff("admin", "grace")


def ask(by, tiers="500.00:1,*:2", ttl_hours=12) -> Approval:
    return payout_policy_propose(tiers=parse_tiers(tiers), ttl_hours=ttl_hours, by=by)


def test_a_change_applies_only_once_a_second_admin_approves_it(ada, grace):
    approval = ask(ada)
    assert payout_policy().describe() == [
        "up to AUD 10000.00: one approver",
        "above AUD 10000.00: 2 approvers",
    ]
    assert approval.payload == {
        "tiers": "500.00:1,*:2",
        "ttl_hours": 12,
        "replaces": {"tiers": "10000.00:1,*:2", "ttl_hours": 24},
    }
    with pytest.raises(ApprovalError):
        approvals.approval_approve(approval=approval, by=ada)  # not the one who asked
    approvals.approval_approve(approval=approval, by=grace)

    policy = payout_policy()
    assert policy.describe() == ["up to AUD 500.00: one approver", "above AUD 500.00: 2 approvers"]
    assert policy.ttl_hours == 12
    version = PayoutPolicyVersion.objects.get()
    assert (version.approval.requested_by, version.approval.decided_by) == (ada, grace)
    event = AuditEvent.objects.get(action="payout.policy.changed")
    assert event.actor == "grace" and event.details["proposed_by"] == "ada"
    assert event.before == {"tiers": "10000.00:1,*:2", "ttl_hours": 24}
    assert event.after == {"tiers": "500.00:1,*:2", "ttl_hours": 12}


def test_payouts_submitted_after_the_change_follow_it(ada, grace):
    recipient = Recipient.objects.create(
        flashfx_id="a" * 24,
        account_id_type="BSB",
        currency="AUD",
        display_name="Mia Ng",
        first_name="Mia",
        last_name="Ng",
        bsb="062000",
        account_no="12345678",
    )
    sender = Sender.objects.create(flashfx_id="b" * 24, company_name="Demo Company Pty Ltd")
    maker = make_staff("operator")

    def required(amount: str) -> int:
        payout = payouts.payout_create(
            by=maker,
            recipient=recipient,
            sender=sender,
            amount=Decimal(amount),
            reference="INV 1",
            reason="SERVICES",
        )
        return payout.approval.required

    before = required("600.00")
    approvals.approval_approve(approval=ask(ada), by=grace)
    assert (before, required("600.00")) == (1, 2)


def test_a_declined_change_leaves_the_policy_as_it_was(ada, grace):
    approvals.approval_decline(approval=ask(ada), by=grace, note="too strict for refunds week")
    assert not PayoutPolicyVersion.objects.exists()
    assert payout_policy().tiers == parse_tiers("10000.00:1,*:2")


def test_one_change_waits_at_a_time(ada, grace):
    ask(ada)
    with pytest.raises(PolicyError, match="waiting for a second admin"):
        ask(grace, tiers="100.00:1,*:3")


def test_the_policy_in_force_is_no_change(ada):
    with pytest.raises(PolicyError, match="nothing to change"):
        ask(ada, tiers="10000.00:1,*:2", ttl_hours=24)
    assert not Approval.objects.exists()


@pytest.mark.parametrize("ttl_hours", [0, 24 * 14 + 1])
def test_approvals_expire_within_two_weeks(ada, ttl_hours):
    with pytest.raises(PolicyError, match="1 to 336 hours"):
        ask(ada, ttl_hours=ttl_hours)


def test_only_admins_approve_a_change(ada):
    approval = ask(ada)
    with pytest.raises(ApprovalError):
        approvals.approval_approve(approval=approval, by=make_staff("approver", "alice"))
    assert not PayoutPolicyVersion.objects.exists()


# --- the page ---------------------------------------------------------------------------------


def test_an_admin_asks_for_a_change_on_the_page(client, ada):
    sign_in(client, ada)
    page = client.get(PAGE).content.decode()
    assert "From the server's settings" in page and 'value="10000.00:1,*:2"' in page
    response = client.post(PAGE, {"tiers": "500:1, *:2", "ttl_hours": "12"})
    assert response.status_code == 302 and response.url == PAGE
    approval = Approval.objects.get(action="payout.policy")
    assert approval.payload["tiers"] == "500:1,*:2" and approval.requested_by == ada
    page = client.get(PAGE).content.decode()
    assert "Waiting for a second admin" in page and "Ask a second admin to approve" not in page


def test_tiers_that_make_no_sense_are_refused_on_their_field(client, ada):
    sign_in(client, ada)
    response = client.post(PAGE, {"tiers": "500:1,100:2,*:3", "ttl_hours": "12"})
    assert response.status_code == 200
    assert response.context["form"].errors["tiers"] == ["Tiers: amounts must rise"]
    assert not Approval.objects.exists()


@pytest.mark.parametrize("role", ["viewer", "operator", "approver"])
def test_others_read_the_policy_but_cannot_change_it(client, role):
    sign_in(client, make_staff(role))
    page = client.get(PAGE).content.decode()
    assert "Up to AUD 10000.00: one approver" in page
    assert "Ask a second admin to approve" not in page
    assert client.post(PAGE, {"tiers": "1:1,*:2", "ttl_hours": "1"}).status_code == 403
    assert not Approval.objects.exists()


# --- at the same moment (PostgreSQL: real concurrent transactions) -----------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(
    connection.vendor != "postgresql", reason="PostgreSQL only: real concurrent transactions"
)
def test_two_admins_asking_at_the_same_moment_make_one_pending_change():
    ada, grace = make_staff("admin", "ada"), make_staff("admin", "grace")
    outcomes = race(
        lambda: ask(ada, tiers="500.00:1,*:2"), lambda: ask(grace, tiers="501.00:1,*:2")
    )
    assert sorted(type(o).__name__ for o in outcomes) == ["Approval", "PolicyError"]
    assert Approval.objects.filter(action="payout.policy", state="pending").count() == 1
