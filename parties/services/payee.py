"""Confirmation of Payee (docs/flashfx.md §3.13.2): does the bank hold this BSB and account
under this name? Advisory, as FlashFX says: the answer (MATCH, CLOSE_MATCH with the name the
bank holds, NOT_MATCH, or another code) is recorded and shown on the recipient's page and its
payouts, and a check that fails is recorded and shown too; neither ever stops a recipient.
"""

from __future__ import annotations

import logging
from typing import Any

from django.utils import timezone

from backoffice import audit
from flashfx.errors import FlashFXError
from mirrors.client import flashfx_client

from ..models import PayeeCheck, Recipient
from .calls import PartyError

log = logging.getLogger(__name__)

CHECKED = "party.recipient.payee_checked"
ACCOUNT_NAME_MAX = 140  # the NPP account name's length (docs/flashfx.md §5.46)


def payee_check_applies(recipient: Recipient) -> bool:
    """Only Australian BSB accounts can be checked (FlashFX supports BSB alone)."""
    return recipient.account_id_type == "BSB" and bool(recipient.bsb and recipient.account_no)


def payee_check_run(*, recipient: Recipient, actor: Any = None) -> PayeeCheck:
    """Ask FlashFX, and record its answer or the failure; never raises for FlashFX's sake."""
    check = PayeeCheck(
        recipient=recipient,
        bsb=recipient.bsb,
        account_no=recipient.account_no,
        name_asked=recipient.name[:ACCOUNT_NAME_MAX],
        checked_by=actor if actor is not None and actor.is_authenticated else None,
    )
    try:
        result = flashfx_client().confirmation_of_payee(
            bsb=recipient.bsb, account_no=recipient.account_no, account_name=check.name_asked
        )
    except FlashFXError as exc:
        # Recorded and shown on the recipient's page; the recipient itself stands.
        log.warning("payee check of recipient %s failed: %s %s", recipient.pk, exc.code, exc)
        check.error_code = (exc.code or type(exc).__name__)[:64]
        check.error_message = str(exc.message)[:500]
    else:
        # Every answer is kept as received, FlashFX's refusals to check (COP_API_DISABLED,
        # COP_LIMIT_EXCEEDED) and codes newer than our docs included: the page shows them.
        check.code = (result.code or "UNKNOWN")[:32]
        check.message = (result.message or "")[:500]
        check.bank_name = (result.matched_name or "")[:300]
        check.billable = result.billable
    check.checked_at = timezone.now()
    check.save()
    return check


def payee_check_again(*, recipient: Recipient, actor: Any) -> PayeeCheck:
    """A member asks for a new check (e.g. after one that failed): recorded and audited."""
    if recipient.deleted_at is not None or not payee_check_applies(recipient):
        raise PartyError("Only an Australian BSB recipient that still exists can be checked.")
    check = payee_check_run(recipient=recipient, actor=actor)
    audit.record(
        CHECKED,
        actor=actor,
        obj=recipient,
        details={
            "bsb": check.bsb,
            "account_no": check.account_no,
            "name_asked": check.name_asked,
            "code": check.code,
            "bank_name": check.bank_name,
            "error_code": check.error_code,
        },
    )
    return check
