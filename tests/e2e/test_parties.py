"""The parties pages in a browser, used as staff use them: an operator creates an Australian
recipient at the sandbox and sees its Confirmation of Payee result and cooling flag; FlashFX's
refusal shows on the field it names; the recipients list is searched and paged (with htmx and
without JavaScript); a viewer sees no create button and is refused a POST."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.conf import settings as django_settings
from django.test import Client
from django.utils import timezone
from harness import close_app_client
from playwright.sync_api import Page, expect
from staff import make_staff, sign_in

from parties.models import PayeeCheck, Recipient

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def app_at_sandbox(sandbox, settings):
    """The back-office's client talks to the sandbox."""
    close_app_client()
    settings.FLASHFX_API_URL = sandbox.url
    sandbox.configure(login_interval_seconds=0)
    yield sandbox
    close_app_client()


def signed_in(page: Page, live_server, role: str, username: str) -> None:
    """The member's verified session (password and code done), handed to the browser."""
    client = Client()
    sign_in(client, make_staff(role, username))
    page.context.add_cookies(
        [
            {
                "name": django_settings.SESSION_COOKIE_NAME,
                "value": client.cookies[django_settings.SESSION_COOKIE_NAME].value,
                "url": live_server.url,
            }
        ]
    )


def test_an_operator_creates_an_au_recipient_and_sees_the_payee_check(
    live_server, app_at_sandbox, page, shot
):
    signed_in(page, live_server, "operator", "olivia")
    page.goto(live_server.url + "/parties/")
    page.get_by_role("link", name=re.compile("^Recipients")).click()
    page.get_by_role("link", name="New recipient").click()
    expect(page.get_by_role("heading", name="New recipient")).to_be_visible()
    expect(page.get_by_label("Account type")).to_have_value("BSB")

    # The sandbox's bank holds a name close to this one (FlashFX's UAT keyword, §3.13.2).
    page.get_by_label("First name").fill("Mia")
    page.get_by_label("Last name").fill("Copiclosematch Ng")
    expect(page.get_by_label("Currency")).to_have_value("AUD")
    page.get_by_role("textbox", name=re.compile("^BSB")).fill("062-000")
    page.get_by_role("textbox", name=re.compile("^Account number")).fill("12345678")
    shot("01-filled")
    page.get_by_role("button", name="Create recipient").click()

    expect(page.get_by_text("Recipient Mia Copiclosematch Ng created at FlashFX.")).to_be_visible()
    expect(page.get_by_role("heading", name="Mia Copiclosematch Ng")).to_be_visible()
    payee = page.locator("section", has=page.get_by_role("heading", name="Confirmation of Payee"))
    expect(payee.get_by_text("CLOSE_MATCH", exact=True)).to_be_visible()
    expect(payee).to_contain_text("the bank holds it as M NG")
    expect(page.get_by_text(re.compile("New bank details:"))).to_be_visible()
    shot("02-created")

    recipient = Recipient.objects.get()
    assert recipient.bsb == "062000"
    check = PayeeCheck.objects.get()
    assert (check.code, check.bank_name, check.recipient) == ("CLOSE_MATCH", "M NG", recipient)


def test_flashfxs_refusal_appears_on_the_field_it_names(live_server, app_at_sandbox, page, shot):
    signed_in(page, live_server, "operator", "olivia")
    page.goto(live_server.url + "/parties/recipients/new/")
    page.get_by_label("Account type").select_option("IBAN")  # the form follows, without a reload
    iban = page.get_by_role("textbox", name=re.compile("^IBAN"))
    expect(iban).to_be_visible()
    expect(page.get_by_role("textbox", name=re.compile("^BSB"))).to_have_count(0)
    assert page.url.endswith("/parties/recipients/new/?type=IBAN")

    page.get_by_label("First name").fill("Ben")
    page.get_by_label("Last name").fill("Ng.com")  # FlashFX refuses names that look like a domain
    page.get_by_label("Currency").fill("GBP")
    iban.fill("GB29 NWBK 6016 1331 9268 19")
    page.get_by_role("button", name="Create recipient").click()

    last_name = page.locator(".field", has=page.get_by_label("Last name"))
    expect(last_name.get_by_role("alert")).to_contain_text("domain")
    expect(page.get_by_label("Last name")).to_have_value("Ng.com")
    expect(iban).to_have_value("GB29 NWBK 6016 1331 9268 19")  # as typed: nothing lost
    shot("01-refused")
    assert not Recipient.objects.exists()


def seed_recipients(count: int) -> None:
    now = timezone.now()
    Recipient.objects.bulk_create(
        Recipient(
            flashfx_id=f"{n + 1:024x}",
            account_id_type="BSB",
            currency="AUD",
            display_name=f"{'Harbour' if n % 2 else 'Quay'} Supplier {n:03d}",
            bsb="062000",
            account_no=f"{20000000 + n}",
            flashfx_created_at=now - timedelta(minutes=n),
        )
        for n in range(count)
    )


def test_recipients_are_searched_and_paged(live_server, page, shot):
    seed_recipients(130)  # 65 Harbour, 65 Quay
    signed_in(page, live_server, "viewer", "vera")
    page.goto(live_server.url + "/parties/recipients/")
    rows = page.locator("table.party-list tbody tr")
    expect(rows).to_have_count(50)

    page.get_by_role("textbox", name="Search").fill("harbour")
    page.get_by_role("button", name="Search").click()
    expect(page).to_have_url(re.compile(r"\?q=harbour$"))
    expect(rows.first).to_contain_text("Harbour Supplier 001")
    expect(rows).to_have_count(50)
    shot("01-searched")

    page.get_by_role("link", name="Next").click()
    expect(rows).to_have_count(15)
    expect(rows.last).to_contain_text("Harbour Supplier 129")
    expect(page).to_have_url(re.compile(r"\?q=harbour&cursor="))
    expect(page.get_by_role("link", name="Next")).to_have_count(0)
    page.get_by_role("link", name="Previous").click()
    expect(rows).to_have_count(50)
    expect(rows.first).to_contain_text("Harbour Supplier 001")

    page.go_back()  # the URL held the page: back is the second page again
    expect(rows).to_have_count(15)

    page.get_by_role("textbox", name="Search").fill("20000128")
    page.get_by_role("button", name="Search").click()
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Quay Supplier 128")
    shot("02-by-account")


def test_without_javascript_search_and_paging_still_work(live_server, browser):
    seed_recipients(60)
    context = browser.new_context(java_script_enabled=False)
    try:
        page = context.new_page()
        signed_in(page, live_server, "viewer", "vera")
        page.goto(live_server.url + "/parties/recipients/")
        page.get_by_role("textbox", name="Search").fill("Quay")
        page.get_by_role("button", name="Search").click()
        expect(page.locator("table.party-list tbody tr")).to_have_count(30)
        page.goto(live_server.url + "/parties/recipients/")
        page.get_by_role("link", name="Next").click()
        expect(page.locator("table.party-list tbody tr")).to_have_count(10)
        expect(page.get_by_role("heading", name="Recipients")).to_be_visible()  # a whole page
    finally:
        context.close()


def test_a_viewer_sees_no_create_button_and_gets_403_posting(live_server, page, shot):
    seed_recipients(1)
    signed_in(page, live_server, "viewer", "vera")
    page.goto(live_server.url + "/parties/recipients/")
    expect(page.get_by_role("heading", name="Recipients")).to_be_visible()
    expect(page.get_by_role("link", name="New recipient")).to_have_count(0)
    page.get_by_role("link", name="Quay Supplier 000").click()
    expect(page.get_by_role("link", name="Edit")).to_have_count(0)
    expect(page.get_by_role("link", name="Delete")).to_have_count(0)
    shot("01-viewer")

    token = next(c["value"] for c in page.context.cookies() if c["name"] == "csrftoken")
    url = f"{live_server.url}/parties/recipients/new/"
    response = page.request.post(
        url,
        form={
            "csrfmiddlewaretoken": token,
            "account_id_type": "BSB",
            "first_name": "Mia",
            "last_name": "Ng",
            "currency": "AUD",
            "bsb": "062000",
            "account_no": "12345678",
        },
        headers={"Referer": url},
    )
    assert response.status == 403
    assert "Your role does not give you this page" in response.text()
    assert Recipient.objects.count() == 1
