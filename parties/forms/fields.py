"""FlashFX's input rules (docs/flashfx.md §2.7) as form checks, so that a form refuses what
FlashFX would refuse before any call. Each cleaner returns the value as FlashFX wants it.

Left to FlashFX on purpose: whether a name "looks like a domain" (its judgement, not a
pattern we could match exactly) and anything it may add; its refusal then shows on the field
it names (parties/services/calls.py).
"""

from __future__ import annotations

import re
from datetime import date

from django import forms
from django.core.exceptions import ValidationError
from django.utils import timezone

PERSON_NAME = re.compile(r"^[A-Za-z][A-Za-z .'\-]*$")
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[A-Za-z]{2,}$")
MOBILE = re.compile(r"^\+[1-9][0-9]{6,14}$")
BSB = re.compile(r"^[0-9]{6}$")
ACCOUNT_NO = re.compile(r"^[A-Za-z0-9]{4,34}$")
IBAN = re.compile(r"^[A-Z]{2}[0-9]{2}[A-Z0-9]{10,30}$")
BIC = re.compile(r"^[A-Z]{6}[A-Z0-9]{2}([A-Z0-9]{3})?$")
ABN = re.compile(r"^[0-9]{11}$")
CURRENCY = re.compile(r"^[A-Z]{3}$")
COUNTRY = re.compile(r"^[A-Z]{2}$")
PLACEHOLDERS = {"n/a", "na", "null", "nil", "none", "undefined"}  # docs/flashfx.md §1.4


def text(
    label: str, *, max_length: int, required: bool = False, help_text: str = ""
) -> forms.CharField:
    return forms.CharField(
        label=label, max_length=max_length, required=required, strip=True, help_text=help_text
    )


def ascii_text(value: str) -> str:
    if not value:
        return value
    if not value.isascii():
        raise ValidationError("Use plain ASCII letters, digits and punctuation only.")
    if value.strip().lower() in PLACEHOLDERS:
        raise ValidationError("Leave it empty rather than writing a placeholder.")
    return value


def person_name(value: str) -> str:
    value = ascii_text(value)
    if value and not PERSON_NAME.match(value):
        raise ValidationError("Latin letters, spaces, hyphens, apostrophes or dots only.")
    return value


def company_name(value: str) -> str:
    value = ascii_text(value)
    if value and len(value) < 2:
        raise ValidationError("At least 2 characters.")
    if any(c in value for c in "<=>"):
        raise ValidationError("Must not contain <, = or >.")
    return value


def email(value: str) -> str:
    value = ascii_text(value)
    if value and not EMAIL.match(value):
        raise ValidationError("Enter an email address such as name@example.com.")
    return value


def mobile(value: str) -> str:
    """An international number; a leading 00 counts as + (docs/flashfx.md §2.7)."""
    compact = re.sub(r"[ \-()]", "", ascii_text(value))
    if not compact:
        return ""
    if compact.startswith("00"):
        compact = "+" + compact[2:]
    if not MOBILE.match(compact):
        raise ValidationError("An international number such as +61 422 832 849.")
    return compact


def digits(value: str, *, count: int, what: str) -> str:
    compact = re.sub(r"[ \-]", "", ascii_text(value))
    if compact and not (compact.isdigit() and len(compact) == count):
        raise ValidationError(f"{what} is exactly {count} digits.")
    return compact


def bsb(value: str) -> str:
    return digits(value, count=6, what="A BSB")


def account_no(value: str) -> str:
    compact = re.sub(r"[ \-]", "", ascii_text(value))
    if compact and not ACCOUNT_NO.match(compact):
        raise ValidationError("4 to 34 letters or digits.")
    return compact


def iban(value: str) -> str:
    compact = re.sub(r"\s", "", ascii_text(value)).upper()
    if not compact:
        return ""
    if not IBAN.match(compact):
        raise ValidationError(
            "An IBAN starts with a country code and 2 check digits, e.g. GB29 NWBK 6016 1331 9268 19."
        )
    # ISO 13616 check digits: the number, country and check digits moved to the end, mod 97 is 1.
    rearranged = compact[4:] + compact[:4]
    if int("".join(str(int(c, 36)) for c in rearranged)) % 97 != 1:
        raise ValidationError("This IBAN's check digits do not match: a typing mistake?")
    return compact


def bic(value: str) -> str:
    compact = re.sub(r"\s", "", ascii_text(value)).upper()
    if compact and not BIC.match(compact):
        raise ValidationError("A SWIFT BIC has 8 or 11 letters and digits, e.g. NWBKGB2L.")
    return compact


def payid(value: str) -> str:
    """An email, a mobile number or an ABN (the PayID kinds a business pays to)."""
    value = ascii_text(value).strip()
    if not value:
        return ""
    if EMAIL.match(value):
        return value
    compact = re.sub(r"[ \-()]", "", value)
    if compact.startswith("00"):
        compact = "+" + compact[2:]
    if MOBILE.match(compact) or ABN.match(compact):
        return compact
    raise ValidationError(
        "A PayID is an email address, a mobile number (+61...) or an ABN (11 digits)."
    )


def currency(value: str) -> str:
    value = ascii_text(value).strip().upper()
    if value and not CURRENCY.match(value):
        raise ValidationError("Three letters, e.g. AUD.")
    return value


def country(value: str) -> str:
    value = ascii_text(value).strip().upper()
    if value and not COUNTRY.match(value):
        raise ValidationError("Two letters, e.g. AU.")
    return value


def age_on(born: date, today: date) -> int:
    return today.year - born.year - ((today.month, today.day) < (born.month, born.day))


def dob(value: date | None, *, under: int | None = None) -> date | None:
    """After 1900-01-01 and at least 18; `under`: younger than that (docs/flashfx.md §2.7)."""
    if value is None:
        return None
    age = age_on(value, timezone.localdate())
    if value <= date(1900, 1, 1):
        raise ValidationError("A date after 1900-01-01.")
    if age < 18:
        raise ValidationError("The person must be at least 18.")
    if under is not None and age >= under:
        raise ValidationError(f"The contact person must be under {under}.")
    return value


class PartyNames:
    """A person (first and last name) or a company (company name): the check both forms share."""

    company_field = "company_name"

    def clean_names(self: forms.Form) -> None:  # type: ignore[misc]
        data = self.cleaned_data
        if data.get(self.company_field):  # type: ignore[attr-defined]
            return
        for part, label in (("first_name", "first name"), ("last_name", "last name")):
            if part in self.fields and not data.get(part) and part not in self.errors:
                self.add_error(part, f"Give a {label}, or a company name instead.")
