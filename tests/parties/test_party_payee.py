"""Confirmation of Payee on Australian BSB recipients, against the sandbox's UAT keywords:
every answer recorded and shown, a failed check recorded and never stopping the recipient, a
new check when the bank details change; and a create whose answer was lost found again by
its externalId rather than sent twice."""

from __future__ import annotations

import pytest
from django.urls import reverse
from parties_support import BSB_RECIPIENT, app_at
from staff import make_staff, sign_in

from backoffice.models import AuditEvent
from parties.models import PayeeCheck, Recipient
from parties.selectors import payee_check_latest
from parties.services import recipients

pytestmark = pytest.mark.django_db


@pytest.fixture
def app_sandbox(sandbox, settings):
    with app_at(sandbox, settings):
        yield sandbox


@pytest.fixture
def operator():
    return make_staff("operator")


def create(actor, **changes) -> Recipient:
    return recipients.recipient_create(
        fields={**BSB_RECIPIENT, "account_id_type": "BSB", **changes}, actor=actor
    )


def cop_requests(sandbox) -> list[dict]:
    response = sandbox.http.get(sandbox.url + "_sandbox/cop-checks")
    assert response.status_code == 200, response.text
    body = response.json()
    return body["checks"] if isinstance(body, dict) else body


@pytest.mark.parametrize(
    ("last_name", "code", "bank_name"),
    [
        ("Ng", "MATCH", ""),
        ("Copimatch Ng", "MATCH", ""),
        ("Copiclosematch Ng", "CLOSE_MATCH", "M NG"),
        ("Copinotmatch Ng", "NOT_MATCH", ""),
        ("Copclosed Ng", "ACCOUNT_CLOSED", ""),
    ],
)
def test_a_new_bsb_recipient_is_checked_and_the_answer_kept(
    app_sandbox, operator, last_name, code, bank_name
):
    recipient = create(operator, last_name=last_name)

    check = payee_check_latest(recipient)
    assert check is not None and not check.failed
    assert (check.code, check.bank_name) == (code, bank_name)
    assert (check.bsb, check.account_no) == ("062000", "12345678")
    assert check.name_asked == f"Mia {last_name}"
    assert check.checked_by == operator
    asked = cop_requests(app_sandbox)
    assert len(asked) == 1 and asked[0]["accountName"] == f"Mia {last_name}"


def test_flashfx_refusing_to_check_is_recorded_and_the_recipient_stands(app_sandbox, operator):
    app_sandbox.configure(cop_enabled=False)

    recipient = create(operator)

    assert Recipient.objects.get() == recipient
    check = payee_check_latest(recipient)
    assert check.code == "COP_API_DISABLED" and check.billable is False
    assert "disabled" in check.message


def test_a_check_that_fails_is_recorded_and_the_recipient_stands(app_sandbox, operator):
    app_sandbox.faults(http_500=1, operations=["confirmationOfPayee"], limit=1)

    recipient = create(operator)

    assert Recipient.objects.get() == recipient
    check = payee_check_latest(recipient)
    assert check.failed and check.code == ""
    assert check.error_code == "HTTP_500"


def test_only_bsb_accounts_are_checked(app_sandbox, operator):
    recipients.recipient_create(
        fields={"first_name": "Mia", "last_name": "Ng", "currency": "AUD",
                "payid": "mia@example.com", "account_id_type": "PAYID"},
        actor=operator,
    )  # fmt: skip
    assert not PayeeCheck.objects.exists()
    assert cop_requests(app_sandbox) == []


def test_new_bank_details_or_a_new_name_are_checked_again_and_other_changes_are_not(
    app_sandbox, operator
):
    recipient = create(operator)
    first = payee_check_latest(recipient)

    renamed = recipients.recipient_update(
        recipient=recipient, fields={**BSB_RECIPIENT, "email": "ng@example.com"}, actor=operator
    )
    assert PayeeCheck.objects.count() == 1

    moved = recipients.recipient_update(
        recipient=renamed,
        fields={**BSB_RECIPIENT, "account_no": "87654321", "last_name": "Copinotmatch Ng"},
        actor=operator,
    )
    latest = payee_check_latest(moved)
    assert latest != first and latest.account_no == "87654321"
    assert latest.code == "NOT_MATCH"
    assert PayeeCheck.objects.count() == 2

    recipients.recipient_update(
        recipient=moved,
        fields={**BSB_RECIPIENT, "account_no": "87654321", "last_name": "Ng"},
        actor=operator,
    )
    assert payee_check_latest(moved).code == "MATCH"  # a new name is asked about too
    assert PayeeCheck.objects.count() == 3


def test_a_check_of_details_the_recipient_no_longer_has_is_not_its_latest(operator):
    recipient = Recipient.objects.create(
        flashfx_id="65f0c0ffee0000000000c001",
        account_id_type="BSB",
        currency="AUD",
        bsb="062000",
        account_no="87654321",
    )
    PayeeCheck.objects.create(
        recipient=recipient, bsb="062000", account_no="12345678", name_asked="Mia Ng", code="MATCH"
    )
    assert payee_check_latest(recipient) is None


def test_a_create_whose_answer_was_lost_is_found_by_its_external_id(app_sandbox, operator):
    app_sandbox.faults(commit_then_drop=1, operations=["createRecipient"], limit=1)

    recipient = create(operator)

    held = app_sandbox.data("query { recipients(input: {}) { id externalId } }")["recipients"]
    assert [r["id"] for r in held] == [recipient.flashfx_id]  # created once, not twice
    assert held[0]["externalId"] == recipient.external_id
    assert Recipient.objects.get() == recipient


def test_an_operator_checks_again_after_a_failed_check(client, app_sandbox, operator):
    app_sandbox.faults(http_500=1, operations=["confirmationOfPayee"], limit=1)
    recipient = create(operator)
    assert payee_check_latest(recipient).failed
    sign_in(client, operator)

    response = client.post(
        reverse("parties:recipient-check-payee", args=[recipient.flashfx_id]), follow=True
    )

    assert "Payee checked again: MATCH." in response.text
    assert payee_check_latest(recipient).code == "MATCH"
    event = AuditEvent.objects.get(action="party.recipient.payee_checked")
    assert event.details["code"] == "MATCH" and event.actor == operator.username


def test_a_viewer_may_not_ask_for_a_check(client, app_sandbox, operator):
    recipient = create(operator)
    sign_in(client, make_staff("viewer"))
    url = reverse("parties:recipient-check-payee", args=[recipient.flashfx_id])
    assert client.post(url).status_code == 403
    assert PayeeCheck.objects.count() == 1
