"""What the parties' services share: one call to FlashFX, its failures in the member's words.

FlashFX's refusal names the input field it refuses (docs/flashfx.md §5.17: `extensions.field`,
e.g. `input.bsb`); PartyRefused carries it as our field name, so the form shows the message
beside that field.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any, TypeVar

from django.db import transaction
from django.utils import timezone

from backoffice import audit
from flashfx.errors import (
    FlashFXAuthError,
    FlashFXError,
    FlashFXRejected,
    FlashFXUnavailable,
    OutcomeUnknown,
)

from ..models import Recipient, Sender

T = TypeVar("T")


class PartyError(Exception):
    """A change to a party that did not happen (or may have); the message says so, for the member."""

    def __init__(self, message: str, *, code: str = "", field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.field = field  # our form field's name, when the error is about one


class PartyRefused(PartyError):
    """FlashFX said no: nothing changed there."""


def external_id(given: str = "") -> str:
    """The externalId we send (docs/flashfx.md §2.2): the member's, or one of ours, so that a
    create whose answer never arrived can be looked up instead of sent twice."""
    return given or f"bo-{uuid.uuid4().hex}"


def snake(name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name)


def our_field(wire_field: str | None, fields: dict[str, str]) -> str | None:
    """`input.accountNo` (or `input.address.postcode`) as our field name, when we have it."""
    if not wire_field:
        return None
    path = wire_field.split(".")
    if path and path[0] == "input":
        path = path[1:]
    for start in range(len(path)):  # the longest tail we know: address.postcode, then postcode
        name = "_".join(snake(p) for p in path[start:])
        if name in fields:
            return fields[name]
    return None


def call(
    fn: Callable[[], T], *, what: str, fields: dict[str, str], unknown: Callable[[], T] | None
) -> T:
    """Make one FlashFX call. `what` says what was asked ("create the recipient"), `fields`
    maps FlashFX's field names (snake_case) to ours, `unknown` settles an answer that never
    came (a look-up, never a second call) or, when None, reports it as unknown."""
    try:
        return fn()
    except FlashFXRejected as exc:
        field = our_field(exc.field, fields)
        if field:  # beside the field, its path in FlashFX's input says nothing more
            detail = exc.message.removeprefix(f"{exc.field}:").strip()
            message = f"FlashFX refused this: {detail}"
        else:
            message = f"FlashFX refused to {what}: {exc.message}"
        raise PartyRefused(message, code=exc.code, field=field) from exc
    except OutcomeUnknown as exc:
        if unknown is not None:
            return unknown()
        raise PartyError(
            f"FlashFX did not answer whether it could {what} ({exc.code}). Sync will show "
            "what happened; check again in a few minutes before trying again.",
            code=exc.code,
        ) from exc
    except FlashFXUnavailable as exc:
        raise PartyError(
            f"FlashFX could not be reached to {what} ({exc.code}); nothing was changed. "
            "Try again in a moment.",
            code=exc.code,
        ) from exc
    except FlashFXAuthError as exc:
        raise PartyError(
            f"FlashFX refused the back-office's credentials ({exc.code}); nothing was changed. "
            "Tell an administrator.",
            code=exc.code,
        ) from exc
    except FlashFXError as exc:
        raise PartyError(f"FlashFX failed to {what}: {exc.message}", code=exc.code) from exc


P = TypeVar("P", Recipient, Sender)  # the parties FlashFX deletes


def party_delete(
    party: P,
    *,
    remote: Callable[[], object],
    what: str,
    fields: dict[str, str],
    action: str,
    snapshot: Callable[[P], dict[str, Any]],
    actor: Any,
) -> P:
    """Delete a recipient or sender at FlashFX (`remote`); our row stays, marked deleted, so
    that what pointed at it keeps its history. FlashFX not knowing it any more counts as
    deleted. One audit event (`action`)."""
    if party.deleted_at is not None:
        return party
    gone = "deleted"
    try:
        call(remote, what=what, fields=fields, unknown=None)
    except PartyError as exc:
        if exc.code != "NOT_FOUND":
            raise
        gone = "not found at FlashFX"
    with transaction.atomic():
        now = timezone.now()
        type(party).objects.filter(pk=party.pk).update(deleted_at=now, updated_at=now)
        party.refresh_from_db()
        audit.record(
            action,
            actor=actor,
            obj=party,
            before=snapshot(party),
            details={"flashfx_id": party.flashfx_id, "outcome": gone},
        )
    return party
