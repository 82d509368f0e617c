"""The payout pages through Django's test client: the form and its refusals on the field they
name, the step-up, the maker who never sees Approve and whose POST is refused, the page's
poll, the list's filters and pages, and "Waiting for my approval" with its bulk approve."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.urls import reverse
from payout_support import fund, recipient_at_flashfx, sender_at_flashfx
from refund_support import app_at
from staff import make_staff, sign_in

from parties.models import Recipient, Sender
from payments.models import Payout, PayoutOutbox
from payments.services import payouts

pytestmark = pytest.mark.django_db
STALE = 3600  # seconds since the last code: older than STAFF_STEP_UP_MAX_AGE_SECONDS


@pytest.fixture
def recipient():
    return Recipient.objects.create(
        flashfx_id="a" * 24,
        account_id_type="BSB",
        currency="AUD",
        display_name="Mia Ng",
        bsb="062000",
        account_no="12345678",
    )


@pytest.fixture
def sender():
    return Sender.objects.create(flashfx_id="b" * 24, company_name="Demo Company Pty Ltd")


def as_member(client, role, username=None, **kwargs):
    user = make_staff(role, username)
    sign_in(client, user, **kwargs)
    return user


def form(recipient, sender, **changes):
    return {
        "recipient": recipient.pk,
        "amount": "250.00",
        "currency": "AUD",
        "reference": "INV 1042",
        "sender": sender.pk,
        "sub_client": "",
        "reason": "SERVICES",
    } | changes


NEW = "/payouts/new/"


def test_an_operator_submits_a_payout_for_approval(client, recipient, sender):
    maker = as_member(client, "operator")
    page = client.get(NEW)
    assert page.status_code == 200
    assert b"Submit for approval" in page.content
    assert b'data-count-limit="18"' in page.content
    response = client.post(NEW, form(recipient, sender), headers={"referer": NEW})
    payout = Payout.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/payouts/{payout.code}/"
    assert payout.maker == maker and payout.state == "awaiting_approval"


def test_a_refused_payout_shows_why_on_its_field_and_saves_nothing(client, recipient, sender):
    as_member(client, "operator")
    response = client.post(NEW, form(recipient, sender, reference="x" * 19))
    assert response.status_code == 422
    assert b"At most 18 characters" in response.content
    response = client.post(NEW, form(recipient, sender, amount="12.345"))
    assert response.status_code == 422
    assert b"at most two decimal places" in response.content
    assert not Payout.objects.exists()


def test_creating_needs_a_fresh_code(client, recipient, sender):
    as_member(client, "operator", otp_age=STALE)
    response = client.post(NEW, form(recipient, sender), headers={"referer": NEW})
    assert response.status_code == 302 and response["Location"].startswith("/accounts/step-up/")
    assert not Payout.objects.exists()


@pytest.mark.parametrize("role", ["viewer", "approver", "compliance"])
def test_members_who_may_not_start_payouts_get_403(client, role, recipient, sender):
    as_member(client, role)
    assert client.get(NEW).status_code == 403
    assert client.post(NEW, form(recipient, sender)).status_code == 403
    assert not Payout.objects.exists()


def test_the_maker_never_sees_approve_and_their_post_is_refused(client, recipient, sender):
    maker = make_staff("operator")
    payout = payouts.payout_create(
        by=maker,
        recipient=recipient,
        sender=sender,
        amount=Decimal("100.00"),
        reference="INV 1",
        reason="SERVICES",
    )
    # Even holding the approver's role as well.
    from django.contrib.auth.models import Group

    maker.groups.add(Group.objects.get(name="approver"))
    sign_in(client, maker)
    page = client.get(payout.get_absolute_url())
    assert page.status_code == 200
    assert b">Approve<" not in page.content and b">Decline<" not in page.content
    assert b"other members must approve it" in page.content
    url = reverse("payments:payout-decide", args=[payout.code, "approve"])
    assert client.post(url, headers={"referer": url}).status_code == 403
    assert Payout.objects.get().state == "awaiting_approval"


def test_an_approver_sees_approve_and_decline_and_declining_closes_it(client, recipient, sender):
    payout = payouts.payout_create(
        by=make_staff("operator"),
        recipient=recipient,
        sender=sender,
        amount=Decimal("100.00"),
        reference="INV 1",
        reason="SERVICES",
    )
    as_member(client, "approver")
    page = client.get(payout.get_absolute_url())
    assert b">Approve<" in page.content and b">Decline<" in page.content
    url = reverse("payments:payout-decide", args=[payout.code, "decline"])
    response = client.post(url, {"note": "Not ours"}, headers={"referer": url})
    assert response.status_code == 302
    payout.refresh_from_db()
    assert (payout.state, payout.error_message) == ("declined", "Not ours")


def test_approving_needs_a_fresh_code(client, recipient, sender):
    payout = payouts.payout_create(
        by=make_staff("operator"),
        recipient=recipient,
        sender=sender,
        amount=Decimal("100.00"),
        reference="INV 1",
        reason="SERVICES",
    )
    as_member(client, "approver", otp_age=STALE)
    url = reverse("payments:payout-decide", args=[payout.code, "approve"])
    response = client.post(url, headers={"referer": payout.get_absolute_url()})
    assert response["Location"].startswith("/accounts/step-up/")
    assert Payout.objects.get().state == "awaiting_approval"


def test_the_page_polls_while_in_flight_and_answers_htmx_with_its_status_section(
    client, recipient, sender
):
    payout = payouts.payout_create(
        by=make_staff("operator"),
        recipient=recipient,
        sender=sender,
        amount=Decimal("100.00"),
        reference="INV 1",
        reason="SERVICES",
    )
    as_member(client, "viewer")
    page = client.get(payout.get_absolute_url())
    assert b'hx-trigger="every 3s"' in page.content
    fragment = client.get(payout.get_absolute_url(), headers={"HX-Request": "true"})
    assert fragment.content.lstrip().startswith(b'<section id="payout-status"')
    assert b'id="payout-timeline" class="card deposit-timeline" aria-labelledby' in fragment.content
    assert b'hx-swap-oob="true"' in fragment.content
    payouts.payout_cancel(payout=payout, by=payout.maker)
    page = client.get(payout.get_absolute_url())
    assert b"hx-trigger" not in page.content  # nothing in flight: no polling


def test_the_list_filters_by_state_and_pages_by_cursor(client, recipient, sender, settings):
    maker = make_staff("operator")
    made = [
        payouts.payout_create(
            by=maker,
            recipient=recipient,
            sender=sender,
            amount=Decimal(f"{n}.00"),
            reference=f"INV {n}",
            reason="SERVICES",
        )
        for n in range(1, 4)
    ]
    payouts.payout_cancel(payout=made[0], by=maker)
    as_member(client, "viewer")
    listing = client.get("/payouts/?state=cancelled")
    assert made[0].code.encode() in listing.content
    assert made[1].code.encode() not in listing.content
    from payments.selectors.payouts import payout_list

    first = payout_list(limit=2)
    assert [p.code for p in first.rows] == [made[2].code, made[1].code]
    second = payout_list(limit=2, after=first.next_cursor)
    assert [p.code for p in second.rows] == [made[0].code] and second.next_cursor is None
    assert client.get(f"/payouts/?after={first.next_cursor}").status_code == 200
    assert client.get("/payouts/?after=garbage&state=nonsense").status_code == 200


def test_waiting_for_my_approval_and_bulk_approve(client, recipient, sender, settings):
    settings.CELERY_TASK_ALWAYS_EAGER = False
    maker = make_staff("operator")
    mine = payouts.payout_create(
        by=maker,
        recipient=recipient,
        sender=sender,
        amount=Decimal("100.00"),
        reference="INV 1",
        reason="SERVICES",
    )
    other = payouts.payout_create(
        by=maker,
        recipient=recipient,
        sender=sender,
        amount=Decimal("200.00"),
        reference="INV 2",
        reason="SERVICES",
    )
    as_member(client, "approver", "alice")
    page = client.get("/payouts/waiting/")
    assert mine.code.encode() in page.content and other.code.encode() in page.content
    response = client.post(
        "/payouts/waiting/approve/",
        {"code": [mine.code]},
        headers={"referer": "/payouts/waiting/"},
    )
    assert response.status_code == 302
    assert Payout.objects.get(pk=mine.pk).state == "approved"
    assert Payout.objects.get(pk=other.pk).state == "awaiting_approval"
    assert PayoutOutbox.objects.count() == 1
    page = client.get("/payouts/waiting/")
    assert f"Approved 1: {mine.code}.".encode() in page.content  # the message
    assert f'value="{mine.code}"'.encode() not in page.content  # no longer to approve
    assert f'value="{other.code}"'.encode() in page.content


def test_the_form_shows_the_cleared_balance(client, sandbox, settings):
    with app_at(sandbox, settings):
        fund(sandbox, "1234.56")
        recipient_at_flashfx()
        sender_at_flashfx()
        as_member(client, "operator")
        page = client.get(NEW)
        assert b"Cleared balance: AUD 1,234.56" in page.content
        assert b"Mia Ng" in page.content


def test_only_the_maker_changes_a_payout_and_with_a_fresh_code(client, recipient, sender):
    maker = make_staff("operator")
    payout = payouts.payout_create(
        by=maker,
        recipient=recipient,
        sender=sender,
        amount=Decimal("100.00"),
        reference="INV 1",
        reason="SERVICES",
    )
    url = reverse("payments:payout-edit", args=[payout.code])
    as_member(client, "operator", "someone-else")
    assert client.get(url).status_code == 403
    sign_in(client, maker, otp_age=STALE)
    assert client.get(url).status_code == 200
    response = client.post(url, form(recipient, sender, amount="150.00"), headers={"referer": url})
    assert response["Location"].startswith("/accounts/step-up/")
    assert Payout.objects.get().amount == Decimal("100.00")
    sign_in(client, maker)
    response = client.post(url, form(recipient, sender, amount="150.00"), headers={"referer": url})
    assert response.status_code == 302
    assert Payout.objects.get().amount == Decimal("150.00")


def test_the_page_flags_new_bank_details_and_shows_the_payee_check(client, recipient, sender):
    from django.utils import timezone

    from parties.models import PayeeCheck

    payout = payouts.payout_create(
        by=make_staff("operator"),
        recipient=recipient,
        sender=sender,
        amount=Decimal("100.00"),
        reference="INV 1",
        reason="SERVICES",
    )
    as_member(client, "approver")
    page = client.get(payout.get_absolute_url()).content.decode()
    assert "new recipient / bank details changed" not in page
    assert "No check of these bank details yet" in page

    Recipient.objects.filter(pk=recipient.pk).update(bank_details_changed_at=timezone.now())
    PayeeCheck.objects.create(
        recipient=recipient,
        bsb="062000",
        account_no="12345678",
        name_asked="Mia Ng",
        code="CLOSE_MATCH",
        bank_name="MIA NGUYEN",
    )
    page = client.get(payout.get_absolute_url()).content.decode()
    assert "new recipient / bank details changed" in page
    assert "CLOSE_MATCH" in page and "MIA NGUYEN" in page
    waiting = client.get("/payouts/waiting/").content.decode()
    assert "new bank details" in waiting and "CLOSE_MATCH" in waiting


def test_a_deleted_recipient_takes_no_new_payout(client, recipient, sender):
    from django.utils import timezone

    Recipient.objects.filter(pk=recipient.pk).update(deleted_at=timezone.now())
    as_member(client, "operator")
    assert b"Mia Ng" not in client.get(NEW).content
    with pytest.raises(payouts.PayoutError, match="deleted"):
        payouts.payout_create(
            by=make_staff("operator", "op2"),
            recipient=Recipient.objects.get(pk=recipient.pk),
            sender=sender,
            amount=Decimal("1.00"),
            reference="X",
            reason="SERVICES",
        )
