"""Matching deposits to expected payments, and third-party marking, through the real apply path.

Deposits arrive as FlashFX's versions (flashfx.types.Deposit) applied by the DEPOSITS spec, the
way sync and webhooks apply them, so the on_change hook runs in the mirroring transaction.
"""

from __future__ import annotations

import itertools
import threading
from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.utils import timezone
from harness import API_EMAIL, API_PASSWORD
from staff import make_staff

from backoffice.models import AuditEvent
from flashfx import types
from flashfx.client import FlashFXClient
from flashfx.tokens import MemoryTokenStore
from mirrors import sync
from mirrors.apply import Change
from parties.models import SubClient
from payments.mirrors import DEPOSITS
from payments.models import Deposit, ExpectedPayment, MatchProposal
from payments.selectors.expected import expected_payment_list, proposals_awaiting
from payments.services import matching
from payments.services.matching import (
    MatchError,
    expected_payments_record,
    match_proposal_confirm,
    match_proposal_refuse,
)
from payments.services.review import deposit_review_move

pytestmark = pytest.mark.django_db

_ids = itertools.count(1)


def wire(
    amount: str = "250.00",
    *,
    reference: str = "INV-1001",
    payer: str = "Acme Pty Ltd",
    status: str = "CONFIRMED",
    currency: str = "AUD",
    sub_client: str | None = None,
    flashfx_id: str | None = None,
) -> types.Deposit:
    data = {
        "id": flashfx_id or f"dep{next(_ids):021d}",
        "status": status,
        "amount": amount,
        "currency": currency,
        "externalReference": reference,
        "createdAt": timezone.now().isoformat(),
        "sender": {"accountName": payer, "bsb": "062000", "accountNo": "11112222"},
    }
    if sub_client:
        data["subClient"] = {"id": sub_client}
    return types.Deposit.from_wire(data)


def arrive(*wires: types.Deposit, one_by_one: bool = False) -> list[Deposit]:
    """Mirror deposits as sync does (one window), or as webhooks do (one at a time)."""
    now = timezone.now()
    if one_by_one:
        for w in wires:
            DEPOSITS.apply(w, observed_at=now, source="webhook #1")
    else:
        DEPOSITS.apply_many(list(wires), observed_at=now, source="sync")
    return [Deposit.objects.get(flashfx_id=w.id) for w in wires]


@pytest.fixture
def operator():
    return make_staff("operator")


def expect(operator, **fields) -> ExpectedPayment:
    row = {
        "payer_name": "Acme Pty Ltd",
        "amount": Decimal("250.00"),
        "currency": "AUD",
        "reference": "INV-1001",
        "due_on": timezone.localdate() + timedelta(days=3),
        "sub_client": None,
        **fields,
    }
    (created,) = expected_payments_record([row], by=operator)
    return created


def sub_client(name: str = "Ada Lovelace", flashfx_id: str = "sc0000000000000000000001"):
    return SubClient.objects.create(flashfx_id=flashfx_id, full_name=name, flashfx_status="ACTIVE")


# --- exact matches ----------------------------------------------------------------------------


def test_an_exact_reference_and_amount_is_matched_when_the_deposit_is_first_mirrored(operator):
    expected = expect(operator)
    (deposit,) = arrive(wire())
    expected.refresh_from_db()
    assert expected.deposit == deposit
    assert expected.matched_at is not None and expected.matched_by is None
    assert deposit.review_state == Deposit.Review.MATCHED
    event = AuditEvent.objects.get(action="deposit.review.matched")
    assert event.actor == "" and event.details["expected_payment"] == str(expected.code)
    assert not MatchProposal.objects.exists()


def test_a_webhook_arrival_matches_too(operator):
    expected = expect(operator, reference="ref 77")
    (deposit,) = arrive(wire(reference="REF  77"), one_by_one=True)
    expected.refresh_from_db()
    assert expected.deposit == deposit  # case and spacing of the reference do not count
    assert deposit.review_state == Deposit.Review.MATCHED


@pytest.mark.parametrize("typed", ["inv 1042", "INV/1042", "Inv.1042", "INV1042", " INV - 1042 "])
def test_separators_in_a_reference_do_not_count(operator, typed):
    expected = expect(operator, reference="INV-1042")
    (deposit,) = arrive(wire(reference=typed))
    expected.refresh_from_db()
    assert expected.deposit == deposit


def test_letters_and_digits_still_count_in_order():
    assert matching.reference_key("INV-1042") != matching.reference_key("INV-1024")
    assert matching.reference_key("O'BRIEN 7") == "O'BRIEN7"  # only separators are dropped


def test_the_same_reference_typed_otherwise_with_another_amount_is_proposed_both_ways(operator):
    # The deposit first, then the expectation: the query over deposits narrows by the key.
    (early,) = arrive(wire("99.00", reference="po-77 ", payer="Somebody Else"))
    expect(operator, reference="PO 77", amount=Decimal("100.00"))
    # The expectation first, then the deposit: the query over expectations does.
    expect(operator, reference="SO/12", amount=Decimal("300.00"))
    (late,) = arrive(wire("290.00", reference="so12", payer="Somebody Else"))
    assert {p.deposit for p in MatchProposal.objects.all()} == {early, late}
    assert all(p.reason.startswith("same reference") for p in MatchProposal.objects.all())


def test_another_currency_or_sub_client_is_no_exact_match(operator):
    ada = sub_client()
    expect(operator, currency="USD")
    expect(operator, sub_client=ada, reference="INV-2")
    usd, other = arrive(
        wire(),
        wire(reference="INV-2", sub_client="sc0000000000000000000099"),
    )
    assert usd.review_state == other.review_state == Deposit.Review.NEW
    assert not ExpectedPayment.objects.exclude(deposit=None).exists()


def test_an_expected_payment_is_matched_at_most_once(operator):
    expected = expect(operator)
    first, second = arrive(wire(), wire())
    expected.refresh_from_db()
    assert expected.deposit == first
    second.refresh_from_db()
    assert second.review_state == Deposit.Review.NEW
    # The second deposit is the same reference and amount: nothing left to propose either.
    assert not MatchProposal.objects.filter(deposit=second).exists()


def test_two_expectations_alike_take_one_deposit_each(operator):
    one = expect(operator, due_on=timezone.localdate())
    two = expect(operator, due_on=timezone.localdate() + timedelta(days=7))
    first, second = arrive(wire(), wire())
    one.refresh_from_db()
    two.refresh_from_db()
    assert (one.deposit, two.deposit) == (first, second)  # the earliest due is matched first


def test_the_database_refuses_a_second_expectation_for_one_deposit(operator):
    one = expect(operator, reference="A")
    two = expect(operator, reference="B")
    (deposit,) = arrive(wire(reference="A"))
    # As a concurrent matcher that read before the first link committed would try it:
    assert not matching._claim(expected=two, deposit=deposit, by=None)
    two.refresh_from_db()
    one.refresh_from_db()
    assert one.deposit == deposit and two.deposit is None


def test_a_taken_expectation_is_not_linked_again(operator):
    expected = expect(operator)
    (deposit,) = arrive(wire())
    (other,) = arrive(wire(reference="ZZZ"))
    stale = ExpectedPayment.objects.get(pk=expected.pk)
    stale.deposit = None  # what a reader holding the row from before the match sees
    assert not matching._claim(expected=stale, deposit=other, by=None)
    assert ExpectedPayment.objects.get(pk=expected.pk).deposit == deposit


def test_matching_twice_changes_nothing(operator):
    expected = expect(operator)
    near = expect(operator, reference="", payer_name="Bolt P/L", amount=Decimal("99.00"))
    w_exact, w_near = wire(), wire("99.00", reference="X", payer="BOLT PTY LTD")
    exact_deposit, near_deposit = arrive(w_exact, w_near)
    before = (
        list(ExpectedPayment.objects.values()),
        list(MatchProposal.objects.values()),
        list(Deposit.objects.values("pk", "review_state", "third_party")),
        AuditEvent.objects.count(),
    )
    matching.deposits_arrived(deposits=[exact_deposit, near_deposit])
    matching.expectations_recorded(expected=[expected, near])
    arrive(w_exact, w_near)  # the same versions again: unchanged, so no on_change at all
    after = (
        list(ExpectedPayment.objects.values()),
        list(MatchProposal.objects.values()),
        list(Deposit.objects.values("pk", "review_state", "third_party")),
        AuditEvent.objects.count(),
    )
    assert after == before


def test_a_refunded_or_cancelled_deposit_is_not_matched(operator):
    expect(operator)
    (cancelled,) = arrive(wire(status="CANCELLED"))
    assert cancelled.review_state == Deposit.Review.NEW
    assert not ExpectedPayment.objects.exclude(deposit=None).exists()


def test_a_deposit_the_sync_brings_from_the_sandbox_is_matched(operator, sandbox):
    """The real path end to end: FlashFX's answer read by our client, applied by sync."""
    expected = expect(operator, reference="SANDBOX-1", amount=Decimal("77.70"))
    deposit = sandbox.receive_deposit(
        "77.70",
        externalReference="sandbox-1",
        sender={"accountName": "ACME P/L", "bsb": "062000", "accountNo": "11112222"},
    )
    client = FlashFXClient(sandbox.url, API_EMAIL, API_PASSWORD, token_store=MemoryTokenStore())
    try:
        run = sync.sync_entity(client=client, entity="deposits", full=True)
    finally:
        client.close()
    assert run.created == 1
    expected.refresh_from_db()
    assert expected.deposit.flashfx_id == deposit["id"]
    assert expected.deposit.review_state == Deposit.Review.MATCHED


def test_a_sync_window_of_many_deposits_is_matched_in_a_few_queries(
    operator, django_assert_max_num_queries
):
    expected = expect(operator, reference="NEEDLE", amount=Decimal("12.34"))
    wires = [wire(f"{n}.00", reference=f"HAY-{n}") for n in range(1, 1200)]
    wires.insert(600, wire("12.34", reference="needle"))
    # The mirror inserts in batches (SQLite: 36 for the deposits, 9 for their history);
    # matching adds a handful, not one or more per deposit.
    with django_assert_max_num_queries(80):
        DEPOSITS.apply_many(wires, observed_at=timezone.now(), source="sync")
    expected.refresh_from_db()
    assert expected.deposit.flashfx_id == wires[600].id


def moved(deposit: Deposit, to: str, **fields) -> Change:
    """FlashFX's move of a mirrored deposit through the real apply path, as its Change."""
    old = deposit.flashfx_status
    w = types.Deposit.from_wire({**deposit.raw, "status": to, **fields})
    DEPOSITS.apply(w, observed_at=timezone.now(), source="sync")
    deposit.refresh_from_db()
    return Change(deposit, False, old, to)


def test_an_expectation_matched_to_a_deposit_flashfx_cancels_is_open_again(operator):
    expected = expect(operator, due_on=timezone.localdate() - timedelta(days=1))
    (deposit,) = arrive(wire(status="INITIALISED"))
    expected.refresh_from_db()
    assert expected.deposit == deposit
    moved(deposit, "CANCELLED")  # the mirror's on_change gives the expectation back
    expected.refresh_from_db()
    assert expected.deposit is None and expected.matched_at is None
    assert [e.pk for e in expected_payment_list(state="overdue")] == [expected.pk]
    event = AuditEvent.objects.get(action="expected_payment.unmatched")
    assert event.details["deposit"] == deposit.flashfx_id
    assert event.details["flashfx_status"] == "CANCELLED"


def test_a_partly_refunded_deposit_keeps_its_expectation(operator):
    expected = expect(operator)
    (deposit,) = arrive(wire())
    change = moved(deposit, "REFUNDED", refundAmount="50.00", refundedAt=timezone.now().isoformat())
    matching.deposits_moved(changes=[change])  # and once more: still nothing to give back
    expected.refresh_from_db()
    assert expected.deposit == deposit
    assert not AuditEvent.objects.filter(action="expected_payment.unmatched").exists()


# --- near matches -----------------------------------------------------------------------------


def test_the_same_amount_and_a_similar_payer_name_is_proposed(operator):
    expected = expect(operator, reference="", payer_name="John Smith")
    (deposit,) = arrive(wire(reference="rent march", payer="SMITH J"))
    proposal = MatchProposal.objects.get()
    assert (proposal.expected, proposal.deposit) == (expected, deposit)
    assert proposal.reason.startswith("same amount, similar payer name")
    assert deposit.review_state == Deposit.Review.NEW
    assert list(proposals_awaiting()) == [proposal]


def test_the_same_amount_from_someone_else_is_not_proposed(operator):
    expect(operator, reference="", payer_name="John Smith")
    arrive(wire(reference="rent", payer="JANE SMITH"))
    assert not MatchProposal.objects.exists()


def test_the_same_reference_and_another_amount_is_proposed(operator):
    expected = expect(operator, amount=Decimal("250.00"))
    (deposit,) = arrive(wire("240.00", payer="Somebody Else"))
    proposal = MatchProposal.objects.get()
    assert (proposal.expected, proposal.deposit) == (expected, deposit)
    assert proposal.reason == "same reference, different amount (expected AUD 250.00)"
    expected.refresh_from_db()
    assert expected.deposit is None


def test_confirming_a_proposal_matches_with_the_member_as_matcher(operator):
    expected = expect(operator, amount=Decimal("250.00"))
    (deposit,) = arrive(wire("240.00"))
    proposal = MatchProposal.objects.get()
    match_proposal_confirm(proposal=proposal, by=operator)
    expected.refresh_from_db()
    deposit.refresh_from_db()
    proposal.refresh_from_db()
    assert expected.deposit == deposit and expected.matched_by == operator
    assert deposit.review_state == Deposit.Review.MATCHED
    assert proposal.state == MatchProposal.State.CONFIRMED and proposal.decided_by == operator
    assert AuditEvent.objects.filter(action="deposit.match.confirmed", actor="operator").exists()
    assert list(proposals_awaiting()) == []


def test_refusing_a_proposal_keeps_both_open_and_never_proposes_it_again(operator):
    expected = expect(operator, amount=Decimal("250.00"))
    (deposit,) = arrive(wire("240.00"))
    proposal = MatchProposal.objects.get()
    match_proposal_refuse(proposal=proposal, by=operator)
    proposal.refresh_from_db()
    assert proposal.state == MatchProposal.State.REFUSED
    assert AuditEvent.objects.filter(action="deposit.match.refused").exists()
    matching.deposits_arrived(deposits=[deposit])
    matching.expectations_recorded(expected=[expected])
    assert MatchProposal.objects.get().state == MatchProposal.State.REFUSED
    assert list(proposals_awaiting()) == []


def test_a_decided_proposal_cannot_be_decided_again(operator):
    expect(operator, amount=Decimal("250.00"))
    arrive(wire("240.00"))
    proposal = MatchProposal.objects.get()
    match_proposal_refuse(proposal=proposal, by=operator)
    with pytest.raises(MatchError, match="already refused"):
        match_proposal_confirm(proposal=proposal, by=operator)
    with pytest.raises(MatchError, match="already refused"):
        match_proposal_refuse(proposal=proposal, by=operator)


def test_a_proposal_for_an_expectation_matched_meanwhile_is_refused_with_a_reason(operator):
    expected = expect(operator, amount=Decimal("250.00"))
    (near_deposit,) = arrive(wire("240.00"))
    (exact_deposit,) = arrive(wire("250.00"))
    expected.refresh_from_db()
    assert expected.deposit == exact_deposit
    proposal = MatchProposal.objects.get(deposit=near_deposit)
    with pytest.raises(MatchError, match="matched to another deposit meanwhile"):
        match_proposal_confirm(proposal=proposal, by=operator)
    assert list(proposals_awaiting()) == []  # no longer awaiting anyone


def test_a_proposal_for_an_accepted_deposit_cannot_be_confirmed(operator):
    expect(operator, amount=Decimal("250.00"))
    (deposit,) = arrive(wire("240.00"))
    deposit_review_move(deposit=deposit, to=Deposit.Review.ACCEPTED, actor=operator)
    proposal = MatchProposal.objects.get()
    assert list(proposals_awaiting()) == []  # nobody is asked any more
    with pytest.raises(MatchError, match="accepted cannot be matched"):
        match_proposal_confirm(proposal=proposal, by=operator)


# --- expectations recorded after their deposit -----------------------------------------------


def test_an_expectation_recorded_after_its_deposit_matches_it(operator):
    (deposit,) = arrive(wire())
    expected = expect(operator)
    deposit.refresh_from_db()
    assert expected.deposit == deposit
    assert deposit.review_state == Deposit.Review.MATCHED


def test_a_flagged_deposit_is_matched_by_a_later_expectation(operator):
    (deposit,) = arrive(wire())
    deposit_review_move(deposit=deposit, to=Deposit.Review.FLAGGED, actor=operator)
    expected = expect(operator)
    deposit.refresh_from_db()
    assert expected.deposit == deposit and deposit.review_state == Deposit.Review.MATCHED


def test_an_accepted_deposit_is_not_matched_by_a_later_expectation(operator):
    (deposit,) = arrive(wire())
    deposit_review_move(deposit=deposit, to=Deposit.Review.ACCEPTED, actor=operator)
    expected = expect(operator)
    assert expected.deposit is None
    assert not MatchProposal.objects.exists()


def test_a_later_expectation_proposes_near_matches(operator):
    (deposit,) = arrive(wire("100.00", reference="", payer="ACME P/L"))
    expected = expect(operator, amount=Decimal("100.00"), reference="PO-9")
    proposal = MatchProposal.objects.get()
    assert (proposal.expected, proposal.deposit) == (expected, deposit)


# --- overdue ----------------------------------------------------------------------------------


def test_unmatched_expectations_past_their_due_date_are_overdue(operator):
    late = expect(operator, due_on=timezone.localdate() - timedelta(days=1), reference="LATE")
    expect(operator, due_on=timezone.localdate(), reference="TODAY")
    matched_late = expect(
        operator, due_on=timezone.localdate() - timedelta(days=5), reference="PAID"
    )
    arrive(wire(reference="PAID"))
    assert [e.pk for e in expected_payment_list(state="overdue")] == [late.pk]
    assert matched_late.pk in [e.pk for e in expected_payment_list(state="matched")]
    assert late.pk in [e.pk for e in expected_payment_list(state="unmatched")]


# --- recording --------------------------------------------------------------------------------


def test_recording_a_batch_is_one_audit_event_with_the_count(operator):
    rows = [
        {
            "payer_name": f"Payer {n}",
            "amount": Decimal("10.00"),
            "reference": f"R{n}",
            "due_on": date(2026, 1, n),
            "currency": "AUD",
        }
        for n in range(1, 4)
    ]
    created = expected_payments_record(rows, by=operator, source=ExpectedPayment.Source.CSV)
    assert len(created) == 3 and {e.source for e in created} == {"csv"}
    event = AuditEvent.objects.get(action="expected_payment.recorded")
    assert event.details == {"count": 3, "source": "csv", "totals": {"AUD": "30.00"}, "matched": 0}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"amount": Decimal("0")}, "the amount must be more than zero"),
        ({"amount": Decimal("-5")}, "the amount must be more than zero"),
        ({"amount": Decimal("1.005")}, "more than two decimal places"),
        ({"payer_name": "  "}, "the payer name is missing"),
        ({"currency": "AU"}, "three-letter code"),
    ],
)
def test_a_bad_row_saves_nothing_and_says_why(operator, change, message):
    good = {"payer_name": "A", "amount": Decimal("1.00"), "due_on": date(2026, 1, 1)}
    with pytest.raises(MatchError, match=message):
        expected_payments_record([good, {**good, **change}], by=operator)
    assert not ExpectedPayment.objects.exists()
    assert not AuditEvent.objects.filter(action="expected_payment.recorded").exists()


# --- third-party marking ----------------------------------------------------------------------


def test_a_deposit_from_the_company_itself_is_not_third_party(settings):
    settings.COMPANY_NAMES = ["Demo Company Pty Ltd", "Demo Trading"]
    (deposit,) = arrive(wire(payer="DEMO COMPANY P/L"))
    assert deposit.third_party is False


def test_a_deposit_from_the_sub_client_paid_to_is_not_third_party(settings):
    settings.COMPANY_NAMES = ["Demo Company Pty Ltd"]
    sub_client("Ada Lovelace")
    (deposit,) = arrive(wire(payer="LOVELACE A", sub_client="sc0000000000000000000001"))
    assert deposit.third_party is False


def test_a_deposit_from_someone_else_is_third_party(settings):
    settings.COMPANY_NAMES = ["Demo Company Pty Ltd"]
    sub_client("Ada Lovelace")
    to_company, to_ada, nameless = arrive(
        wire(payer="Test Payer"),
        wire(payer="Charles Babbage", sub_client="sc0000000000000000000001"),
        wire(payer=""),
    )
    assert to_company.third_party and to_ada.third_party and nameless.third_party
    assert not AuditEvent.objects.filter(object_type="payments.deposit").exists()


# --- at once, on PostgreSQL ---------------------------------------------------------------------

on_postgresql = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="PostgreSQL only: real concurrent transactions"
)


def at_once(*jobs):
    """Run each job in its own thread (its own connection and transaction), released together."""
    barrier = threading.Barrier(len(jobs))
    errors: list[BaseException] = []

    def run(job):
        try:
            barrier.wait()
            job()
        except BaseException as exc:  # reported below, never lost
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(job,)) for job in jobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return errors


@on_postgresql
@pytest.mark.django_db(transaction=True)
def test_two_deposits_mirrored_at_once_match_one_expectation_once():
    operator = make_staff("operator")
    expected = expect(operator)
    for _ in range(5):  # a few rounds: the race is real each time, whoever wins
        wires = [wire(), wire()]
        errors = at_once(*(lambda w=w: arrive(w, one_by_one=True) for w in wires))
        assert not errors, errors
        ExpectedPayment.objects.filter(pk=expected.pk).update(deposit=None, matched_at=None)
        matched = Deposit.objects.filter(
            flashfx_id__in=[w.id for w in wires], review_state=Deposit.Review.MATCHED
        )
        assert matched.count() == 1
    assert AuditEvent.objects.filter(action="deposit.review.matched").count() == 5


@on_postgresql
@pytest.mark.django_db(transaction=True)
def test_an_upload_and_an_arrival_at_once_match_once_without_deadlock():
    operator = make_staff("operator")
    for n in range(5):
        (waiting,) = arrive(wire(reference=f"LATE-{n}"))
        w = wire(reference=f"LATE-{n}")
        errors = at_once(
            lambda n=n: expect(operator, reference=f"LATE-{n}"),
            lambda w=w: arrive(w, one_by_one=True),
        )
        assert not errors, errors
        e = ExpectedPayment.objects.get(reference=f"LATE-{n}")
        assert e.deposit_id in {waiting.pk, Deposit.objects.get(flashfx_id=w.id).pk}
        assert (
            Deposit.objects.filter(
                review_state=Deposit.Review.MATCHED, external_reference=f"LATE-{n}"
            ).count()
            == 1
        )


@on_postgresql
@pytest.mark.django_db(transaction=True)
def test_two_people_confirming_near_matches_of_one_expectation_at_once_match_it_once():
    operator = make_staff("operator")
    other = make_staff("operator", "otto")
    expected = expect(operator, amount=Decimal("250.00"))
    arrive(wire("240.00"), wire("260.00"))
    one, two = MatchProposal.objects.order_by("id")
    outcomes: list[str] = []

    def confirm(proposal, by):
        def job():
            try:
                match_proposal_confirm(proposal=proposal, by=by)
                outcomes.append("confirmed")
            except MatchError as exc:
                outcomes.append(str(exc))

        return job

    errors = at_once(confirm(one, operator), confirm(two, other))
    assert not errors, errors
    assert sorted(outcomes) == [
        "That expected payment was matched to another deposit meanwhile.",
        "confirmed",
    ]
    expected.refresh_from_db()
    assert expected.deposit_id in {one.deposit_id, two.deposit_id}
