"""What the money workflows that send to FlashFX share: payouts (payouts.py) and international
payment orders (payment_orders.py). Each move of one of them is a compare-and-set of its state,
with an event row on its timeline and an audit event, in one transaction."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.utils import timezone

from backoffice import audit
from flashfx.errors import FlashFXError, FlashFXRejected

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Workflow:
    """A model with `state`, `updated_at` and `code`, its event model (from_state, to_state,
    actor, detail) whose foreign key to it is `owner`, and the prefix of its audit actions."""

    model: type[Any]  # PayoutOutbox's or PaymentOrderOutbox's owner: duck-typed on purpose
    event_model: type[Any]
    owner: str
    audit_prefix: str

    def event(self, obj: Any, *, old: str, to: str, actor: Any, detail: str) -> None:
        self.event_model.objects.create(
            **{self.owner: obj}, from_state=old, to_state=to, actor=actor, detail=detail[:500]
        )

    def move(
        self,
        obj: Any,
        *,
        from_states: tuple[str, ...],
        to: str,
        actor: Any = None,
        detail: str = "",
        details: dict[str, Any] | None = None,
        **fields: Any,
    ) -> bool:
        """Compare-and-set the object's state, with its event and audit event; False if it was
        elsewhere. `obj` is updated in place with what was written. No savepoint: a failure
        here fails the transaction it is part of, which is what must happen to a half-made
        move."""
        now = timezone.now()
        with transaction.atomic(savepoint=False):
            row = self.model.objects.filter(pk=obj.pk)
            if len(from_states) == 1:  # the usual case: the state we came from is known
                old = from_states[0]
            else:
                old = row.filter(state__in=from_states).values_list("state", flat=True).first()
            if old is None or not row.filter(state=old).update(state=to, updated_at=now, **fields):
                return False
            obj.state, obj.updated_at = to, now
            for name, value in fields.items():
                setattr(obj, name, value)
            self.event(obj, old=old, to=to, actor=actor, detail=detail)
            audit.record(
                f"{self.audit_prefix}.{to}",
                actor=actor,
                obj=obj,
                before={"state": old},
                after={"state": to},
                details={"code": obj.code, "detail": detail, **(details or {})},
            )
        return True

    def no_answer(self, outbox: Any, obj: Any, exc: FlashFXError, *, operation: str) -> str:
        """OutcomeUnknown, a 5xx, a lost connection, our credentials: the call may or may not
        have taken effect. The outbox row stays SUBMITTING; only the recovery's look-up by
        externalId decides (docs/flashfx.md §5.13)."""
        log.warning("%s for %s: no answer (%s)", operation, obj.code, exc)
        type(outbox).objects.filter(pk=outbox.pk).update(
            last_error=f"{exc.code or type(exc).__name__}: {exc.message}"[:500]
        )
        audit.record(
            f"{self.audit_prefix}.no_answer",
            obj=obj,
            details={"code": obj.code, "error": exc.code, "message": exc.message},
        )
        return "unknown"

    def failed(self, outbox: Any, obj: Any, exc: FlashFXRejected) -> str:
        """A definite refusal: the outbox row and the object SUBMIT_FAILED, with FlashFX's
        code and message, in one transaction."""
        code = (exc.code or "REJECTED")[:64]
        box, state = type(outbox).State, self.model.State
        with transaction.atomic():
            type(outbox).objects.filter(pk=outbox.pk, state=box.SUBMITTING).update(
                state=box.SUBMIT_FAILED,
                done_at=timezone.now(),
                last_error=f"{code}: {exc.message}"[:500],
            )
            self.move(
                obj,
                from_states=(state.SUBMITTING,),
                to=state.SUBMIT_FAILED,
                detail=f"FlashFX refused it: {code}",
                details={"error": code, "message": exc.message, "field": exc.field},
                error_code=code,
                error_message=str(exc.message)[:500],
            )
        return box.SUBMIT_FAILED
