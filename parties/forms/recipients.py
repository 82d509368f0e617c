"""The recipient form: the fields FlashFX requires for each account type (docs/flashfx.md §2.7,
§3.5; flashfx/schema.graphql RecipientInput), checked before any call."""

from __future__ import annotations

from typing import Any

from django import forms

from ..models import Recipient
from . import fields as f

# Account type -> (label, bank fields FlashFX requires, fields it also takes). A BIC is required
# for the types the docs name (2025-08-07) and optional for an IBAN; BSB and PayID are
# Australian, in AUD.
ACCOUNT_TYPES: dict[str, tuple[str, tuple[str, ...], tuple[str, ...]]] = {
    "BSB": ("Australian bank account (BSB and account number)", ("bsb", "account_no"), ()),
    "PAYID": ("Australian PayID", ("payid",), ()),
    "IBAN": ("IBAN", ("iban",), ("bic",)),
    "ACC_NO": ("Account number and SWIFT BIC", ("account_no", "bic"), ()),
    "ABA": ("US routing number (ABA)", ("aba", "account_no", "bic"), ()),
    "CLABE": ("Mexican CLABE", ("clabe", "bic"), ()),
    "IFSC": ("Indian IFSC", ("ifsc", "account_no", "bic"), ()),
    "CNAPS": ("Chinese CNAPS", ("cnaps", "account_no", "bic"), ()),
    "SORT_CODE": ("UK sort code", ("sort_code", "account_no", "bic"), ()),
}
AUSTRALIAN = {"BSB", "PAYID"}
BANK_FIELDS = (
    "bsb",
    "account_no",
    "payid",
    "iban",
    "bic",
    "aba",
    "clabe",
    "ifsc",
    "cnaps",
    "sort_code",
)
# The extra identifiers we do not keep as columns, read back from the raw payload for editing.
RAW_KEYS = {
    "aba": "aba",
    "clabe": "clabe",
    "ifsc": "ifsc",
    "cnaps": "cnaps",
    "sort_code": "sortCode",
}


class AccountTypeForm(forms.Form):
    """Step one of a new recipient (GET): which kind of account; the form follows it."""

    type = forms.ChoiceField(
        label="Account type", choices=[(k, v[0]) for k, v in ACCOUNT_TYPES.items()]
    )


class RecipientForm(f.PartyNames, forms.Form):
    first_name = f.text("First name", max_length=75)
    middle_name = f.text("Middle name", max_length=75)
    last_name = f.text("Last name", max_length=75)
    company_name = f.text(
        "Company name", max_length=256, help_text="For a company; leave the names above empty."
    )
    nick_name = f.text(
        "Nickname", max_length=100, help_text="Optional; FlashFX makes one otherwise."
    )
    email = f.text("Email", max_length=254)
    mobile = f.text("Mobile", max_length=30)
    currency = f.text("Currency", max_length=3, required=True)
    bsb = f.text("BSB", max_length=7, help_text="Six digits, e.g. 062-000.")
    account_no = f.text("Account number", max_length=40)
    payid = f.text(
        "PayID", max_length=254, help_text="An email address, a mobile number or an ABN."
    )
    iban = f.text("IBAN", max_length=42)
    bic = f.text("SWIFT BIC", max_length=11)
    aba = f.text("ABA routing number", max_length=9)
    clabe = f.text("CLABE", max_length=18)
    ifsc = f.text("IFSC", max_length=11)
    cnaps = f.text("CNAPS code", max_length=12)
    sort_code = f.text("Sort code", max_length=8)
    external_id = f.text(
        "External id", max_length=200, help_text="Your own reference for it (optional)."
    )

    def __init__(self, *args: Any, account_id_type: str, editing: bool = False, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.account_id_type = account_id_type
        _label, required, optional = ACCOUNT_TYPES[account_id_type]
        for name in BANK_FIELDS:
            if name not in required and name not in optional:
                del self.fields[name]
        for name in required:
            self.fields[name].required = True
        if editing:
            del self.fields["external_id"]  # FlashFX's key for it: not changed from here
        if account_id_type in AUSTRALIAN:
            self.fields["currency"].initial = "AUD"
            self.fields["currency"].help_text = "Australian accounts are paid in AUD."
        self.order_fields(
            [
                "first_name",
                "middle_name",
                "last_name",
                "company_name",
                "nick_name",
                "email",
                "mobile",
                "currency",
                *required,
                *optional,
            ]
        )

    @classmethod
    def initial_from(cls, recipient: Recipient) -> dict[str, Any]:
        initial = {
            name: getattr(recipient, name)
            for name in (
                "first_name",
                "last_name",
                "company_name",
                "nick_name",
                "email",
                "currency",
                "bsb",
                "account_no",
                "payid",
                "iban",
                "bic",
            )
        }
        raw = recipient.raw or {}
        initial["middle_name"] = raw.get("middleName") or ""
        initial["mobile"] = raw.get("mobile") or ""
        for name, key in RAW_KEYS.items():
            initial[name] = raw.get(key) or ""
        return initial

    # One cleaner per field: FlashFX's rules, in the shape FlashFX wants.
    def clean_first_name(self) -> str:
        return f.person_name(self.cleaned_data["first_name"])

    def clean_middle_name(self) -> str:
        return f.person_name(self.cleaned_data["middle_name"])

    def clean_last_name(self) -> str:
        return f.person_name(self.cleaned_data["last_name"])

    def clean_company_name(self) -> str:
        return f.company_name(self.cleaned_data["company_name"])

    def clean_nick_name(self) -> str:
        return f.ascii_text(self.cleaned_data["nick_name"])

    def clean_email(self) -> str:
        return f.email(self.cleaned_data["email"])

    def clean_mobile(self) -> str:
        return f.mobile(self.cleaned_data["mobile"])

    def clean_currency(self) -> str:
        value = f.currency(self.cleaned_data["currency"])
        if self.account_id_type in AUSTRALIAN and value != "AUD":
            raise forms.ValidationError("Australian accounts (BSB or PayID) are paid in AUD.")
        return value

    def clean_bsb(self) -> str:
        return f.bsb(self.cleaned_data["bsb"])

    def clean_account_no(self) -> str:
        return f.account_no(self.cleaned_data["account_no"])

    def clean_payid(self) -> str:
        return f.payid(self.cleaned_data["payid"])

    def clean_iban(self) -> str:
        return f.iban(self.cleaned_data["iban"])

    def clean_bic(self) -> str:
        return f.bic(self.cleaned_data["bic"])

    def clean_aba(self) -> str:
        return f.digits(self.cleaned_data["aba"], count=9, what="An ABA routing number")

    def clean_clabe(self) -> str:
        return f.digits(self.cleaned_data["clabe"], count=18, what="A CLABE")

    def clean_cnaps(self) -> str:
        return f.digits(self.cleaned_data["cnaps"], count=12, what="A CNAPS code")

    def clean_sort_code(self) -> str:
        return f.digits(self.cleaned_data["sort_code"], count=6, what="A sort code")

    def clean_ifsc(self) -> str:
        value = f.ascii_text(self.cleaned_data["ifsc"]).strip().upper()
        if value and not (
            len(value) == 11 and value[:4].isalpha() and value[4] == "0" and value.isalnum()
        ):
            raise forms.ValidationError("An IFSC is 4 letters, a 0 and 6 letters or digits.")
        return value

    def clean_external_id(self) -> str:
        return f.ascii_text(self.cleaned_data["external_id"])

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        self.clean_names()
        return data

    def recipient_fields(self) -> dict[str, Any]:
        """What the service sends: every field, and the account type this form is for."""
        return {**self.cleaned_data, "account_id_type": self.account_id_type}
