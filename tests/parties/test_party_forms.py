"""The party forms refuse, before any call, what FlashFX requires otherwise (docs/flashfx.md
§2.7, §3.5, §3.9.1), and hand the service the values as FlashFX wants them."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from parties.forms.parties import SenderForm, SubClientForm
from parties.forms.recipients import ACCOUNT_TYPES, RecipientForm

PERSON = {"first_name": "Mia", "last_name": "Ng"}


def recipient_form(account_id_type: str, **data) -> RecipientForm:
    return RecipientForm(data, account_id_type=account_id_type)


def test_an_au_bsb_account_needs_a_bsb_and_an_account_number_in_aud():
    form = recipient_form("BSB", currency="USD", **PERSON)

    assert not form.is_valid()
    assert form.errors["bsb"] == ["This field is required."]
    assert form.errors["account_no"] == ["This field is required."]
    assert "AUD" in form.errors["currency"][0]
    assert "payid" not in form.fields and "iban" not in form.fields


def test_a_bsb_is_taken_as_typed_and_sent_as_six_digits():
    form = recipient_form("BSB", currency="aud", bsb="062-000", account_no="1234 5678", **PERSON)

    assert form.is_valid(), form.errors
    fields = form.recipient_fields()
    assert fields["bsb"] == "062000" and fields["account_no"] == "12345678"
    assert fields["currency"] == "AUD" and fields["account_id_type"] == "BSB"


@pytest.mark.parametrize("bsb", ["06200", "0620001", "06200x"])
def test_a_bsb_is_exactly_six_digits(bsb):
    form = recipient_form("BSB", currency="AUD", bsb=bsb, account_no="12345678", **PERSON)
    assert form.errors["bsb"] == ["A BSB is exactly 6 digits."]


def test_a_payid_is_an_email_a_mobile_or_an_abn():
    for good, sent in [
        ("mia@example.com", "mia@example.com"),
        ("+61 422 832 849", "+61422832849"),
        ("51 824 753 556", "51824753556"),
    ]:
        form = recipient_form("PAYID", currency="AUD", payid=good, **PERSON)
        assert form.is_valid(), form.errors
        assert form.cleaned_data["payid"] == sent
    form = recipient_form("PAYID", currency="AUD", payid="mia", **PERSON)
    assert "PayID" in form.errors["payid"][0]


def test_an_iban_is_checked_by_its_check_digits_and_needs_no_bic():
    form = recipient_form("IBAN", currency="GBP", iban="gb29 nwbk 6016 1331 9268 19", **PERSON)
    assert form.is_valid(), form.errors
    assert form.cleaned_data["iban"] == "GB29NWBK60161331926819"

    typo = recipient_form("IBAN", currency="GBP", iban="GB29NWBK60161331926818", **PERSON)
    assert "check digits" in typo.errors["iban"][0]


@pytest.mark.parametrize("kind", ["ACC_NO", "ABA", "CLABE", "IFSC", "CNAPS", "SORT_CODE"])
def test_the_account_types_that_need_a_bic_ask_for_one(kind):
    form = recipient_form(kind, currency="USD", **PERSON)
    assert form.errors["bic"] == ["This field is required."]
    for required in ACCOUNT_TYPES[kind][1]:
        assert form.fields[required].required


def test_a_recipient_is_a_person_with_two_names_or_a_company():
    nameless = recipient_form("BSB", currency="AUD", bsb="062000", account_no="12345678")
    assert "company name" in nameless.errors["first_name"][0]
    assert "company name" in nameless.errors["last_name"][0]

    company = recipient_form(
        "BSB", currency="AUD", bsb="062000", account_no="12345678", company_name="Acme Pty Ltd"
    )
    assert company.is_valid(), company.errors


def test_names_and_text_are_plain_ascii_without_placeholders():
    form = recipient_form(
        "BSB",
        currency="AUD",
        bsb="062000",
        account_no="12345678",
        first_name="Zoë",
        last_name="N/A",
    )
    assert "ASCII" in form.errors["first_name"][0]
    assert "placeholder" in form.errors["last_name"][0]


def test_editing_keeps_the_account_type_and_the_external_id():
    form = RecipientForm(account_id_type="IBAN", editing=True)
    assert "external_id" not in form.fields


def test_a_sender_address_needs_a_street_and_a_country():
    form = SenderForm({"company_name": "Acme Pty Ltd", "postcode": "2000"})
    assert form.errors["street"] == ["Required with an address."]
    assert form.errors["country"] == ["Required with an address."]
    assert SenderForm({"company_name": "Acme Pty Ltd"}).is_valid()


SUB_CLIENT = {
    "first_name": "Ada",
    "last_name": "Lovelace",
    "street": "1 George St",
    "suburb": "Sydney",
    "state": "NSW",
    "postcode": "2000",
    "country": "au",
}


def test_a_sub_client_needs_its_whole_address():
    form = SubClientForm({**SUB_CLIENT, "suburb": ""})
    assert form.errors["suburb"] == ["This field is required."]
    ok = SubClientForm(SUB_CLIENT)
    assert ok.is_valid(), ok.errors
    assert ok.cleaned_data["country"] == "AU"


def test_a_sub_client_company_needs_both_legal_name_and_business_number():
    form = SubClientForm({**SUB_CLIENT, "legal_name": "Acme Pty Ltd"})
    assert "both" in form.errors["business_number"][0]


def test_a_sub_clients_contact_is_18_to_64():
    today = timezone.localdate()
    young = SubClientForm({**SUB_CLIENT, "dob": (today - timedelta(days=17 * 366)).isoformat()})
    assert "at least 18" in young.errors["dob"][0]
    old = SubClientForm({**SUB_CLIENT, "dob": today.replace(year=today.year - 70).isoformat()})
    assert "under 65" in old.errors["dob"][0]
