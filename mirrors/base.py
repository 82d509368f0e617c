"""What every mirror of a FlashFX entity is: its row's common columns and its status order."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db import models
from django.db.models import Q
from django.utils import timezone


@dataclass(frozen=True)
class StatusOrder:
    """A documented state machine reduced to what ordering needs: ranks and backward edges."""

    ranks: dict[str, int]
    backward_edges: frozenset[tuple[str, str]] = frozenset()

    def is_known(self, status: str) -> bool:
        return status in self.ranks

    def may_move(self, old: str, new: str) -> bool:
        if old == new or not self.is_known(old) or not self.is_known(new):
            return True  # an unknown status cannot be judged; it is flagged instead
        return self.ranks[new] > self.ranks[old] or (old, new) in self.backward_edges


class MirrorQuerySet(models.QuerySet):
    """Lookups by FlashFX id that reach the unique index.

    That index leaves out the rows FlashFX has not numbered yet (`flashfx_id = ""`), so a query
    must say the same, or the databases cannot use it: SQLite never proves `flashfx_id = 'x'`
    implies the index's condition, and PostgreSQL stops proving it past 100 values in an IN
    list. Without it, each webhook (SQLite) and each sync window (both) read the whole table.
    """

    def flashfx_id(self, flashfx_id: str) -> MirrorQuerySet:
        return self.filter(flashfx_id=flashfx_id).exclude(flashfx_id="")

    def flashfx_ids(self, flashfx_ids: Iterable[str]) -> MirrorQuerySet:
        return self.filter(flashfx_id__in=list(flashfx_ids)).exclude(flashfx_id="")


class Mirror(models.Model):
    """What every mirror has; concrete models add the entity's documented fields as columns.

    Rows are written only through the apply rule (mirrors/apply.py), whatever brought the
    provider's version: sync, a webhook, or the reply to one of our own mutations.
    """

    flashfx_id = models.CharField("FlashFX id", max_length=24, blank=True, default="")
    external_id = models.CharField(max_length=200, blank=True, default="", db_index=True)
    raw = models.JSONField("last raw payload", default=dict, blank=True)
    remote_changed_at = models.DateTimeField(
        null=True, blank=True, help_text="When the provider's version we hold was observed or sent."
    )
    anomaly = models.CharField(
        max_length=300, blank=True, help_text="Unknown status or code, or a refused backward move."
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(default=timezone.now, editable=False)

    # Set by concrete models: the status order, and the fields a stale version may still fill.
    STATUS_ORDER: StatusOrder | None = None
    FILL_ONCE: frozenset[str] = frozenset()
    # Columns that are ours, not FlashFX's (e.g. a deposit's review state): no version of the
    # provider's feeds them, so the apply rule never writes them.
    OWN_FIELDS: frozenset[str] = frozenset()

    # Django gives every concrete mirror this manager anyway; declared here so that code
    # written for any mirror (`model: type[Mirror]`) may use it and be type-checked.
    objects = MirrorQuerySet.as_manager()

    class Meta:
        abstract = True
        constraints = [
            models.UniqueConstraint(
                fields=["flashfx_id"],
                condition=~Q(flashfx_id=""),
                name="%(app_label)s_%(class)s_flashfx_id_uniq",
            )
        ]

    def __str__(self) -> str:
        return f"{type(self).__name__} {self.flashfx_id or self.pk}"

    def money_moved(self) -> list[tuple[str, str, datetime, Decimal]]:
        """What this row adds to the money roll-up (mirrors/rollup.py): (source, currency,
        when, amount) for each way it moves money; none for a mirror that moves none."""
        return []


def money(**kwargs) -> models.DecimalField:
    """An amount in major units, as FlashFX sends it; the currency is a column beside it."""
    return models.DecimalField(max_digits=18, decimal_places=2, **kwargs)


def blank(value: str | None) -> str:
    """FlashFX's null or absent text as the empty string our text columns hold."""
    return value or ""
