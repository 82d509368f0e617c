"""Creating, changing and deleting parties at FlashFX through the services, against the
sandbox: the reply is mirrored and audited, FlashFX's refusal changes nothing and names the
field, and a recipient's bank details are dated for the cooling period."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from harness import close_app_client
from parties_support import SENDER, SUB_CLIENT, app_at, sandbox_recipient
from staff import make_staff

from backoffice.models import AuditEvent
from parties.models import Recipient, Sender, SubClient
from parties.selectors import recipient_cooling_until
from parties.services import recipients, senders, sub_clients
from parties.services.calls import PartyError, PartyRefused

pytestmark = pytest.mark.django_db

IBAN_RECIPIENT = {
    "company_name": "Thames Tea Ltd",
    "currency": "GBP",
    "iban": "GB29NWBK60161331926819",
    "bic": "NWBKGB2L",
}


@pytest.fixture
def app_sandbox(sandbox, settings):
    with app_at(sandbox, settings):
        yield sandbox


@pytest.fixture
def operator():
    return make_staff("operator")


def iban_fields(**changes):
    return {**IBAN_RECIPIENT, "account_id_type": "IBAN", **changes}


def test_a_created_recipient_is_mirrored_audited_and_cooling(app_sandbox, operator):
    recipient = recipients.recipient_create(fields=iban_fields(), actor=operator)

    assert recipient.flashfx_id and recipient.iban == "GB29NWBK60161331926819"
    assert recipient.display_name == "Thames Tea Ltd" and recipient.currency == "GBP"
    assert recipient.external_id.startswith("bo-")  # ours, to find it again after no answer
    assert abs(recipient.bank_details_changed_at - timezone.now()) < timedelta(minutes=1)
    until = recipient_cooling_until(recipient)
    assert until == recipient.bank_details_changed_at + timedelta(hours=24)
    event = AuditEvent.objects.get(action=recipients.CREATED)
    assert event.actor == operator.username and event.object_id == str(recipient.pk)
    assert event.after["iban"] == "GB29NWBK60161331926819"


def test_flashfxs_refusal_names_our_field_and_changes_nothing(app_sandbox, operator):
    # FlashFX judges whether a name "looks like a domain"; our form leaves that to it.
    fields = iban_fields(company_name="", first_name="Ben", last_name="Ng.com")

    with pytest.raises(PartyRefused) as refused:
        recipients.recipient_create(fields=fields, actor=operator)

    assert refused.value.field == "last_name"
    assert "domain" in refused.value.message
    assert not Recipient.objects.exists()
    assert not AuditEvent.objects.filter(action=recipients.CREATED).exists()


def test_changing_the_bank_details_starts_the_cooling_again(app_sandbox, operator):
    recipient = recipients.recipient_create(fields=iban_fields(), actor=operator)
    long_ago = timezone.now() - timedelta(days=30)
    Recipient.objects.filter(pk=recipient.pk).update(bank_details_changed_at=long_ago)
    recipient.refresh_from_db()
    assert recipient_cooling_until(recipient) is None

    renamed = recipients.recipient_update(
        recipient=recipient, fields=iban_fields(email="tea@thames.example"), actor=operator
    )
    assert renamed.email == "tea@thames.example"
    assert renamed.bank_details_changed_at == long_ago  # same bank details: still not new

    moved = recipients.recipient_update(
        recipient=renamed, fields=iban_fields(iban="DE89370400440532013000", bic=""), actor=operator
    )
    assert moved.iban == "DE89370400440532013000"
    assert moved.bank_details_changed_at > long_ago
    assert recipient_cooling_until(moved) is not None
    events = AuditEvent.objects.filter(action=recipients.UPDATED).order_by("pk")
    assert [e.after["iban"] for e in events] == ["GB29NWBK60161331926819", "DE89370400440532013000"]
    assert events.last().before["iban"] == "GB29NWBK60161331926819"


def test_a_refused_change_leaves_our_mirror_as_it_was(app_sandbox, operator):
    recipient = recipients.recipient_create(fields=iban_fields(), actor=operator)

    with pytest.raises(PartyRefused) as refused:
        recipients.recipient_update(
            recipient=recipient, fields=iban_fields(company_name="<Tea>"), actor=operator
        )

    assert refused.value.field == "company_name"
    recipient.refresh_from_db()
    assert recipient.display_name == "Thames Tea Ltd"
    assert not AuditEvent.objects.filter(action=recipients.UPDATED).exists()


def test_a_deleted_recipient_is_gone_at_flashfx_and_kept_here_marked(app_sandbox, operator):
    recipient = recipients.recipient_create(fields=iban_fields(), actor=operator)

    deleted = recipients.recipient_delete(recipient=recipient, actor=operator)

    assert sandbox_recipient(app_sandbox, recipient.flashfx_id) is None
    assert deleted.deleted_at is not None
    assert AuditEvent.objects.get(action=recipients.DELETED).details["outcome"] == "deleted"
    with pytest.raises(PartyError):
        recipients.recipient_update(recipient=deleted, fields=iban_fields(), actor=operator)


def test_a_recipient_flashfx_no_longer_has_counts_as_deleted(app_sandbox, operator):
    recipient = recipients.recipient_create(fields=iban_fields(), actor=operator)
    app_sandbox.data(
        "mutation($id: ID) { deleteRecipient(id: $id) { success } }", {"id": recipient.flashfx_id}
    )

    deleted = recipients.recipient_delete(recipient=recipient, actor=operator)

    assert deleted.deleted_at is not None
    event = AuditEvent.objects.get(action=recipients.DELETED)
    assert event.details["outcome"] == "not found at FlashFX"


def test_flashfx_unreachable_changes_nothing_and_says_so(app_sandbox, operator, settings):
    settings.FLASHFX_API_URL = "http://127.0.0.1:9/"  # nothing listens there
    close_app_client()

    with pytest.raises(PartyError) as failed:
        recipients.recipient_create(fields=iban_fields(), actor=operator)

    assert "could not be reached" in failed.value.message
    assert not Recipient.objects.exists()


def test_senders_are_created_changed_and_deleted(app_sandbox, operator):
    sender = senders.sender_create(
        fields={**SENDER, "street": "1 Quay St", "country": "AU"}, actor=operator
    )
    assert sender.company_name == "Harbour Imports Pty Ltd" and sender.flashfx_id

    changed = senders.sender_update(
        sender=sender, fields={**SENDER, "email": "accounts@harbour.example"}, actor=operator
    )
    assert changed.email == "accounts@harbour.example"

    senders.sender_delete(sender=changed, actor=operator)
    assert Sender.objects.get(pk=sender.pk).deleted_at is not None
    assert list(
        AuditEvent.objects.filter(action__startswith="party.sender.")
        .order_by("pk")
        .values_list("action", flat=True)
    ) == [senders.CREATED, senders.UPDATED, senders.DELETED]


def test_a_refused_sender_names_the_address_field(app_sandbox, operator):
    with pytest.raises(PartyRefused) as refused:
        senders.sender_create(
            fields={**SENDER, "street": "1 Quay St", "country": "AU", "postcode": "x" * 12 + "1"},
            actor=operator,
        )
    assert refused.value.field == "postcode"
    assert not Sender.objects.exists()


def test_a_sub_client_gets_its_bsb_and_account_number(app_sandbox, operator):
    created = sub_clients.sub_client_create(fields=SUB_CLIENT, actor=operator)

    assert created.bsb == "802919" and len(created.account_no) == 7
    assert created.full_name == "Ada Lovelace"
    assert SubClient.objects.get(flashfx_id=created.flashfx_id) == created
    event = AuditEvent.objects.get(action=sub_clients.CREATED)
    assert event.after["account_no"] == created.account_no
