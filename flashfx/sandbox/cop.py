"""Confirmation of Payee: an advisory name check on a BSB account (docs/flashfx.md §3.13.2).

FlashFX's UAT answers from keywords anywhere in `accountName` (case-insensitive); so does the
sandbox, with the documented keywords and a few of ours for the codes UAT gives none
(decision §5.46). Without a keyword the "bank" holds exactly the name given: MATCH.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

from django.db import transaction

from . import conf, validation, wire
from .errors import BadUserInput
from .models import CopCheck

ACCOUNT_NAME_MAX = 140  # decision §5.46: the NPP account-name length

# Keyword -> (code, simulated account holder). FlashFX's UAT keywords (§3.13.2) first, then
# ours (decision §5.46) for the codes UAT has none for.
KEYWORDS = {
    "copimatch": ("MATCH", "individual"),
    "copijmatch": ("MATCH", "joint"),
    "copcmatch": ("MATCH", "company"),
    "copiclosematch": ("CLOSE_MATCH", "individual"),
    "copijclosematch": ("CLOSE_MATCH", "joint"),
    "copcclosematch": ("CLOSE_MATCH", "company"),
    "copinotmatch": ("NOT_MATCH", "individual"),
    "copcnotmatch": ("NOT_MATCH", "company"),
    "copclosed": ("ACCOUNT_CLOSED", None),
    "copnotfound": ("ACCOUNT_NOT_FOUND", None),
    "coperror": ("COP_PLATFORM_ERROR", None),
    # Ours, not FlashFX's:
    "copnotsupported": ("ACCOUNT_TYPE_NOT_SUPPORTED", None),
    "coplimit": ("COP_LIMIT_EXCEEDED", None),
    "copdisabled": ("COP_API_DISABLED", None),
}
# The longest keyword first, so that none is found inside a longer one by mistake.
KEYWORD_PATTERN = re.compile("|".join(sorted(KEYWORDS, key=len, reverse=True)), flags=re.IGNORECASE)

MESSAGES = {
    "MATCH": "Account name matches",  # the documented example
    "NOT_MATCH": "Account name does not match",
    "ACCOUNT_CLOSED": "The account is closed",
    "ACCOUNT_NOT_FOUND": "The account cannot be found",
    "ACCOUNT_TYPE_NOT_SUPPORTED": "This accountIdType is not supported for CoP checks yet",
    "COP_PLATFORM_ERROR": "The CoP check could not be completed, or the account opted out of CoP",
    "COP_LIMIT_EXCEEDED": "Your CoP request limit has been exceeded. Please contact support.",
    "COP_API_DISABLED": "Confirmation Of Payee API is disabled. Please contact support.",  # documented
}
# The bank was asked and answered: only these may be billed (decision §5.46).
BILLABLE = {"MATCH", "CLOSE_MATCH", "NOT_MATCH", "ACCOUNT_CLOSED", "ACCOUNT_NOT_FOUND"}
# Refused before any check (§2.6 lists them as confirmationOfPayee's failure codes).
FAILURES = {"COP_API_DISABLED", "COP_LIMIT_EXCEEDED"}


@dataclass(frozen=True)
class CopAnswer:
    code: str
    message: str
    billable: bool

    @property
    def success(self) -> bool:
        return self.code not in FAILURES


def close_match_message(bank_name: str) -> str:
    """Decision §5.46: a CLOSE_MATCH names the bank's account name, in double quotes."""
    return f'Account name partially matches the name held by the bank: "{bank_name}"'


def bank_name(account_name: str, holder: str) -> str:
    """The name the simulated bank holds for a CLOSE_MATCH: close to the one given, not equal.

    "John copiclosematch Smith" -> "J SMITH" (individual), "J SMITH & ANOR" (joint),
    "Acme copcclosematch Trading" -> "ACME TRADING PTY LTD" (company).
    """
    words = KEYWORD_PATTERN.sub(" ", account_name).upper().split()
    if holder == "company":
        name = " ".join(words or ["CITIZEN", "TRADING"])
        if name.endswith(" PTY LTD"):
            return name.removesuffix(" PTY LTD") + " PTY LIMITED"
        return f"{name} PTY LTD"
    words = words or ["JANE", "CITIZEN"]
    given, last = words[:-1] or ["A"], words[-1]
    initials = " ".join(word[0] for word in given)
    return f"{initials} {last}" + (" & ANOR" if holder == "joint" else "")


def check(data: dict) -> CopAnswer:
    """Validate CopInput, then answer as FlashFX's UAT would; every answer is kept."""
    validation.strings("input", data)
    validation.required("input.accountIdType", data.get("accountIdType"))
    name = data.get("accountName")
    validation.required("input.accountName", name)
    validation.text("input.accountName", name, max_length=ACCOUNT_NAME_MAX)
    kind = data["accountIdType"]
    if kind == "BSB":
        validation.required("input.bsb", data.get("bsb"))
        validation.required("input.accountNo", data.get("accountNo"))
        if not validation.BSB.match(data["bsb"]):
            raise BadUserInput("input.bsb", "must be exactly 6 digits")
        if not validation.ACCOUNT_NO.match(data["accountNo"]):
            raise BadUserInput("input.accountNo", "must be 4 to 34 letters or digits")

    found = KEYWORD_PATTERN.search(name)
    code, holder = KEYWORDS[found.group(0).lower()] if found else ("MATCH", None)
    config = conf.get_config()
    held = ""
    with transaction.atomic():
        if not config["cop_enabled"]:
            code = "COP_API_DISABLED"
        elif kind != "BSB":
            code = "ACCOUNT_TYPE_NOT_SUPPORTED"  # only BSB accounts are checked (§3.13.2)
        elif code in BILLABLE and _over_limit(config["cop_monthly_limit"]):
            code = "COP_LIMIT_EXCEEDED"
        if code == "CLOSE_MATCH":
            held = bank_name(name, holder or "individual")
        answer = CopAnswer(
            code=code,
            message=close_match_message(held) if held else MESSAGES[code],
            billable=code in BILLABLE,
        )
        CopCheck.objects.create(
            account_id_type=kind,
            bsb=data.get("bsb") or "",
            account_no=data.get("accountNo") or "",
            account_name=name,
            code=answer.code,
            billable=answer.billable,
            bank_account_name=held,
        )
    return answer


def _over_limit(limit: int) -> bool:
    """The month's billable checks (UTC calendar month) have reached a limit > 0."""
    if limit <= 0:
        return False
    now = datetime.now(UTC)
    month_start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    return CopCheck.objects.filter(created_at__gte=month_start, billable=True).count() >= limit


def check_to_json(c: CopCheck) -> dict:
    """A stored check for GET /_sandbox/cop-checks (ours, not FlashFX's)."""
    return {
        "id": c.id,
        "createdAt": wire.timestamp(c.created_at),
        "accountIdType": c.account_id_type,
        "bsb": c.bsb or None,
        "accountNo": c.account_no or None,
        "accountName": c.account_name,
        "code": c.code,
        "billable": c.billable,
        "bankAccountName": c.bank_account_name or None,
    }
