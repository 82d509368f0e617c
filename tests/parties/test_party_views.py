"""The parties pages: lists with search and cursor paging (the page and its htmx fragment),
and the forms, by role, with FlashFX's refusal on the field it names."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone
from parties_support import SUB_CLIENT, app_at
from staff import make_staff, sign_in

from backoffice.models import AuditEvent
from parties.models import Recipient, Sender, SubClient

pytestmark = pytest.mark.django_db

HX = {"HX-Request": "true"}
N = 0


def local_recipient(**fields) -> Recipient:
    """A recipient in our mirror only (lists and reads need no FlashFX)."""
    global N
    N += 1
    defaults = {
        "flashfx_id": f"{N:024x}",
        "account_id_type": "BSB",
        "currency": "AUD",
        "display_name": f"Recipient {N:03d}",
        "bsb": "062000",
        "account_no": f"{10000000 + N}",
        "flashfx_created_at": timezone.now() - timedelta(minutes=N),
    }
    return Recipient.objects.create(**(defaults | fields))


@pytest.fixture
def operator(client):
    user = make_staff("operator")
    sign_in(client, user)
    return user


@pytest.fixture
def viewer(client):
    user = make_staff("viewer")
    sign_in(client, user)
    return user


@pytest.fixture
def app_sandbox(sandbox, settings):
    with app_at(sandbox, settings):
        yield sandbox


def names(response) -> list[str]:
    return re.findall(r'<a href="/parties/recipients/[0-9a-f]{24}/">([^<]+)</a>', response.text)


def test_the_parties_page_links_recipients_senders_and_sub_clients(client, viewer):
    local_recipient()
    response = client.get(reverse("parties:parties"))
    assert response.status_code == 200
    for url in ("/parties/recipients/", "/parties/senders/", "/parties/sub-clients/"):
        assert f'href="{url}"' in response.text
    assert 'Recipients <span class="hint">(1)</span>' in response.text


@pytest.mark.parametrize(
    "q",
    ["Harbour", "harb", "063-111", "063111", "99887766", "pay@harbour.example", "GB29", "ext-42"],
)
def test_recipients_are_found_by_name_bank_details_and_ids(client, viewer, q):
    local_recipient(display_name="Somebody Else")
    wanted = local_recipient(
        display_name="Harbour Imports",
        bsb="063111",
        account_no="99887766",
        payid="pay@harbour.example",
        iban="GB29NWBK60161331926819",
        external_id="ext-42",
    )

    response = client.get(reverse("parties:recipients"), {"q": q})

    assert names(response) == ["Harbour Imports"]
    found_by_id = client.get(reverse("parties:recipients"), {"q": wanted.flashfx_id[-6:]})
    assert names(found_by_id) == ["Harbour Imports"]


def test_a_search_too_short_asks_for_more(client, viewer):
    local_recipient()
    response = client.get(reverse("parties:recipients"), {"q": "a"})
    assert "Ensure this value has at least 2 characters" in response.text
    assert names(response) == []


def test_recipients_are_paged_by_cursor_newest_first_and_back(client, viewer):
    made = [local_recipient() for _ in range(120)]  # made[0] is the newest
    url = reverse("parties:recipients")

    first = client.get(url)
    assert names(first) == [r.display_name for r in made[:50]]
    assert 'rel="prev"' not in first.text
    next_url = re.search(r'rel="next" href="([^"]+)"', first.text)[1].replace("&amp;", "&")
    second = client.get(url + next_url)
    assert names(second) == [r.display_name for r in made[50:100]]
    local_recipient(flashfx_created_at=timezone.now())  # a newcomer does not shift the page
    third = client.get(
        url + re.search(r'rel="next" href="([^"]+)"', second.text)[1].replace("&amp;", "&")
    )
    assert names(third) == [r.display_name for r in made[100:]]
    assert 'rel="next"' not in third.text
    back = client.get(
        url + re.search(r'rel="prev" href="([^"]+)"', third.text)[1].replace("&amp;", "&")
    )
    assert names(back) == [r.display_name for r in made[50:100]]


def test_htmx_gets_the_rows_alone_and_the_search_stays_in_the_links(client, viewer):
    for _ in range(51):
        local_recipient(display_name=f"Harbour {N}")
    response = client.get(reverse("parties:recipients"), {"q": "Harbour"}, headers=HX)
    assert "<h1>" not in response.text and "<table" in response.text
    assert "q=Harbour&amp;cursor=" in response.text
    assert response["Vary"] and "HX-Request" in response["Vary"]


def test_a_cursor_we_did_not_write_gives_the_first_page(client, viewer):
    local_recipient(display_name="Only One")
    response = client.get(reverse("parties:recipients"), {"cursor": "bm9wZQ"})
    assert names(response) == ["Only One"]
    assert "That page link was not valid" in response.text


def test_deleted_recipients_leave_the_list_but_keep_their_page(client, viewer):
    gone = local_recipient(display_name="Gone", deleted_at=timezone.now())
    assert names(client.get(reverse("parties:recipients"))) == []
    page = client.get(reverse("parties:recipient", args=[gone.flashfx_id]))
    assert "Deleted at FlashFX" in page.text and ">Edit<" not in page.text


def test_a_viewer_reads_but_sees_no_create_button_and_may_not_post(client, viewer):
    recipient = local_recipient()
    listing = client.get(reverse("parties:recipients"))
    assert listing.status_code == 200 and "New recipient" not in listing.text
    detail = client.get(reverse("parties:recipient", args=[recipient.flashfx_id]))
    assert detail.status_code == 200 and ">Edit<" not in detail.text

    assert (
        client.post(reverse("parties:recipient-new"), {"account_id_type": "BSB"}).status_code == 403
    )
    for name in ("parties:recipient-edit", "parties:recipient-delete"):
        assert client.post(reverse(name, args=[recipient.flashfx_id])).status_code == 403
    assert client.post(reverse("parties:sender-new")).status_code == 403
    assert client.post(reverse("parties:sub-client-new")).status_code == 403
    assert not AuditEvent.objects.filter(action__startswith="party.").exists()


def test_the_new_recipient_form_follows_the_account_type(client, operator):
    url = reverse("parties:recipient-new")
    bsb = client.get(url)
    assert 'name="bsb"' in bsb.text and 'name="iban"' not in bsb.text
    iban = client.get(url, {"type": "IBAN"}, headers=HX)
    assert "<h1>" not in iban.text  # the form alone, swapped in place
    assert 'name="iban"' in iban.text and 'name="bsb"' not in iban.text
    assert 'value="IBAN"' in iban.text


def test_a_form_that_fails_our_checks_makes_no_call(client, operator, sandbox):
    # No app_sandbox: the client points nowhere useful, so a call would fail loudly.
    response = client.post(
        reverse("parties:recipient-new"),
        {"account_id_type": "BSB", "first_name": "Mia", "last_name": "Ng", "currency": "AUD",
         "bsb": "06200", "account_no": "12345678"},
    )  # fmt: skip
    assert response.status_code == 200
    assert "A BSB is exactly 6 digits." in response.text
    assert not Recipient.objects.exists()


def test_an_operator_creates_a_recipient_and_sees_it_cooling(client, operator, app_sandbox):
    response = client.post(
        reverse("parties:recipient-new"),
        {"account_id_type": "IBAN", "company_name": "Thames Tea Ltd", "currency": "gbp",
         "iban": "GB29 NWBK 6016 1331 9268 19"},
        follow=True,
    )  # fmt: skip
    recipient = Recipient.objects.get()
    assert response.redirect_chain[-1][0] == reverse(
        "parties:recipient", args=[recipient.flashfx_id]
    )
    assert "Recipient Thames Tea Ltd created at FlashFX." in response.text
    assert "New bank details:" in response.text
    assert "Only Australian BSB accounts can be checked." in response.text


def test_flashfxs_refusal_shows_on_the_field_it_names(client, operator, app_sandbox):
    response = client.post(
        reverse("parties:recipient-new"),
        {"account_id_type": "IBAN", "first_name": "Ben", "last_name": "Ng.com", "currency": "GBP",
         "iban": "GB29NWBK60161331926819"},
    )  # fmt: skip
    assert response.status_code == 200
    error = re.search(r'<p class="error" id="id_last_name-error"[^>]*>([^<]+)</p>', response.text)
    assert error and "domain" in error[1]
    assert 'value="Ng.com"' in response.text  # nothing the member typed is lost
    assert not Recipient.objects.exists()


def test_an_operator_edits_and_deletes_a_recipient(client, operator, app_sandbox):
    client.post(
        reverse("parties:recipient-new"),
        {"account_id_type": "IBAN", "company_name": "Thames Tea Ltd", "currency": "GBP",
         "iban": "GB29NWBK60161331926819"},
    )  # fmt: skip
    recipient = Recipient.objects.get()
    edit_url = reverse("parties:recipient-edit", args=[recipient.flashfx_id])
    form = client.get(edit_url)
    assert 'value="Thames Tea Ltd"' in form.text and 'name="external_id"' not in form.text

    client.post(edit_url, {"company_name": "Thames Tea Ltd", "currency": "GBP",
                           "iban": "GB29NWBK60161331926819", "email": "tea@thames.example"})  # fmt: skip
    recipient.refresh_from_db()
    assert recipient.email == "tea@thames.example"

    response = client.post(reverse("parties:recipient-delete", args=[recipient.flashfx_id]))
    assert response["Location"] == reverse("parties:recipients")
    recipient.refresh_from_db()
    assert recipient.deleted_at is not None
    assert client.get(edit_url).status_code == 404


def test_an_operator_creates_a_sender_and_a_sub_client(client, operator, app_sandbox):
    response = client.post(
        reverse("parties:sender-new"), {"company_name": "Harbour Imports Pty Ltd"}, follow=True
    )
    sender = Sender.objects.get()
    assert "Sender Harbour Imports Pty Ltd created at FlashFX." in response.text
    assert sender.flashfx_id in response.text

    response = client.post(reverse("parties:sub-client-new"), SUB_CLIENT, follow=True)
    created = SubClient.objects.get()
    assert f"BSB 802919, account number {created.account_no}" in response.text
    assert created.account_no in response.text and "Ada Lovelace" in response.text


def test_the_list_marks_recipients_whose_bank_details_are_new(client, viewer):
    local_recipient(display_name="Fresh", bank_details_changed_at=timezone.now())
    local_recipient(
        display_name="Settled", bank_details_changed_at=timezone.now() - timedelta(days=3)
    )

    response = client.get(reverse("parties:recipients"))

    rows = re.findall(r"<tr>(.*?)</tr>", response.text, re.DOTALL)
    marked = {
        name
        for row in rows
        for name in ("Fresh", "Settled")
        if f">{name}</a>" in row and "new bank details" in row
    }
    assert marked == {"Fresh"}


def test_senders_and_sub_clients_are_searched(client, viewer):
    Sender.objects.create(
        flashfx_id="a" * 24, company_name="Harbour Imports", email="ops@harbour.example"
    )
    Sender.objects.create(flashfx_id="b" * 24, first_name="Quinn", last_name="Quay")
    SubClient.objects.create(
        flashfx_id="c" * 24, full_name="Ada Lovelace", bsb="802919", account_no="1000001"
    )
    SubClient.objects.create(
        flashfx_id="d" * 24, full_name="Alan Turing", bsb="802919", account_no="1000002"
    )

    senders = client.get(reverse("parties:senders"), {"q": "harbour.example"})
    assert "Harbour Imports" in senders.text and "Quinn" not in senders.text
    subs = client.get(reverse("parties:sub-clients"), {"q": "1000002"})
    assert "Alan Turing" in subs.text and "Ada Lovelace" not in subs.text
    assert "New sub-client" not in subs.text and "New sender" not in senders.text


def test_an_operator_edits_and_deletes_a_sender(client, operator, app_sandbox):
    client.post(reverse("parties:sender-new"), {"company_name": "Harbour Imports Pty Ltd"})
    sender = Sender.objects.get()
    edit_url = reverse("parties:sender-edit", args=[sender.flashfx_id])

    response = client.post(edit_url, {"company_name": "Harbour Imports Pty Ltd", "email": "x@y"})
    assert response.status_code == 200  # our check: not an email address; nothing sent
    assert "Enter an email address" in response.text
    client.post(
        edit_url, {"company_name": "Harbour Imports Pty Ltd", "email": "ops@harbour.example"}
    )
    sender.refresh_from_db()
    assert sender.email == "ops@harbour.example"

    response = client.post(reverse("parties:sender-delete", args=[sender.flashfx_id]), follow=True)
    assert "Sender Harbour Imports Pty Ltd deleted at FlashFX." in response.text
    assert Sender.objects.get().deleted_at is not None
    assert list(
        AuditEvent.objects.filter(action__startswith="party.sender.")
        .values_list("action", flat=True)
        .order_by("pk")
    ) == ["party.sender.created", "party.sender.updated", "party.sender.deleted"]


def test_a_search_too_short_says_why_in_the_swapped_list_too(client, viewer):
    response = client.get(reverse("parties:recipients"), {"q": "a"}, headers=HX)
    assert "<h1>" not in response.text
    assert "at least 2 characters" in response.text and "Fix the search" in response.text
