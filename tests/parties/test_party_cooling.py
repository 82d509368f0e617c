"""The cooling period: when we first saw a recipient's bank details, however they reached us
(our page, sync, reconciliation), and until when payouts to it are flagged."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone
from parties_support import app_at

from flashfx import types
from parties.mirrors import RECIPIENTS
from parties.models import Recipient
from parties.selectors import recipient_cooling_until

# Sync's read-ahead thread reads the token store on its own database connection: the rows
# the test writes must be committed, not held in a test transaction.
pytestmark = pytest.mark.django_db(transaction=True)

CREATE = """mutation($input: RecipientInput!) {
  createRecipient(input: $input) { success recipient { id createdAt } } }"""
UPDATE = """mutation($id: ID, $input: RecipientInput!) {
  updateRecipient(id: $id, input: $input) { success } }"""
OUTSIDE = {
    "accountIdType": "BSB",
    "currency": "AUD",
    "bsb": "062000",
    "accountNo": "12345678",
    "firstName": "Mia",
    "lastName": "Ng",
}


@pytest.fixture
def app_sandbox(sandbox, settings):
    with app_at(sandbox, settings):
        yield sandbox


def made_elsewhere(sandbox, **changes) -> str:
    """A recipient created at FlashFX by someone else (FlashConnect, another system)."""
    reply = sandbox.data(CREATE, {"input": {**OUTSIDE, **changes}})["createRecipient"]
    assert reply["success"], reply
    return reply["recipient"]["id"]


def changed_elsewhere(sandbox, flashfx_id: str, **changes) -> None:
    assert sandbox.data(UPDATE, {"id": flashfx_id, "input": changes})["updateRecipient"]["success"]


def full_sync() -> None:
    call_command("sync_flashfx", "--entity", "recipients", "--full", stdout=StringIO())


def test_a_recipient_first_seen_by_sync_cools_from_its_creation_at_flashfx(app_sandbox):
    flashfx_id = made_elsewhere(app_sandbox)

    full_sync()

    recipient = Recipient.objects.get(flashfx_id=flashfx_id)
    assert recipient.bank_details_changed_at == recipient.flashfx_created_at
    assert recipient_cooling_until(recipient) == recipient.flashfx_created_at + timedelta(hours=24)


def test_new_bank_details_seen_by_sync_start_the_cooling_again(app_sandbox):
    flashfx_id = made_elsewhere(app_sandbox)
    full_sync()
    long_ago = timezone.now() - timedelta(days=90)
    Recipient.objects.filter(flashfx_id=flashfx_id).update(bank_details_changed_at=long_ago)

    changed_elsewhere(app_sandbox, flashfx_id, email="mia@example.com")
    full_sync()
    assert Recipient.objects.get(flashfx_id=flashfx_id).bank_details_changed_at == long_ago

    before = timezone.now()
    changed_elsewhere(app_sandbox, flashfx_id, accountNo="87654321")
    full_sync()
    recipient = Recipient.objects.get(flashfx_id=flashfx_id)
    assert recipient.account_no == "87654321"
    assert recipient.bank_details_changed_at >= before
    assert recipient_cooling_until(recipient) is not None

    full_sync()  # nothing new: the date stays where it is
    assert Recipient.objects.get(flashfx_id=flashfx_id).bank_details_changed_at == (
        recipient.bank_details_changed_at
    )


def test_reconciliation_dates_a_change_of_bank_details_too(app_sandbox):
    flashfx_id = made_elsewhere(app_sandbox)
    full_sync()
    long_ago = timezone.now() - timedelta(days=90)
    Recipient.objects.filter(flashfx_id=flashfx_id).update(bank_details_changed_at=long_ago)
    changed_elsewhere(app_sandbox, flashfx_id, bsb="063000")

    call_command("reconcile", "--entity", "recipients", stdout=StringIO())

    recipient = Recipient.objects.get(flashfx_id=flashfx_id)
    assert recipient.bsb == "063000"
    assert recipient.bank_details_changed_at > long_ago


def wire(**fields) -> types.Recipient:
    return types.Recipient.from_wire(
        {"id": "65f0c0ffee0000000000c001", "accountIdType": "BSB", "currency": "AUD", **fields}
    )


def test_a_recipient_created_long_ago_elsewhere_is_not_new():
    created = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
    version = wire(bsb="062000", accountNo="12345678", createdAt="2024-01-02T03:04:05.000Z")

    RECIPIENTS.apply(version, observed_at=timezone.now(), source="sync")

    recipient = Recipient.objects.get()
    assert recipient.bank_details_changed_at == created
    assert recipient_cooling_until(recipient) is None


def test_the_cooling_lasts_as_long_as_the_setting_says(settings):
    RECIPIENTS.apply(wire(bsb="062000", accountNo="12345678"), observed_at=timezone.now())
    recipient = Recipient.objects.get()
    since = recipient.bank_details_changed_at

    settings.PAYOUT_NEW_RECIPIENT_COOLING_HOURS = 48
    assert recipient_cooling_until(recipient) == since + timedelta(hours=48)
    settings.PAYOUT_NEW_RECIPIENT_COOLING_HOURS = 0
    assert recipient_cooling_until(recipient) is None
