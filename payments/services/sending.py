"""What the money workflows that send to FlashFX share: payouts (payouts.py) and international
payment orders (payment_orders.py). Each move of one of them is a compare-and-set of its state,
with an event row on its timeline and an audit event, in one transaction."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db import models, transaction
from django.utils import timezone

from backoffice import audit


@dataclass(frozen=True)
class Workflow:
    """A model with `state`, `updated_at` and `code`, its event model (from_state, to_state,
    actor, detail) whose foreign key to it is `owner`, and the prefix of its audit actions."""

    model: type[models.Model]
    event_model: type[models.Model]
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
