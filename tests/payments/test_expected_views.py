"""The expected-payments page: one by form, a CSV upload, who may do what, and the match panel."""

from __future__ import annotations

import itertools
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.template import Context, Template
from django.test import RequestFactory
from django.urls import reverse
from django.utils import timezone
from staff import make_staff, sign_in

from backoffice import roles
from backoffice.models import AuditEvent
from flashfx import types
from parties.models import SubClient
from payments.forms import expected as expected_forms
from payments.mirrors import DEPOSITS
from payments.models import Deposit, ExpectedPayment, MatchProposal

pytestmark = pytest.mark.django_db

PAGE = reverse("payments:expected")
UPLOAD = reverse("payments:expected-upload")
_ids = itertools.count(1)


def as_member(client, role):
    sign_in(client, make_staff(role))
    return client


def arrive(amount="250.00", reference="INV-1", payer="Acme Pty Ltd") -> Deposit:
    w = types.Deposit.from_wire(
        {
            "id": f"dep{next(_ids):021d}",
            "status": "CONFIRMED",
            "amount": amount,
            "currency": "AUD",
            "externalReference": reference,
            "createdAt": timezone.now().isoformat(),
            "sender": {"accountName": payer},
        }
    )
    DEPOSITS.apply(w, observed_at=timezone.now(), source="sync")
    return Deposit.objects.get(flashfx_id=w.id)


def form_data(**changes):
    due = timezone.localdate() + timedelta(days=2)
    return {
        "payer_name": "Acme Pty Ltd",
        "amount": "250.00",
        "currency": "AUD",
        "reference": "INV-1",
        "due_on": due.isoformat(),
        "sub_client": "",
        **changes,
    }


def csv_file(text: str, *, bom: bool = False, name: str = "expected.csv"):
    return SimpleUploadedFile(
        name, (b"\xef\xbb\xbf" if bom else b"") + text.encode(), content_type="text/csv"
    )


# --- the page -----------------------------------------------------------------------------------


def test_the_page_lists_overdue_upcoming_and_matched(client):
    operator = make_staff("operator", "op")
    today = timezone.localdate()
    for name, due, ref in [
        ("Late Payer", today - timedelta(days=2), "L"),
        ("Soon Payer", today + timedelta(days=2), "S"),
        ("Paid Payer", today, "P"),
    ]:
        ExpectedPayment.objects.create(
            payer_name=name, amount=Decimal("5.00"), reference=ref, due_on=due, created_by=operator
        )
    arrive("5.00", reference="P")
    from payments.services.matching import expectations_recorded

    expectations_recorded(expected=list(ExpectedPayment.objects.all()))
    response = as_member(client, roles.VIEWER).get(PAGE)
    assert response.status_code == 200
    lists = response.context
    assert [e.payer_name for e in lists["overdue"]] == ["Late Payer"]
    assert [e.payer_name for e in lists["upcoming"]] == ["Soon Payer"]
    assert [e.payer_name for e in lists["matched"]] == ["Paid Payer"]
    html = response.content.decode()
    assert 'class="overdue"' in html and "automatically" in html
    assert "Add an expected payment" not in html  # a viewer may not add


def test_the_filter_answers_htmx_with_the_lists_alone(client):
    operator = make_staff("operator", "op")
    ExpectedPayment.objects.create(
        payer_name="Findme Ltd",
        amount=Decimal("1.00"),
        due_on=timezone.localdate(),
        created_by=operator,
    )
    ExpectedPayment.objects.create(
        payer_name="Other",
        amount=Decimal("1.00"),
        due_on=timezone.localdate(),
        created_by=operator,
    )
    response = as_member(client, roles.VIEWER).get(
        PAGE, {"q": "findme"}, headers={"HX-Request": "true"}
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert "Findme Ltd" in html and "Other" not in html and "<html" not in html
    assert response.headers["Vary"].count("HX-Request")


# --- one by form --------------------------------------------------------------------------------


def test_an_operator_adds_an_expected_payment(client):
    response = as_member(client, roles.OPERATOR).post(PAGE, form_data())
    assert response.status_code == 302 and response.url == PAGE
    expected = ExpectedPayment.objects.get()
    assert (expected.payer_name, expected.amount, expected.currency) == (
        "Acme Pty Ltd",
        Decimal("250.00"),
        "AUD",
    )
    assert expected.source == "form" and expected.created_by.username == "operator"
    event = AuditEvent.objects.get(action="expected_payment.recorded")
    assert event.actor == "operator" and event.details["count"] == 1


def test_an_added_expectation_matches_a_deposit_already_here(client):
    deposit = arrive()
    response = as_member(client, roles.OPERATOR).post(PAGE, form_data(), follow=True)
    assert "It matched a deposit already here." in response.content.decode()
    deposit.refresh_from_db()
    assert deposit.review_state == Deposit.Review.MATCHED


def test_the_currency_defaults_to_aud_and_a_sub_client_is_found_by_name(client):
    ada = SubClient.objects.create(flashfx_id="sc1", full_name="Ada Lovelace")
    page = as_member(client, roles.OPERATOR).get(PAGE)
    assert page.context["form"]["currency"].value() == "AUD"
    client.post(PAGE, form_data(sub_client="ada lovelace"))
    assert ExpectedPayment.objects.get().sub_client == ada


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"amount": "0"}, "greater than or equal to 0.01"),
        ({"amount": "12.345"}, "no more than 2 decimal places"),
        ({"payer_name": ""}, "This field is required."),
        ({"due_on": "next week"}, "Enter a valid date."),
        ({"currency": "A1D"}, "three-letter code"),
        ({"sub_client": "Nobody"}, "No sub-client has the FlashFX id or name"),
    ],
)
def test_a_bad_form_says_why_and_saves_nothing(client, changes, message):
    response = as_member(client, roles.OPERATOR).post(PAGE, form_data(**changes))
    assert response.status_code == 200
    assert message in response.content.decode().replace("&quot;", '"')
    assert not ExpectedPayment.objects.exists()


@pytest.mark.parametrize("role", [roles.VIEWER, roles.APPROVER, roles.COMPLIANCE])
def test_only_members_who_may_add_expectations_may_post(client, role):
    response = as_member(client, role).post(PAGE, form_data())
    assert response.status_code == 403
    response = client.post(
        UPLOAD, {"file": csv_file("payer_name,amount,due_date\nA,1,2026-01-01\n")}
    )
    assert response.status_code == 403
    assert not ExpectedPayment.objects.exists()


# --- removing one entered by mistake ----------------------------------------------------------


def test_an_unmatched_expected_payment_is_removed_and_the_trail_keeps_it(client):
    member = as_member(client, roles.OPERATOR)
    member.post(PAGE, form_data(payer_name="Acme Typo", reference="INV-9"))
    expected = ExpectedPayment.objects.get()
    page = member.get(PAGE).content.decode()
    assert reverse("payments:expected-remove", args=[expected.code]) in page
    response = member.post(reverse("payments:expected-remove", args=[expected.code]))
    assert response.status_code == 302 and response.url == PAGE
    assert not ExpectedPayment.objects.exists()
    event = AuditEvent.objects.get(action="expected_payment.removed")
    assert event.actor == "operator"
    assert event.details["payer_name"] == "Acme Typo" and event.details["amount"] == "250.00"
    assert event.details["reference"] == "INV-9" and event.details["recorded_by"] == "operator"
    assert "Removed the expected payment from Acme Typo" in member.get(PAGE).content.decode()


def test_a_matched_expected_payment_is_not_removed(client):
    member = as_member(client, roles.OPERATOR)
    deposit = arrive()
    member.post(PAGE, form_data())
    expected = ExpectedPayment.objects.get()
    assert expected.deposit == deposit
    assert reverse("payments:expected-remove", args=[expected.code]) not in (
        member.get(PAGE).content.decode()
    )
    member.post(reverse("payments:expected-remove", args=[expected.code]))
    assert ExpectedPayment.objects.get().deposit == deposit
    assert "matched to a deposit already" in member.get(PAGE).content.decode()
    assert not AuditEvent.objects.filter(action="expected_payment.removed").exists()


def test_its_open_proposals_go_with_it(client):
    member = as_member(client, roles.OPERATOR)
    member.post(PAGE, form_data(reference="", payer_name="John Smith"))
    arrive(reference="rent", payer="SMITH J")
    expected = ExpectedPayment.objects.get()
    assert MatchProposal.objects.filter(expected=expected).exists()
    member.post(reverse("payments:expected-remove", args=[expected.code]))
    assert not MatchProposal.objects.exists()
    assert Deposit.objects.get().review_state == Deposit.Review.NEW


@pytest.mark.parametrize("role", [roles.VIEWER, roles.APPROVER])
def test_only_members_who_may_remove_expectations_may_remove(client, role):
    operator = make_staff(roles.OPERATOR, "olga")
    sign_in(client, operator)
    client.post(PAGE, form_data())
    expected = ExpectedPayment.objects.get()
    client.logout()
    member = as_member(client, role)
    remove = reverse("payments:expected-remove", args=[expected.code])
    assert remove not in member.get(PAGE).content.decode()
    response = member.post(remove)
    assert response.status_code == 403
    assert ExpectedPayment.objects.exists()


def test_the_upload_is_post_only(client):
    assert as_member(client, roles.OPERATOR).get(UPLOAD).status_code == 405


# --- CSV upload ---------------------------------------------------------------------------------

GOOD = (
    "payer_name,amount,currency,reference,due_date,sub_client\n"
    'Acme Pty Ltd,"1,250.00",AUD,INV-9,2026-12-15,\n'
    "John Smith,480.00,,RENT,15/12/2026,\n"
)


@pytest.mark.parametrize("bom", [False, True])
def test_a_good_csv_is_recorded_with_one_audit_event(client, bom):
    response = as_member(client, roles.OPERATOR).post(
        UPLOAD, {"file": csv_file(GOOD, bom=bom)}, follow=True
    )
    assert "Recorded 2 expected payments from expected.csv" in response.content.decode()
    rows = list(
        ExpectedPayment.objects.order_by("id").values_list(
            "payer_name", "amount", "currency", "due_on", "source"
        )
    )
    assert [r[:3] for r in rows] == [
        ("Acme Pty Ltd", Decimal("1250.00"), "AUD"),
        ("John Smith", Decimal("480.00"), "AUD"),
    ]
    assert {r[3].isoformat() for r in rows} == {"2026-12-15"} and {r[4] for r in rows} == {"csv"}
    event = AuditEvent.objects.get(action="expected_payment.recorded")
    assert event.details["count"] == 2 and event.details["source"] == "csv"


def test_the_sample_csv_in_the_docs_uploads():
    from pathlib import Path

    sample = Path(__file__).resolve().parents[2] / "docs/samples/expected-payments.csv"
    form = expected_forms.ExpectedPaymentUploadForm(
        {}, {"file": SimpleUploadedFile("sample.csv", sample.read_bytes())}
    )
    assert form.is_valid(), form.errors
    assert len(form.rows) == 4


def test_every_bad_line_is_told_and_nothing_is_saved(client):
    text = (
        "payer_name,amount,currency,reference,due_date,sub_client\n"
        "Good Payer,10.00,AUD,R1,2026-12-01,\n"
        ",10.00,AUD,R2,2026-12-01,\n"
        "Bad Amount,-3,AUD,R3,2026-12-01,\n"
        "Bad Date,10.00,AUD,R4,31/31/2026,\n"
        "Too,Many,Values,Here,2026-12-01,,extra\n"
        "Who,10.00,AUD,R6,2026-12-01,Nobody\n"
    )
    response = as_member(client, roles.OPERATOR).post(UPLOAD, {"file": csv_file(text)})
    assert response.status_code == 200
    errors = response.context["upload_form"].errors["file"]
    assert errors == [
        "Line 3: payer_name: This field is required.",
        "Line 4: amount: Ensure this value is greater than or equal to 0.01.",
        "Line 5: due_date: Enter a valid date.",
        "Line 6: 7 values where the header has 6.",
        "Line 7: sub_client: No sub-client has the FlashFX id or name “Nobody”.",
    ]
    assert "Nothing was recorded" in response.content.decode()
    assert not ExpectedPayment.objects.exists()
    assert not AuditEvent.objects.filter(action="expected_payment.recorded").exists()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "The submitted file is empty"),
        (b"payer,amount\nA,1\n", "it lacks payer_name, due_date; it has unknown columns payer"),
        (b"payer_name,amount,due_date\n", "a header row but no payments"),
        ("payer_name,amount,due_date\nCafé,1,2026-01-01\n".encode("latin-1"), "not UTF-8"),
    ],
)
def test_a_file_that_is_not_a_list_of_payments_is_refused(client, content, message):
    response = as_member(client, roles.OPERATOR).post(
        UPLOAD, {"file": SimpleUploadedFile("x.csv", content)}
    )
    assert response.status_code == 200
    assert message in " ".join(response.context["upload_form"].errors["file"])
    assert not ExpectedPayment.objects.exists()


def test_the_upload_limits_rows_and_size(client, monkeypatch):
    monkeypatch.setattr(expected_forms, "MAX_ROWS", 2)
    rows = "".join(f"P{n},1.00,AUD,R{n},2026-12-01,\n" for n in range(3))
    text = "payer_name,amount,currency,reference,due_date,sub_client\n" + rows
    response = as_member(client, roles.OPERATOR).post(UPLOAD, {"file": csv_file(text)})
    assert "more than 2 rows" in " ".join(response.context["upload_form"].errors["file"])
    monkeypatch.setattr(expected_forms, "MAX_UPLOAD_BYTES", 10)
    response = client.post(UPLOAD, {"file": csv_file(text)})
    assert "at most 10 can be uploaded" in " ".join(response.context["upload_form"].errors["file"])
    assert not ExpectedPayment.objects.exists()


# --- deciding near matches ----------------------------------------------------------------------


@pytest.fixture
def proposal():
    operator = make_staff("operator", "recorder")
    ExpectedPayment.objects.create(
        payer_name="Acme",
        amount=Decimal("250.00"),
        reference="INV-1",
        due_on=timezone.localdate(),
        created_by=operator,
    )
    arrive("240.00")
    return MatchProposal.objects.get()


def decide_url(proposal, decision):
    return reverse(
        "payments:deposit-match", args=[proposal.deposit.flashfx_id, proposal.pk, decision]
    )


def test_confirming_over_htmx_answers_the_match_panel(client, proposal):
    response = as_member(client, roles.OPERATOR).post(
        decide_url(proposal, "confirm"), headers={"HX-Request": "true"}
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert 'id="match-panel"' in html and "Confirmed by operator" in html and "<html" not in html
    proposal.deposit.refresh_from_db()
    assert proposal.deposit.review_state == Deposit.Review.MATCHED


def test_refusing_without_javascript_goes_back_to_the_deposit_page(client, proposal):
    response = as_member(client, roles.OPERATOR).post(decide_url(proposal, "refuse"))
    assert response.status_code == 302
    assert response.url == reverse("payments:deposit", args=[proposal.deposit.flashfx_id])
    proposal.refresh_from_db()
    assert proposal.state == MatchProposal.State.REFUSED


def test_a_refused_decision_is_shown_with_its_reason(client, proposal):
    as_member(client, roles.OPERATOR).post(decide_url(proposal, "refuse"))
    response = client.post(decide_url(proposal, "confirm"), headers={"HX-Request": "true"})
    assert response.status_code == 200
    assert "This proposal was already refused." in response.content.decode()


@pytest.mark.parametrize("role", [roles.VIEWER, roles.APPROVER, roles.COMPLIANCE, roles.ADMIN])
def test_only_members_who_review_deposits_may_decide(client, proposal, role):
    response = as_member(client, role).post(decide_url(proposal, "confirm"))
    assert response.status_code == 403
    proposal.refresh_from_db()
    assert proposal.state == MatchProposal.State.PROPOSED


def test_an_unknown_decision_or_proposal_is_not_found(client, proposal):
    as_member(client, roles.OPERATOR)
    assert client.post(decide_url(proposal, "maybe")).status_code == 404
    other = reverse("payments:deposit-match", args=["nosuchdeposit", proposal.pk, "confirm"])
    assert client.post(other).status_code == 404
    assert client.get(decide_url(proposal, "confirm")).status_code == 405


def test_the_deposit_pages_panel_shows_proposals_with_buttons_for_reviewers(proposal):
    template = Template("{% load matching %}{% deposit_match_panel deposit %}")
    request = RequestFactory().get("/")

    def render(user):
        return template.render(
            Context(
                {"deposit": proposal.deposit, "user": user, "request": request, "csrf_token": "tok"}
            )
        )

    html = render(make_staff("operator", "op2"))
    assert "Confirm match" in html and "Refuse" in html and 'value="tok"' in html
    html = render(make_staff("viewer", "v2"))
    assert "Acme" in html and "Confirm match" not in html


def test_a_near_match_is_decided_from_the_expected_page_and_comes_back_to_it(client, proposal):
    page = as_member(client, roles.OPERATOR).get(PAGE, {"q": "acme"})
    html = page.content.decode()
    assert "Near matches to decide" in html and "Confirm match" in html
    back = PAGE + "?q=acme"
    response = client.post(decide_url(proposal, "confirm"), {"next": back})
    assert response.status_code == 302 and response.url == back
    proposal.refresh_from_db()
    assert proposal.state == MatchProposal.State.CONFIRMED


def test_a_next_elsewhere_is_ignored(client, proposal):
    response = as_member(client, roles.OPERATOR).post(
        decide_url(proposal, "refuse"), {"next": "https://evil.example/"}
    )
    assert response.url == reverse("payments:deposit", args=[proposal.deposit.flashfx_id])


def test_a_viewer_sees_near_matches_without_buttons(client, proposal):
    html = as_member(client, roles.VIEWER).get(PAGE).content.decode()
    assert "same reference, different amount" in html and "Confirm match" not in html


def test_a_csv_names_sub_clients_by_flashfx_id_or_by_a_name_that_is_theirs_alone(client):
    ada = SubClient.objects.create(flashfx_id="65f0c0ffee0000000000aa01", full_name="Ada Lovelace")
    SubClient.objects.create(flashfx_id="65f0c0ffee0000000000aa02", full_name="Sam Lee")
    SubClient.objects.create(flashfx_id="65f0c0ffee0000000000aa03", legal_name="Sam Lee")
    text = (
        "payer_name,amount,due_date,sub_client\n"
        "A,1.00,2026-12-01,65f0c0ffee0000000000aa01\n"
        "B,2.00,2026-12-01,ADA LOVELACE\n"
        "C,3.00,2026-12-01,Sam Lee\n"
    )
    response = as_member(client, roles.OPERATOR).post(UPLOAD, {"file": csv_file(text)})
    assert response.context["upload_form"].errors["file"] == [
        "Line 4: sub_client: More than one sub-client is named “Sam Lee”; give its FlashFX id "
        "instead."
    ]
    client.post(UPLOAD, {"file": csv_file(text.replace("Sam Lee", "65f0c0ffee0000000000aa02"))})
    assert [e.sub_client for e in ExpectedPayment.objects.order_by("id")][:2] == [ada, ada]
    assert ExpectedPayment.objects.count() == 3
