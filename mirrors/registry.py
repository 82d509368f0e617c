"""One declaration per mirrored FlashFX entity, and the registry the apps fill with them.

A `MirrorSpec` says everything the mirrors' machinery needs to know about an entity: its model,
how to read one and many from FlashFX, how FlashFX's version becomes column values, which
statuses are still open, which webhook events it receives and which columns each payload feeds,
what reconciliation compares, and what it does to the balance. Sync, reconciliation and webhook
processing loop over the registry; they never name an entity.

Each app declares its entities in `<app>/mirrors.py` and registers them there; the mirrors app
imports those modules when Django starts (MirrorsConfig.ready), so mirrors/ itself imports no
app above it. Adding a field to a mirrored entity touches its model, its migration and its
spec's `columns` (docs/architecture.md, "Adding a field to a mirrored entity").
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from django.db import transaction

from .apply import Applied, Change, Outcome, Remote, apply_remote, apply_remote_many, change_of
from .base import Mirror

if TYPE_CHECKING:
    from flashfx.client import FlashFXClient


@dataclass(frozen=True)
class BalanceEffect:
    """What one mirrored movement does to the balance of its currency."""

    currency: str
    cleared: Decimal = Decimal("0.00")
    pending: Decimal = Decimal("0.00")


@dataclass(frozen=True)
class ImpliedLine:
    """A line one mirrored movement puts on FlashFX's statement (docs/flashfx.md §3.1): its
    type, the balance's currency, what it does to it (signed) and when FlashFX dates it (None when the mirror
    cannot say, e.g. a cancellation's return)."""

    type: str
    currency: str
    amount: Decimal
    at: datetime | None


def _no_context(wires: Iterable[Any]) -> None:
    return None


@dataclass(frozen=True)
class MirrorSpec:
    """How one FlashFX entity is mirrored (see the module's docstring)."""

    # The entity's name in sync runs, drift reports and the commands' --entity.
    name: str
    model: type[Mirror]
    # The provider's version as flashfx/ parses it (flashfx.types.Deposit, ...); its class
    # name is the entity's type in flashfx/schema.graphql.
    wire: type
    # The FlashFXClient methods that read one entity by id and a list by filters (the query
    # fields of flashfx/schema.graphql): e.g. "deposit" and "deposits".
    read_one: str
    read_many: str
    # The wire version as column values, beyond what every mirror takes (external_id, the
    # status of a model with a STATUS_ORDER, raw). `context` is what `batch_context` read once
    # for a whole batch (e.g. the sub-clients that transfers point at).
    columns: Callable[[Any, Any], dict[str, Any]]
    batch_context: Callable[[Iterable[Any]], Any] = _no_context
    # Codes FlashFX says "may grow": wire name -> (attribute of the wire version, known values).
    # An unknown one is stored as received and flagged on the row.
    codes: Mapping[str, tuple[str, frozenset[str]]] = field(default_factory=dict)
    # Statuses a row can still leave: re-read on every incremental sync.
    open_statuses: tuple[str, ...] = ()
    # The list query filters on one `status` at a time, not on a list of `statuses` (§2.5).
    one_status_per_query: bool = False
    # Webhook event -> the status it means (None: the status does not change, e.g. an FX leg).
    events: Mapping[str, str | None] = field(default_factory=dict)
    # Webhook payload key -> the columns it feeds; a payload moves only the columns it carries.
    event_columns: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    # The columns reconciliation compares with FlashFX's current version.
    compared: tuple[str, ...] = ()
    # A row's effect on the balance it implies (money movements only), for the balance proof.
    balance_effect: Callable[[Any], BalanceEffect | None] | None = None
    # The statement lines a row implies (money movements only), for a day's statement beside
    # the mirror (mirrors/statement.py); and the columns that date them, to find a day's rows.
    statement_lines: Callable[[Any], list[ImpliedLine]] | None = None
    statement_dated_by: tuple[str, ...] = ()
    # Entities whose rows this one's rows point at: synced before it.
    depends_on: tuple[str, ...] = ()
    # The app's follow-up to rows created or whose status moved, whatever brought them (e.g. a
    # new deposit is matched to what it pays for). Runs in the transaction that applied them:
    # both commit or neither does.
    on_change: Callable[[list[Change]], None] | None = None
    # Our own columns (Mirror.OWN_FIELDS) of rows about to be created, derived from FlashFX's
    # version (e.g. whether a deposit's payer is a third party): set on the unsaved rows, so
    # they are written with the row rather than by an UPDATE after it.
    prepare_new: Callable[[list[Any]], None] | None = None

    def fetch_one(self, client: FlashFXClient, flashfx_id: str) -> Any:
        """FlashFX's current version of one entity, or None if FlashFX does not know it."""
        return getattr(client, self.read_one)(flashfx_id)

    def fetch_many(self, client: FlashFXClient, **filters: Any) -> list:
        return getattr(client, self.read_many)(**filters)

    def remote(self, wire: Any, observed_at: datetime, context: Any) -> Remote:
        """FlashFX's version of one entity in this mirror's columns; `context` as
        `batch_context` read it for the batch the entity came in."""
        order = self.model.STATUS_ORDER
        status = wire.status if order is not None else None
        flags = (
            []
            if order is None or status is None or order.is_known(status)
            else [f"status {status}"]
        )
        for wire_name, (attribute, known) in self.codes.items():
            value = getattr(wire, attribute)
            if value and value not in known:
                flags.append(f"{wire_name} {value}")
        fields = {"external_id": wire.external_id or ""}
        if status is not None:
            fields["flashfx_status"] = status
        fields |= self.columns(wire, context)
        fields["raw"] = wire.raw
        return Remote(
            flashfx_id=wire.id,
            fields=fields,
            observed_at=observed_at,
            status=status,
            unknown=tuple(flags),
        )

    def remote_of(self, wire: Any, observed_at: datetime) -> Remote:
        """FlashFX's version of one entity that came alone (a webhook, a reply, a fetch)."""
        return self.remote(wire, observed_at, self.batch_context([wire]))

    def remotes(self, wires: list, observed_at: datetime) -> list[Remote]:
        context = self.batch_context(wires)
        return [self.remote(wire, observed_at, context) for wire in wires]

    def apply(
        self, wire: Any, *, observed_at: datetime, authoritative: bool = False, source: str = ""
    ) -> Applied:
        """Create or update the mirror row from FlashFX's version (sync, replies, webhooks)."""
        return self.apply_version(
            self.remote_of(wire, observed_at), authoritative=authoritative, source=source
        )

    def apply_version(
        self, remote: Remote, *, authoritative: bool = False, source: str = ""
    ) -> Applied:
        """`apply` for a version already in our columns (a webhook's partial one, a drift)."""
        with transaction.atomic():
            applied = apply_remote(
                self.model,
                remote,
                authoritative=authoritative,
                source=source,
                prepare_new=self.prepare_new,
            )
            change = change_of(applied)
            if change is not None and self.on_change is not None:
                self.on_change([change])
        return applied

    def apply_many(
        self,
        wires: list,
        *,
        observed_at: datetime,
        changed: list[str] | None = None,
        source: str = "sync",
    ) -> dict[Outcome, int]:
        """A sync window at once: the same rule as `apply`, in bulk."""
        moves: list[Change] = []
        with transaction.atomic():
            counts = apply_remote_many(
                self.model,
                self.remotes(wires, observed_at),
                changed,
                source=source,
                moves=moves,
                prepare_new=self.prepare_new,
            )
            if moves and self.on_change is not None:
                self.on_change(moves)
        return counts


@dataclass
class Registry:
    specs: dict[str, MirrorSpec] = field(default_factory=dict)

    def register(self, *specs: MirrorSpec) -> None:
        for spec in specs:
            if self.specs.get(spec.name, spec) is not spec:
                raise ValueError(f"a mirror named {spec.name!r} is registered already")
            for other in self.specs.values():
                if other is spec:
                    continue
                if other.model is spec.model:
                    raise ValueError(f"{spec.model.__name__} is mirrored by {other.name!r} already")
                if shared := set(other.events) & set(spec.events):
                    raise ValueError(f"events {sorted(shared)} feed {other.name!r} already")
            self.specs[spec.name] = spec

    def all(self) -> list[MirrorSpec]:
        """Every spec, each after the ones it depends on (then in registration order)."""
        ordered: dict[str, MirrorSpec] = {}

        def visit(spec: MirrorSpec, path: tuple[str, ...]) -> None:
            if spec.name in ordered:
                return
            if spec.name in path:
                raise ValueError(f"mirrors depend on each other: {' -> '.join(path)}")
            for name in spec.depends_on:
                visit(self.get(name), (*path, spec.name))
            ordered[spec.name] = spec

        for spec in self.specs.values():
            visit(spec, ())
        return list(ordered.values())

    def names(self) -> list[str]:
        return [spec.name for spec in self.all()]

    def get(self, name: str) -> MirrorSpec:
        try:
            return self.specs[name]
        except KeyError:
            raise LookupError(f"no mirror is registered as {name!r}") from None

    def for_event(self, event: str) -> tuple[MirrorSpec, str | None] | None:
        """The mirror a webhook event feeds and the status it means, or None."""
        for spec in self.specs.values():
            if event in spec.events:
                return spec, spec.events[event]
        return None


registry = Registry()
register = registry.register
