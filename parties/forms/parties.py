"""The sender and sub-client forms, and the lists' search (docs/flashfx.md §2.7, §3.4, §3.9.1)."""

from __future__ import annotations

from typing import Any

from django import forms

from ..models import Sender
from ..selectors import MIN_SEARCH
from . import fields as f


class SearchForm(forms.Form):
    q = forms.CharField(
        label="Search",
        required=False,
        min_length=MIN_SEARCH,
        max_length=100,
        strip=True,
    )


class AddressFields(forms.Form):
    street = f.text("Street", max_length=200)
    suburb = f.text("Suburb or city", max_length=100)
    state = f.text("State", max_length=100)
    postcode = f.text("Postcode", max_length=12)
    country = f.text("Country", max_length=2, help_text="Two letters, e.g. AU.")

    def clean_street(self) -> str:
        return f.ascii_text(self.cleaned_data["street"])

    def clean_suburb(self) -> str:
        return f.ascii_text(self.cleaned_data["suburb"])

    def clean_state(self) -> str:
        return f.ascii_text(self.cleaned_data["state"])

    def clean_postcode(self) -> str:
        return f.ascii_text(self.cleaned_data["postcode"])

    def clean_country(self) -> str:
        return f.country(self.cleaned_data["country"])


class SenderForm(f.PartyNames, AddressFields):
    first_name = f.text("First name", max_length=75)
    middle_name = f.text("Middle name", max_length=75)
    last_name = f.text("Last name", max_length=75)
    company_name = f.text(
        "Company name", max_length=256, help_text="For a company; leave the names above empty."
    )
    email = f.text("Email", max_length=254)
    mobile = f.text("Mobile", max_length=30)
    external_id = f.text(
        "External id", max_length=200, help_text="Your own reference for it (optional)."
    )

    field_order = ["first_name", "middle_name", "last_name", "company_name", "email", "mobile"]

    def __init__(self, *args: Any, editing: bool = False, **kwargs: Any):
        super().__init__(*args, **kwargs)
        if editing:
            del self.fields["external_id"]

    @classmethod
    def initial_from(cls, sender: Sender) -> dict[str, Any]:
        raw = sender.raw or {}
        address = raw.get("address") or {}
        return {
            "first_name": sender.first_name,
            "middle_name": sender.middle_name,
            "last_name": sender.last_name,
            "company_name": sender.company_name,
            "email": sender.email,
            "mobile": raw.get("mobile") or "",
            **{k: address.get(k) or "" for k in ("street", "suburb", "state", "postcode")},
            "country": address.get("country") or sender.country,
        }

    def clean_first_name(self) -> str:
        return f.person_name(self.cleaned_data["first_name"])

    def clean_middle_name(self) -> str:
        return f.person_name(self.cleaned_data["middle_name"])

    def clean_last_name(self) -> str:
        return f.person_name(self.cleaned_data["last_name"])

    def clean_company_name(self) -> str:
        return f.company_name(self.cleaned_data["company_name"])

    def clean_email(self) -> str:
        return f.email(self.cleaned_data["email"])

    def clean_mobile(self) -> str:
        return f.mobile(self.cleaned_data["mobile"])

    def clean_external_id(self) -> str:
        return f.ascii_text(self.cleaned_data["external_id"])

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        self.clean_names()
        # An address is optional; given, it needs a country and a street (docs/flashfx.md §2.7).
        parts = ("street", "suburb", "state", "postcode", "country")
        if any(data.get(p) for p in parts):
            for part in ("street", "country"):
                if not data.get(part) and part not in self.errors:
                    self.add_error(part, "Required with an address.")
        return data


class SubClientForm(AddressFields):
    first_name = f.text("First name", max_length=75, required=True)
    middle_name = f.text("Middle name", max_length=75)
    last_name = f.text("Last name", max_length=75, required=True)
    dob = forms.DateField(
        label="Date of birth",
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text="The person (or a company's contact person) must be 18 to 64.",
    )
    email = f.text("Email", max_length=254)
    mobile = f.text("Mobile", max_length=30)
    legal_name = f.text(
        "Legal name", max_length=256, help_text="For a company, with its business number."
    )
    business_number = f.text("Business number (ABN)", max_length=20)
    trading_as_name = f.text("Trading as", max_length=256)
    external_id = f.text(
        "External id", max_length=200, help_text="Your own reference for it (optional)."
    )

    field_order = [
        "first_name", "middle_name", "last_name", "dob", "email", "mobile",
        "legal_name", "business_number", "trading_as_name",
        "street", "suburb", "state", "postcode", "country", "external_id",
    ]  # fmt: skip

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        for part in ("street", "suburb", "state", "postcode", "country"):
            self.fields[part].required = True  # every component (docs/flashfx.md §3.9.1)
        self.fields["country"].initial = "AU"

    def clean_first_name(self) -> str:
        return f.person_name(self.cleaned_data["first_name"])

    def clean_middle_name(self) -> str:
        return f.person_name(self.cleaned_data["middle_name"])

    def clean_last_name(self) -> str:
        return f.person_name(self.cleaned_data["last_name"])

    def clean_dob(self):
        return f.dob(self.cleaned_data["dob"], under=65)

    def clean_email(self) -> str:
        return f.email(self.cleaned_data["email"])

    def clean_mobile(self) -> str:
        return f.mobile(self.cleaned_data["mobile"])

    def clean_legal_name(self) -> str:
        return f.company_name(self.cleaned_data["legal_name"])

    def clean_business_number(self) -> str:
        return f.ascii_text(self.cleaned_data["business_number"]).replace(" ", "")

    def clean_trading_as_name(self) -> str:
        return f.company_name(self.cleaned_data["trading_as_name"])

    def clean_external_id(self) -> str:
        return f.ascii_text(self.cleaned_data["external_id"])

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        # A company when both are given (docs/flashfx.md §3.9.1); one alone would silently
        # make a person of it.
        legal, number = data.get("legal_name"), data.get("business_number")
        if bool(legal) != bool(number) and not self.errors.keys() & {
            "legal_name",
            "business_number",
        }:
            missing = "business_number" if legal else "legal_name"
            self.add_error(missing, "A company needs both its legal name and business number.")
        return data
