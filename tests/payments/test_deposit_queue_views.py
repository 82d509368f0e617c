"""The queue page: full page and htmx fragment, filters in the URL, cursors, "N new", roles."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from queue_support import make_deposit
from staff import make_staff, sign_in

from payments.models import DepositRefund

pytestmark = pytest.mark.django_db


@pytest.fixture
def operator(client):
    member = make_staff("operator", "olivia")
    sign_in(client, member)
    return member


def rows(response) -> list[str]:
    return re.findall(
        r'aria-label="Select deposit ([^"]+)"', response.content.decode()
    ) or re.findall(r'href="/deposits/([A-Z0-9]+)/"><time', response.content.decode())


def link(response, rel) -> str | None:
    m = re.search(rf'<a rel="{rel}" href="([^"]+)"', response.content.decode())
    return m.group(1).replace("&amp;", "&") if m else None


def test_full_page_has_the_filter_form_and_every_column(client, operator):
    d = make_deposit(
        sender_account_name="Wattle Holdings", external_reference="INV-9", third_party=True
    )
    r = client.get("/deposits/")
    assert r.status_code == 200
    body = r.content.decode()
    assert "<h1>Deposits</h1>" in body and 'hx-push-url="true"' in body
    for text in [
        "Wattle Holdings",
        "INV-9",
        "062000",
        "AUD 100.00",
        "CONFIRMED",
        "New",
        "third-party",
    ]:
        assert text in body
    assert f'href="/deposits/{d.flashfx_id}/"' in body
    assert "At least 3 characters" in body
    assert "Accept selected" in body


def test_htmx_gets_the_list_fragment_only(client, operator):
    make_deposit()
    r = client.get("/deposits/?status=CONFIRMED", HTTP_HX_REQUEST="true")
    body = r.content.decode()
    assert r.status_code == 200 and "<h1>" not in body and "deposit-queue" in body
    assert "HX-Request" in r["Vary"]


def test_filters_and_search_from_the_query_string(client, operator):
    a = make_deposit(flashfx_status="REVIEWING", sender_account_name="Banksia Pty")
    b = make_deposit(amount=Decimal("9000.00"), external_reference="ORDER-77")
    assert rows(client.get("/deposits/?status=REVIEWING")) == [a.flashfx_id]
    assert rows(client.get("/deposits/?q=order-77")) == [b.flashfx_id]
    assert rows(client.get("/deposits/?amount_min=5000&sort=largest")) == [b.flashfx_id]
    body = client.get("/deposits/?status=REVIEWING").content.decode()
    assert "held by FlashFX" in body


def test_invalid_filters_say_what_is_wrong(client, operator):
    make_deposit()
    body = client.get("/deposits/?q=ab&amount_min=10&amount_max=5").content.decode()
    assert "Ensure this value has at least 3 characters" in body
    assert "The upper amount is below the lower one." in body
    assert "Fix the filters above" in body


def test_next_and_previous_links_keep_the_filters(client, operator, monkeypatch):
    monkeypatch.setattr("payments.selectors.deposits.PAGE_SIZE", 2)
    made = [make_deposit(flashfx_status="CONFIRMED") for _ in range(5)]
    make_deposit(flashfx_status="REVIEWING")
    first = client.get("/deposits/?status=CONFIRMED")
    assert rows(first) == [d.flashfx_id for d in made[::-1][:2]]
    nxt = link(first, "next")
    assert nxt.startswith("?status=CONFIRMED&cursor=") and link(first, "prev") is None
    second = client.get("/deposits/" + nxt)
    assert rows(second) == [d.flashfx_id for d in made[::-1][2:4]]
    back = client.get("/deposits/" + link(second, "prev"))
    assert rows(back) == rows(first)


def test_a_broken_cursor_gives_the_first_page_and_a_message(client, operator):
    d = make_deposit()
    r = client.get("/deposits/?cursor=not-a-cursor")
    assert r.status_code == 200
    assert rows(r) == [d.flashfx_id]
    assert "That page link was not valid" in r.content.decode()


def test_new_marker_counts_arrivals_under_the_same_filters(client, operator, settings):
    settings.DEPOSIT_QUEUE_POLL_SECONDS = 7
    make_deposit()
    page = client.get("/deposits/?status=REVIEWING").content.decode()
    m = re.search(r'hx-get="(/deposits/new/\?[^"]+)" hx-trigger="every 7s"', page)
    assert m, "the list polls for new deposits"
    poll = m.group(1).replace("&amp;", "&")
    assert "status=REVIEWING" in poll and "since=" in poll
    assert "new</a>" not in client.get(poll).content.decode()
    make_deposit(flashfx_status="CONFIRMED")
    make_deposit(flashfx_status="REVIEWING")
    body = client.get(poll).content.decode()
    assert "1 new</a>" in body and 'hx-target="#deposit-list"' in body


def test_no_polling_when_the_setting_is_zero(client, operator, settings):
    settings.DEPOSIT_QUEUE_POLL_SECONDS = 0
    make_deposit()
    assert "hx-trigger" not in client.get("/deposits/").content.decode()


def test_new_marker_caps_at_99(client, operator):
    for _ in range(101):
        make_deposit()
    assert "99+ new" in client.get("/deposits/new/?since=0").content.decode()
    assert client.get("/deposits/new/?since=abc").status_code == 400


def test_refused_refund_shows_flashfx_code_and_message(client, operator):
    d = make_deposit()
    DepositRefund.objects.create(
        deposit=d,
        amount=d.amount,
        currency="AUD",
        reason_code="other",
        reason="x",
        state="refused",
        requested_by=operator,
        error_code="INSUFFICIENT_FUNDS",
        error_message="Not enough balance.",
    )
    body = client.get("/deposits/").content.decode()
    assert "refund refused: INSUFFICIENT_FUNDS Not enough balance." in body


def test_a_viewer_sees_no_checkboxes_or_accept_button(client):
    make_deposit()
    sign_in(client, make_staff("viewer", "vera"))
    body = client.get("/deposits/").content.decode()
    assert "Accept selected" not in body and 'type="checkbox"' not in body


def test_new_marker_without_since_counts_from_now(client, operator):
    make_deposit()
    r = client.get("/deposits/new/")
    assert r.status_code == 200 and "new</a>" not in r.content.decode()


def test_a_broken_cursor_in_an_htmx_swap_shows_the_message_in_the_list(client, operator):
    make_deposit()
    r = client.get("/deposits/?cursor=xyz", HTTP_HX_REQUEST="true")
    assert "That page link was not valid" in r.content.decode()
