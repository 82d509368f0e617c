"""The general maker-checker (payments/services/approvals.py), on an action of the test's own:
bound to a hash of its payload, never approved by the one who asked, nor without the
permission, nor once expired or decided; every step in the audit trail."""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone
from staff import make_staff

from backoffice.models import AuditEvent
from payments.models import Approval
from payments.services import approvals
from payments.services.approvals import ApprovalError

pytestmark = pytest.mark.django_db
ACTION = "test.pay"


@pytest.fixture
def ran():
    """A registered action that records what the maker-checker ran, removed afterwards."""
    calls: list[tuple[str, str]] = []
    approvals.register_action(
        ACTION,
        on_approve=lambda a: calls.append(("approved", a.state)),
        on_close=lambda a: calls.append(("closed", a.state)),
    )
    yield calls
    del approvals.ACTIONS[ACTION]


@pytest.fixture
def maker():
    return make_staff("operator")


@pytest.fixture
def checker():
    return make_staff("approver")


def ask(maker, payload=None, **kwargs):
    return approvals.approval_request(
        action=ACTION,
        payload=payload or {"amount": Decimal("12000.50"), "to": "062000 11112222"},
        summary="Pay 12,000.50 to Pat",
        permission="payments.approve_refund",
        requested_by=maker,
        **kwargs,
    )


def test_a_request_is_bound_to_the_sha256_of_its_canonical_json(ran, maker, settings):
    settings.APPROVAL_TTL_HOURS = 6
    before = timezone.now()
    approval = ask(maker, {"b": 1, "amount": Decimal("12000.50"), "a": "é"})
    assert approval.state == Approval.State.PENDING
    assert approval.payload == {"b": 1, "amount": "12000.50", "a": "é"}
    canonical = '{"a":"é","amount":"12000.50","b":1}'
    assert approval.payload_hash == hashlib.sha256(canonical.encode()).hexdigest()
    assert before + timedelta(hours=6) <= approval.expires_at <= timezone.now() + timedelta(hours=6)
    event = AuditEvent.objects.get(action="approval.requested")
    assert event.actor == maker.username
    assert event.details["payload_hash"] == approval.payload_hash


def test_an_action_nobody_registered_cannot_be_asked_for(maker):
    with pytest.raises(ApprovalError, match="Nothing is registered"):
        approvals.approval_request(
            action="nobody.knows",
            payload={},
            summary="?",
            permission="payments.approve_refund",
            requested_by=maker,
        )


def test_another_member_with_the_permission_approves_and_the_action_runs(ran, maker, checker):
    approval = ask(maker)
    approvals.approval_approve(approval=approval, by=checker)
    approval.refresh_from_db()
    assert approval.state == Approval.State.APPROVED
    assert approval.decided_by == checker and approval.decided_at is not None
    assert ran == [("approved", "approved")]
    assert AuditEvent.objects.get(action="approval.approved").actor == checker.username


def test_the_member_who_asked_cannot_approve_even_with_the_permission(ran, checker):
    approval = ask(checker)  # an approver asking for something
    with pytest.raises(ApprovalError, match="someone else must approve"):
        approvals.approval_approve(approval=approval, by=checker)
    with pytest.raises(ApprovalError, match="someone else"):
        approvals.approval_decline(approval=approval, by=checker)
    assert Approval.objects.get().state == Approval.State.PENDING
    assert ran == []


@pytest.mark.parametrize("role", ["viewer", "operator", "compliance", "admin"])
def test_a_member_without_the_permission_cannot_decide(ran, maker, role):
    approval = ask(maker)
    with pytest.raises(ApprovalError, match="permission"):
        approvals.approval_approve(approval=approval, by=make_staff(role, f"{role}-2"))
    assert Approval.objects.get().state == Approval.State.PENDING


def test_a_decided_approval_cannot_be_decided_again(ran, maker, checker):
    approval = ask(maker)
    approvals.approval_decline(approval=approval, by=checker, note="not ours")
    with pytest.raises(ApprovalError, match="already declined"):
        approvals.approval_approve(approval=approval, by=make_staff("approver", "approver-2"))
    assert ran == [("closed", "declined")]
    approval.refresh_from_db()
    assert approval.decision_note == "not ours"


def test_two_checkers_at_once_decide_it_once(ran, maker, checker):
    approval = ask(maker)
    stale_copy = Approval.objects.get(pk=approval.pk)
    approvals.approval_approve(approval=approval, by=checker)
    # The second checker's page still showed it pending.
    with pytest.raises(ApprovalError, match="already approved"):
        approvals.approval_decline(approval=stale_copy, by=make_staff("approver", "approver-2"))
    assert ran == [("approved", "approved")]


def test_an_expired_approval_is_refused_and_closed(ran, maker, checker):
    approval = ask(maker)
    Approval.objects.filter(pk=approval.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    with pytest.raises(ApprovalError, match="expired"):
        approvals.approval_approve(approval=approval, by=checker)
    approval.refresh_from_db()
    assert approval.state == Approval.State.EXPIRED
    assert approval.decided_by is None
    assert ran == [("closed", "expired")]
    assert AuditEvent.objects.filter(action="approval.expired", actor="").count() == 1


def test_a_payload_changed_after_the_request_is_refused(ran, maker, checker):
    approval = ask(maker)
    Approval.objects.filter(pk=approval.pk).update(
        payload=approval.payload | {"to": "999999 00000000"}
    )
    with pytest.raises(ApprovalError, match="no longer matches"):
        approvals.approval_approve(approval=approval, by=checker)
    assert Approval.objects.get().state == Approval.State.PENDING
    assert ran == []


def test_expire_due_expires_only_what_is_past_its_time(ran, maker):
    due = ask(maker)
    fresh = ask(maker)
    Approval.objects.filter(pk=due.pk).update(expires_at=timezone.now() - timedelta(minutes=1))
    assert approvals.expire_due() == 1
    assert approvals.expire_due() == 0  # safe to run again
    assert Approval.objects.get(pk=due.pk).state == Approval.State.EXPIRED
    assert Approval.objects.get(pk=fresh.pk).state == Approval.State.PENDING
    assert ran == [("closed", "expired")]


def test_a_failing_follow_up_leaves_the_approval_undecided(maker, checker):
    def boom(approval):
        raise RuntimeError("follow-up failed")

    approvals.register_action(ACTION, on_approve=boom, on_close=boom)
    try:
        approval = ask(maker)
        with pytest.raises(RuntimeError):
            approvals.approval_approve(approval=approval, by=checker)
        assert Approval.objects.get().state == Approval.State.PENDING
        assert not AuditEvent.objects.filter(action="approval.approved").exists()
    finally:
        del approvals.ACTIONS[ACTION]


def test_payload_hash_is_independent_of_key_order():
    assert approvals.payload_hash({"a": 1, "b": "2"}) == approvals.payload_hash({"b": "2", "a": 1})
    assert (
        approvals.payload_hash({"a": 1})
        == hashlib.sha256(json.dumps({"a": 1}, separators=(",", ":")).encode()).hexdigest()
    )
