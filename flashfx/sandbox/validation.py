"""Input rules from docs/flashfx.md §2.7 and §1.4. Each failure names the field, e.g. input.recipient.bsb.

Everything is checked before anything is written, so a refused request stores nothing.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from . import wire
from .errors import BadUserInput

PLACEHOLDERS = {"n/a", "na", "null", "nil", "none", "undefined"}  # docs/flashfx.md §1.4
PERSON_NAME = re.compile(r"^[A-Za-z][A-Za-z .'\-]*$")
DOMAIN_LIKE = re.compile(r"\.[A-Za-z]{2,}$")  # "Ben.eu", "x.com" (docs/flashfx.md §2.7)
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[A-Za-z]{2,}$")
MOBILE = re.compile(r"^\+[1-9][0-9]{6,14}$")
BSB = re.compile(r"^[0-9]{6}$")
ACCOUNT_NO = re.compile(r"^[A-Za-z0-9]{4,34}$")
IBAN = re.compile(r"^[A-Z]{2}[0-9]{2}[A-Z0-9]{10,30}$")
BIC = re.compile(r"^[A-Z]{6}[A-Z0-9]{2}([A-Z0-9]{3})?$")
MAX_AMOUNT = Decimal("1000000000")
BIC_REQUIRED = {
    "ABA",
    "CLABE",
    "IFSC",
    "CNAPS",
    "SORT_CODE",
    "ACC_NO",
}  # docs/flashfx.md §2.7 (2025-08-07)
ACCOUNT_FIELDS = {
    "BSB": ("bsb", "accountNo"),
    "PAYID": ("payid",),
    "IBAN": ("iban",),
    "ACC_NO": ("accountNo",),
    "ABA": ("aba", "accountNo"),
    "CLABE": ("clabe",),
    "IFSC": ("ifsc", "accountNo"),
    "CNAPS": ("cnaps", "accountNo"),
    "SORT_CODE": ("sortCode", "accountNo"),
}


def strings(field: str, value: Any) -> None:
    """Every string anywhere in the input: ASCII (docs/flashfx.md §2.7) and no placeholders (§1.4)."""
    if isinstance(value, dict):
        for key, item in value.items():
            strings(f"{field}.{key}", item)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            strings(f"{field}[{index}]", item)
    elif isinstance(value, str):
        if not value.isascii():
            raise BadUserInput(field, "must contain ASCII characters only")
        if value.strip().lower() in PLACEHOLDERS:
            raise BadUserInput(field, f"placeholder value {value!r} is not allowed; omit the field")


def required(field: str, value: Any) -> None:
    if value is None or (isinstance(value, str) and not value.strip()):
        raise BadUserInput(field, "is required")


def person_name(field: str, value: str | None, *, is_required: bool = False) -> None:
    if value is None:
        if is_required:
            raise BadUserInput(field, "is required")
        return
    if len(value) > 75:
        raise BadUserInput(field, "must be at most 75 characters")
    if not PERSON_NAME.match(value):
        raise BadUserInput(field, "must be Latin letters, spaces, hyphens, apostrophes or dots")
    if DOMAIN_LIKE.search(value):
        raise BadUserInput(field, "must not look like a domain name")


def company_name(field: str, value: str | None) -> None:
    if value is None:
        return
    if not 2 <= len(value) <= 256:
        raise BadUserInput(field, "must be 2 to 256 characters")
    if any(c in value for c in "<=>"):
        raise BadUserInput(field, "must not contain <, = or >")


def email(field: str, value: str | None) -> None:
    if value is not None and not EMAIL.match(value):
        raise BadUserInput(field, "is not a valid email address")


def mobile(field: str, value: str | None) -> str | None:
    """A leading 00 means + (docs/flashfx.md §2.7); returns the number without spaces."""
    if value is None:
        return None
    compact = re.sub(r"[ \-()]", "", value)
    if compact.startswith("00"):
        compact = "+" + compact[2:]
    if not MOBILE.match(compact):
        raise BadUserInput(field, "must be an international number such as +61422832849")
    return compact


def dob(field: str, value: str | None, *, max_age: int | None = None) -> None:
    """YYYY-MM-DD, after 1900-01-01, at least 18 years old (docs/flashfx.md §2.7)."""
    if value is None:
        return
    try:
        born = date.fromisoformat(value)
    except ValueError:
        raise BadUserInput(field, "must be a date written YYYY-MM-DD") from None
    if len(value) != 10 or born <= date(1900, 1, 1):
        raise BadUserInput(field, "must be a date YYYY-MM-DD after 1900-01-01")
    today = datetime.now(UTC).date()
    age = today.year - born.year - ((today.month, today.day) < (born.month, born.day))
    if age < 18:
        raise BadUserInput(field, "the person must be at least 18 years old")
    if max_age is not None and age >= max_age:
        raise BadUserInput(field, f"the person must be under {max_age}")


def iso_date(field: str, value: str | None) -> None:
    if value is None:
        return
    try:
        date.fromisoformat(value)
    except ValueError:
        raise BadUserInput(field, "must be a date written YYYY-MM-DD") from None


def timestamp(field: str, value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        return wire.parse_timestamp(value)
    except ValueError:
        raise BadUserInput(field, "must be an ISO-8601 timestamp with offset") from None


def created_between(queryset, filters: dict):
    """minCreatedAt / maxCreatedAt, both inclusive (decision §5.12).

    The wire shows milliseconds while the database keeps microseconds, so "at or before the
    createdAt a client was shown" means before the end of that millisecond.
    """
    if filters.get("minCreatedAt") is not None:
        queryset = queryset.filter(
            created_at__gte=timestamp("input.minCreatedAt", filters["minCreatedAt"])
        )
    if filters.get("maxCreatedAt") is not None:
        latest = timestamp("input.maxCreatedAt", filters["maxCreatedAt"])
        queryset = queryset.filter(created_at__lt=latest + timedelta(milliseconds=1))
    return queryset


def amount(field: str, value: Any, *, is_required: bool = True) -> Decimal | None:
    """Positive, in major units, at most two decimals."""
    if value is None:
        if is_required:
            raise BadUserInput(field, "is required")
        return None
    try:
        number = wire.to_decimal(value)
    except ValueError:
        raise BadUserInput(field, "must be a number") from None
    if number <= 0:
        raise BadUserInput(field, "must be positive")
    if number != number.quantize(wire.CENT):
        raise BadUserInput(field, "must have at most two decimal places")
    if number > MAX_AMOUNT:
        raise BadUserInput(field, f"must be at most {MAX_AMOUNT}")
    return number.quantize(wire.CENT)


def text(field: str, value: str | None, *, max_length: int) -> None:
    if value is not None and len(value) > max_length:
        raise BadUserInput(field, f"must be at most {max_length} characters")


def object_id(field: str, value: Any, *, is_required: bool = True) -> str | None:
    """24 lowercase hex characters (docs/flashfx.md §2.1)."""
    if value is None:
        if is_required:
            raise BadUserInput(field, "is required")
        return None
    if not isinstance(value, str) or not re.fullmatch(r"[0-9a-f]{24}", value):
        raise BadUserInput(field, "must be a 24-character hexadecimal id")
    return value


def address(field: str, value: dict | None, *, full: bool = False) -> None:
    """AU needs a street; abroad, country plus a full street with postcode (docs/flashfx.md §2.7)."""
    if value is None:
        if full:
            raise BadUserInput(field, "is required")
        return
    required(f"{field}.country", value.get("country"))
    required(f"{field}.street", value.get("street"))
    if full:  # sub-clients: every component (docs/flashfx.md §3.9.1)
        for part in ("suburb", "state", "postcode"):
            required(f"{field}.{part}", value.get(part))
    for part, limit in (
        ("building", 100),
        ("streetNo", 20),
        ("street", 200),
        ("suburb", 100),
        ("state", 100),
        ("postcode", 12),
    ):
        text(f"{field}.{part}", value.get(part), max_length=limit)


def party_names(field: str, data: dict) -> None:
    """An individual (firstName + lastName) or a company (companyName)."""
    for part in ("firstName", "middleName", "lastName"):
        person_name(f"{field}.{part}", data.get(part))
    for part in ("companyName", "legalName", "tradingAsName"):
        company_name(f"{field}.{part}", data.get(part))
    is_company = bool(data.get("companyName") or data.get("legalName"))
    if not is_company:
        person_name(f"{field}.firstName", data.get("firstName"), is_required=True)
        person_name(f"{field}.lastName", data.get("lastName"), is_required=True)


def sender(field: str, data: dict) -> dict:
    strings(field, data)
    party_names(field, data)
    dob(f"{field}.dob", data.get("dob"))
    email(f"{field}.email", data.get("email"))
    address(f"{field}.address", data.get("address"))
    id_doc(f"{field}.idDoc", data.get("idDoc"))
    return {**data, "mobile": mobile(f"{field}.mobile", data.get("mobile"))}


def id_doc(field: str, value: dict | None) -> None:
    if value is None:
        return
    required(f"{field}.type", value.get("type"))
    required(f"{field}.docNumber", value.get("docNumber"))
    text(f"{field}.docNumber", value.get("docNumber"), max_length=50)
    iso_date(f"{field}.issueDate", value.get("issueDate"))
    iso_date(f"{field}.expiryDate", value.get("expiryDate"))


def recipient(field: str, data: dict) -> dict:
    strings(field, data)
    required(f"{field}.accountIdType", data.get("accountIdType"))
    required(f"{field}.currency", data.get("currency"))
    party_names(field, data)
    dob(f"{field}.dob", data.get("dob"))
    email(f"{field}.email", data.get("email"))
    address(f"{field}.address", data.get("address"))
    account_details(field, data)
    return {**data, "mobile": mobile(f"{field}.mobile", data.get("mobile"))}


def account_details(field: str, data: dict) -> None:
    kind = data["accountIdType"]
    for part in ACCOUNT_FIELDS[kind]:
        required(f"{field}.{part}", data.get(part))
    if kind in BIC_REQUIRED:
        required(f"{field}.bic", data.get("bic"))
    if data.get("bsb") is not None and not BSB.match(data["bsb"]):
        raise BadUserInput(f"{field}.bsb", "must be exactly 6 digits")
    if data.get("accountNo") is not None and not ACCOUNT_NO.match(data["accountNo"]):
        raise BadUserInput(f"{field}.accountNo", "must be 4 to 34 letters or digits")
    if data.get("iban") is not None and not IBAN.match(data["iban"]):
        raise BadUserInput(f"{field}.iban", "is not a valid IBAN")
    if data.get("bic") is not None and not BIC.match(data["bic"]):
        raise BadUserInput(f"{field}.bic", "must be 8 or 11 characters (a SWIFT BIC)")
    if kind == "PAYID":
        payid = data["payid"]
        if not (EMAIL.match(payid) or MOBILE.match(payid.replace(" ", "")) or payid.isdigit()):
            raise BadUserInput(f"{field}.payid", "must be an email, a mobile number or an ABN")
