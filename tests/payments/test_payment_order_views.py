"""The international payment pages through Django's test client, against the sandbox: the live
quote (its fragment, on either side of the amount), the maker's quote saved as shown and an
expired or mismatched one replaced before anything is saved, refusals on the field they name,
the step-up that keeps what was typed, the maker who never sees Approve, the approver's fresh
quote and its difference, approval sent to FlashFX and followed to CLOSED, the page's poll, and
the list's filters and pages."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse
from django.utils import timezone
from payment_order_support import propose_payment
from payout_support import fund, mirror_recipient, sender_at_flashfx
from refund_support import app_at
from staff import make_staff, sign_in

from mirrors.client import flashfx_client
from mirrors.registry import registry
from payments.models import PaymentOrder
from payments.services import payment_orders as orders

pytestmark = pytest.mark.django_db
STALE = 3600  # seconds since the last code: older than STAFF_STEP_UP_MAX_AGE_SECONDS
NEW = "/payments/new/"
QUOTE = "/payments/new/quote/"
GBP_RECIPIENT = {
    "accountIdType": "IBAN",
    "currency": "GBP",
    "iban": "GB29NWBK60161331926819",
    "bic": "NWBKGB2L",
    "firstName": "Oliver",
    "lastName": "Bennett",
}
HX = {"HX-Request": "true"}


@pytest.fixture
def app(sandbox, settings):
    with app_at(sandbox, settings):
        fund(sandbox, "100000.00")
        yield sandbox


@pytest.fixture
def recipient(app):
    return mirror_recipient(flashfx_client().create_recipient(GBP_RECIPIENT).id)


@pytest.fixture
def sender(app):
    return sender_at_flashfx()


def as_member(client, role, username=None, **kwargs):
    user = make_staff(role, username)
    sign_in(client, user, **kwargs)
    return user


def inputs(recipient, **changes) -> dict:
    return {
        "recipient": recipient.pk,
        "from_currency": "AUD",
        "size": "1000.00",
        "size_side": "from",
    } | changes


def form(recipient, sender, token, **changes) -> dict:
    return (
        inputs(recipient)
        | {
            "sender": sender.pk if sender else "",
            "sub_client": "",
            "reason": "SERVICES",
            "source_of_funds": "BUSINESS_FUNDS",
            "reference": "Invoice 42",
            "quote_token": token,
        }
        | changes
    )


def quote_token(html: bytes) -> str:
    match = re.search(rb'name="quote_token" value="([^"]*)"', html)
    assert match, "no quote token"
    return match[1].decode()


def live_quote(client, recipient, **changes):
    fragment = client.get(QUOTE, inputs(recipient, **changes), headers=HX)
    assert fragment.status_code == 200
    return fragment


def propose(maker, recipient, sender, size="1000.00") -> PaymentOrder:
    return propose_payment(maker, recipient=recipient, sender=sender, size=size)


# --- New, with its live quote -----------------------------------------------------------------


def test_an_operator_sees_a_live_quote_and_submits_the_payment_with_it(client, recipient, sender):
    maker = as_member(client, "operator")
    page = client.get(NEW)
    assert page.status_code == 200
    html = page.content.decode()
    assert "Submit for approval" in html
    assert '<label for="id_size">Amount</label>' in html
    assert '<label for="id_recipient">Recipient abroad</label>' in html
    assert (
        "Oliver Bennett \u2014 IBAN GB29NWBK60161331926819 BIC NWBKGB2L (GBP, GB) (new bank details)"
        in html
    )
    assert 'id="quote-empty"' in html  # no quote before the inputs are there

    fragment = live_quote(client, recipient)
    text = fragment.content.decode()
    assert text.lstrip().startswith('<section id="payment-quote"')
    assert "<html" not in text
    assert "1 AUD = " in text and "GBP" in text
    assert re.search(r"load delay:(1[01]\d|120)s", text)  # renewed when it expires (120 s)
    assert 'data-countdown-to="' in text
    assert re.search(r'id="quote-from-amount">AUD 1,000.00<', text)
    token = quote_token(fragment.content)

    response = client.post(NEW, form(recipient, sender, token), headers={"referer": NEW})
    order = PaymentOrder.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/payments/{order.code}/"
    assert (order.created_by, order.state) == (maker, "awaiting_approval")
    assert (order.from_currency, order.to_currency) == ("AUD", "GBP")
    assert (order.size, order.size_currency) == (Decimal("1000.00"), "AUD")
    # The maker's quote is the one the fragment showed, not numbers the browser sent.
    shown_to = re.search(r'id="quote-to-amount">GBP ([\d.]+)<', text)[1]
    assert order.quoted_to_amount == Decimal(shown_to)
    assert f"1 AUD = {order.quoted_rate} GBP" in text


def test_the_amount_may_be_what_the_recipient_gets(client, recipient, sender):
    as_member(client, "operator")
    fragment = live_quote(client, recipient, size="500.00", size_side="to")
    assert b'id="quote-to-amount">GBP 500.00<' in fragment.content
    response = client.post(
        NEW,
        form(recipient, sender, quote_token(fragment.content), size="500.00", size_side="to"),
        headers={"referer": NEW},
    )
    assert response.status_code == 302
    order = PaymentOrder.objects.get()
    assert (order.size, order.size_currency) == (Decimal("500.00"), "GBP")
    assert order.quoted_to_amount == Decimal("500.00")


def test_a_quote_for_other_amounts_or_none_is_replaced_and_nothing_is_saved(
    client, recipient, sender
):
    as_member(client, "operator")
    token = quote_token(live_quote(client, recipient, size="1000.00").content)
    response = client.post(NEW, form(recipient, sender, token, size="2000.00"))
    assert response.status_code == 422
    html = response.content.decode()
    assert "here is a fresh one" in html
    assert 'id="quote-from-amount">AUD 2,000.00<' in html
    assert 'value="2000.00"' in html and 'value="Invoice 42"' in html  # nothing typed is lost
    assert not PaymentOrder.objects.exists()
    response = client.post(NEW, form(recipient, sender, ""))
    assert response.status_code == 422 and not PaymentOrder.objects.exists()
    # The fresh quote it showed is good for a second try.
    fresh = quote_token(response.content)
    assert client.post(NEW, form(recipient, sender, fresh)).status_code == 302


def test_an_expired_quote_is_replaced_before_anything_is_saved(client, recipient, sender):
    as_member(client, "operator")
    token = quote_token(live_quote(client, recipient).content)
    session = client.session
    session["payment_quotes"][token]["expires_at"] = ["t", timezone.now().isoformat()]
    session.save()
    response = client.post(NEW, form(recipient, sender, token))
    assert response.status_code == 422
    assert b"has expired" in response.content
    assert not PaymentOrder.objects.exists()


def test_refusals_show_why_on_their_field_and_save_nothing(client, recipient, sender):
    as_member(client, "operator")
    token = quote_token(live_quote(client, recipient).content)
    response = client.post(NEW, form(recipient, sender, token, size="12.345"))
    assert response.status_code == 422
    assert b"at most two decimal places" in response.content
    response = client.post(NEW, form(recipient, sender, token, from_currency="GBP"))
    assert response.status_code == 422
    assert b"The recipient&#x27;s account is in GBP" in response.content
    response = client.post(NEW, form(recipient, sender, token, reason=""))
    assert response.status_code == 422
    assert b"Choose the reason for the payment." in response.content
    assert not PaymentOrder.objects.exists()
    # The live quote says what is wrong with an amount as it is typed.
    fragment = live_quote(client, recipient, size="abc")
    assert b"The amount must be a number" in fragment.content


def test_creating_needs_a_fresh_code_and_keeps_what_was_typed(client, recipient, sender):
    maker = as_member(client, "operator", otp_age=STALE)
    token = quote_token(live_quote(client, recipient).content)
    response = client.post(NEW, form(recipient, sender, token), headers={"referer": NEW})
    assert response.status_code == 302 and response["Location"].startswith("/accounts/step-up/")
    assert not PaymentOrder.objects.exists()
    sign_in(client, maker)  # the code, entered
    page = client.get(NEW).content.decode()
    assert "Check the payment and its quote, then submit it again." in page
    assert 'value="Invoice 42"' in page and 'value="1000.00"' in page
    assert 'id="quote-rate"' in page
    assert client.post(NEW, form(recipient, sender, quote_token(page.encode()))).status_code == 302
    assert PaymentOrder.objects.get().created_by == maker


@pytest.mark.parametrize("role", ["viewer", "approver", "compliance"])
def test_members_who_may_not_start_payments_get_403(client, role, recipient, sender):
    as_member(client, role)
    assert client.get(NEW).status_code == 403
    assert client.get(QUOTE, inputs(recipient), headers=HX).status_code == 403
    assert client.post(NEW, form(recipient, sender, "")).status_code == 403
    assert not PaymentOrder.objects.exists()


# --- One payment ------------------------------------------------------------------------------


def test_the_maker_never_sees_approve_and_their_post_is_refused(client, recipient, sender):
    maker = make_staff("operator")
    order = propose(maker, recipient, sender)
    maker.groups.add(Group.objects.get(name="approver"))  # even holding the approver's role
    sign_in(client, maker)
    page = client.get(order.get_absolute_url())
    assert page.status_code == 200
    assert b">Approve<" not in page.content and b">Decline<" not in page.content
    assert b'id="payment-fresh-quote"' not in page.content
    url = reverse("payments:payment-decide", args=[order.code, "approve"])
    assert client.post(url, headers={"referer": url}).status_code == 403
    assert PaymentOrder.objects.get().state == "awaiting_approval"


def test_an_approver_sees_the_makers_quote_a_fresh_one_and_the_difference(
    client, recipient, sender
):
    order = propose(make_staff("operator"), recipient, sender)
    as_member(client, "approver")
    html = client.get(order.get_absolute_url()).content.decode()
    assert ">Approve<" in html and ">Decline<" in html
    assert f'id="maker-to-amount">GBP {order.quoted_to_amount}<' in html
    assert 'id="payment-fresh-quote"' in html and 'id="fresh-rate">1 AUD = ' in html
    assert 'id="quote-difference"' in html
    # The sandbox's rate does not move: the same amounts, no difference.
    assert re.search(r'id="difference-to">GBP 0(\.0+)? ', html)
    # The fresh quote asks for itself again when it expires; the same view answers.
    fragment = client.get(
        order.get_absolute_url(), headers=HX | {"HX-Target": "payment-fresh-quote"}
    )
    assert fragment.content.lstrip().startswith(b'<section id="payment-fresh-quote"')
    assert b"fresh-rate" in fragment.content


def test_declining_closes_it_with_the_reason(client, recipient, sender):
    order = propose(make_staff("operator"), recipient, sender)
    as_member(client, "approver")
    url = reverse("payments:payment-decide", args=[order.code, "decline"])
    response = client.post(url, {"note": "Not ours"}, headers={"referer": url})
    assert response.status_code == 302
    order.refresh_from_db()
    assert (order.state, order.error_message) == ("declined", "Not ours")
    assert b"Declined because" in client.get(order.get_absolute_url()).content
    bogus = reverse("payments:payment-decide", args=[order.code, "maybe"])
    assert client.post(bogus, headers={"referer": bogus}).status_code == 404


def test_approving_needs_a_fresh_code(client, recipient, sender):
    order = propose(make_staff("operator"), recipient, sender)
    as_member(client, "approver", otp_age=STALE)
    url = reverse("payments:payment-decide", args=[order.code, "approve"])
    response = client.post(url, headers={"referer": order.get_absolute_url()})
    assert response["Location"].startswith("/accounts/step-up/")
    assert PaymentOrder.objects.get().state == "awaiting_approval"


def test_approved_it_is_sent_once_and_the_page_follows_it_to_closed(
    client, recipient, sender, settings, django_capture_on_commit_callbacks, app
):
    settings.CELERY_TASK_ALWAYS_EAGER = True
    order = propose(make_staff("operator"), recipient, sender)
    as_member(client, "approver")
    url = reverse("payments:payment-decide", args=[order.code, "approve"])
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(url, headers={"referer": url})
    assert response.status_code == 302
    order.refresh_from_db()
    assert order.state == "submitted" and order.payment is not None
    assert len(flashfx_client().payments(externalId=order.code)) == 1
    page = client.get(order.get_absolute_url()).content.decode()
    assert 'id="flashfx-status">OPEN<' in page
    assert f'id="settled-from">AUD {order.payment.from_amount:,.2f}<' in page
    assert 'hx-trigger="every' in page  # OPEN: still followed

    assert app.advance("payments", order.payment.flashfx_id, "CLOSED").status_code == 200
    wire = flashfx_client().payment(order.payment.flashfx_id)
    registry.get("payments").apply(wire, observed_at=timezone.now(), source="sync")
    fragment = client.get(order.get_absolute_url(), headers=HX).content.decode()
    assert fragment.lstrip().startswith('<section id="payment-status"')
    assert 'id="flashfx-status">CLOSED<' in fragment
    assert f'id="settled-to">GBP {wire.to_amount}<' in fragment
    assert "hx-trigger" not in fragment.split("</section>")[0]  # final: the polling stops
    assert 'id="payment-timeline"' in fragment and 'hx-swap-oob="true"' in fragment
    assert "CLOSED" in fragment.split('id="payment-timeline"')[1]


def test_the_maker_withdraws_it_while_it_awaits_approval(client, recipient, sender):
    maker = make_staff("operator")
    order = propose(maker, recipient, sender)
    sign_in(client, maker)
    assert b">Withdraw<" in client.get(order.get_absolute_url()).content
    url = reverse("payments:payment-cancel", args=[order.code])
    assert client.post(url, headers={"referer": url}).status_code == 302
    assert PaymentOrder.objects.get().state == "cancelled"
    page = client.get(order.get_absolute_url()).content
    assert b"hx-trigger" not in page  # nothing in flight: no polling


# --- The list ---------------------------------------------------------------------------------


def test_the_list_filters_by_state_and_pages_by_cursor(client, recipient, sender):
    maker = make_staff("operator")
    made = [propose(maker, recipient, sender, size=f"{n}00.00") for n in range(1, 4)]
    orders.payment_order_cancel(order=made[0], by=maker)
    as_member(client, "viewer")
    listing = client.get("/payments/?state=cancelled")
    assert made[0].code.encode() in listing.content
    assert made[1].code.encode() not in listing.content
    everything = client.get("/payments/").content
    assert all(o.code.encode() in everything for o in made)
    assert b"New payment" not in everything  # a viewer starts none
    from payments.selectors.payment_orders import payment_order_list

    first = payment_order_list(limit=2)
    assert [o.code for o in first.rows] == [made[2].code, made[1].code]
    page = client.get(f"/payments/?after={first.next_cursor}")
    assert made[0].code.encode() in page.content and made[2].code.encode() not in page.content
    assert client.get("/payments/?after=garbage&state=nonsense").status_code == 200
