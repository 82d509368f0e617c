"""Every MirrorSpec against its model and the FlashFX schema (flashfx/schema.graphql).

A declaration that names a column the model does not have, a payload key or a status FlashFX
does not send, or a model column that FlashFX's version never feeds, fails here: this is the
test that tells whoever adds a field to a mirrored entity which places they missed.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.apps import apps
from graphql import (
    GraphQLEnumType,
    GraphQLField,
    GraphQLList,
    GraphQLObjectType,
    GraphQLScalarType,
    get_named_type,
    get_nullable_type,
)

from flashfx.client import FlashFXClient
from flashfx.schema import schema
from mirrors.base import Mirror
from mirrors.registry import MirrorSpec, Registry, registry
from webhooks.processing import NOT_MIRRORED

# Columns every mirror has that no version of FlashFX's feeds: the apply rule keeps them.
BOOKKEEPING = {"id", "flashfx_id", "remote_changed_at", "anomaly", "created_at", "updated_at"}
CATALOGUE = Path(__file__).resolve().parents[2] / "docs" / "flashfx.md"
SPECS = registry.all()


def columns(model: type[Mirror]) -> set[str]:
    return {f.attname for f in model._meta.concrete_fields}


def sdl_type(spec: MirrorSpec) -> GraphQLObjectType:
    found = schema().get_type(spec.wire.__name__)
    assert isinstance(found, GraphQLObjectType), f"{spec.wire.__name__} is not an SDL type"
    return found


def status_values(spec: MirrorSpec) -> frozenset[str]:
    status = get_named_type(sdl_type(spec).fields["status"].type)
    assert isinstance(status, GraphQLEnumType)
    return frozenset(status.values)


def sample(field_name: str, field: GraphQLField, depth: int = 0) -> Any:
    """A value FlashFX could send for this field: every field filled, so every column is fed."""
    if isinstance(get_nullable_type(field.type), GraphQLList):
        return []
    named = get_named_type(field.type)
    if isinstance(named, GraphQLEnumType):
        return sorted(named.values)[0]
    if isinstance(named, GraphQLObjectType):
        return {n: sample(n, f, depth + 1) for n, f in named.fields.items() if depth < 1}
    assert isinstance(named, GraphQLScalarType)
    if named.name == "ID":
        return "65f0c0ffee0000000000c001"
    if named.name == "Float":
        return Decimal("12.34")
    if named.name == "Int":
        return 1
    if named.name == "Boolean":
        return True
    if field_name.endswith("At") or field_name in ("dob",):
        return "2026-03-03T01:25:11.984Z"
    return "AU" if named.name.startswith("Country") else "AUD" if "Currency" in named.name else "x"


def full_version(spec: MirrorSpec):
    payload = {name: sample(name, field) for name, field in sdl_type(spec).fields.items()}
    return spec.wire.from_wire(payload)


def test_the_registry_holds_every_mirror_in_dependency_order():
    names = [spec.name for spec in SPECS]
    assert names == ["subclients", "senders", "recipients", "deposits", "withdrawals", "payments"]
    for position, spec in enumerate(SPECS):
        assert set(spec.depends_on) <= set(names[:position]), spec.name
    assert {spec.model for spec in SPECS} == {m for m in apps.get_models() if issubclass(m, Mirror)}


@pytest.mark.django_db
@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
def test_flashfxs_version_feeds_every_column_of_the_model(spec):
    remote = spec.remote(full_version(spec), datetime.now(UTC), spec.batch_context([]))
    assert set(remote.fields) == columns(spec.model) - BOOKKEEPING - spec.model.OWN_FIELDS
    assert not set(remote.fields) & spec.model.OWN_FIELDS  # ours stay ours
    assert remote.unknown == ()  # every sampled status and code is one we know


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
def test_the_declared_columns_exist_on_the_model(spec):
    fed = {column for fed in spec.event_columns.values() for column in fed}
    assert fed <= columns(spec.model), fed - columns(spec.model)
    assert set(spec.compared) <= columns(spec.model), set(spec.compared) - columns(spec.model)
    for _, (attribute, _known) in spec.codes.items():
        assert attribute in spec.wire.__dataclass_fields__


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
def test_the_declared_payload_keys_and_codes_are_fields_of_the_sdl_type(spec):
    fields = sdl_type(spec).fields
    assert set(spec.event_columns) <= set(fields), set(spec.event_columns) - set(fields)
    for wire_name, (_attribute, known) in spec.codes.items():
        enum = get_named_type(fields[wire_name].type)
        assert isinstance(enum, GraphQLEnumType) and known == frozenset(enum.values)


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
def test_the_declared_statuses_are_the_sdls_and_the_models(spec):
    if spec.model.STATUS_ORDER is None:
        assert not (spec.open_statuses or spec.events), "statuses for a mirror without a status"
        return
    assert "status" in sdl_type(spec).fields
    known = status_values(spec)
    assert set(spec.model.STATUS_ORDER.ranks) == known
    assert set(spec.open_statuses) <= known
    assert {s for s in spec.events.values() if s is not None} <= known


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
def test_the_read_operations_are_the_clients_queries_of_the_sdl_type(spec):
    query = schema().query_type.fields
    one, many = spec.read_one, spec.read_many
    assert callable(getattr(FlashFXClient, one)) and callable(getattr(FlashFXClient, many))
    camel = {n: n.split("_")[0] + "".join(w.title() for w in n.split("_")[1:]) for n in (one, many)}
    assert get_named_type(query[camel[one]].type) is sdl_type(spec)
    assert isinstance(query[camel[many]].type, GraphQLList)
    assert get_named_type(query[camel[many]].type) is sdl_type(spec)


def documented_events() -> tuple[set[str], dict[str, str]]:
    """The event names of docs/flashfx.md §4.6, and the status each table row gives."""
    text = CATALOGUE.read_text()
    section = text[text.index("### 4.6") : text.index("## 5.")]
    names = set(re.findall(r"`([a-z]+(?:_[a-z]+)+)`", section))
    statuses = dict(re.findall(r"^\| `([a-z_]+)` \| [^|`]*`([A-Z_]+)`", section, re.MULTILINE))
    return names, statuses


def test_the_webhook_events_are_the_documented_ones():
    names, statuses = documented_events()
    mirrored = {event for spec in SPECS for event in spec.events}
    assert mirrored == {name for name in names if not name.startswith(NOT_MIRRORED)}
    for spec in SPECS:
        for event, status in spec.events.items():
            if event in statuses and status is not None:
                assert statuses[event] == status, event


def test_a_name_a_model_an_event_twice_or_a_dependency_cycle_is_refused():
    sub_clients, senders = registry.get("subclients"), registry.get("senders")
    local = Registry()
    local.register(
        MirrorSpec(**{**sub_clients.__dict__, "depends_on": ("senders",)}),
        MirrorSpec(**{**senders.__dict__, "depends_on": ("subclients",)}),
    )
    with pytest.raises(ValueError, match="depend on each other"):
        local.all()
    with pytest.raises(ValueError, match="registered already"):
        local.register(MirrorSpec(**{**senders.__dict__, "compared": ()}))
    with pytest.raises(ValueError, match="mirrored by 'subclients'"):
        local.register(MirrorSpec(**{**sub_clients.__dict__, "name": "other"}))
    payments = registry.get("payments")
    with pytest.raises(ValueError, match="feed 'subclients' already"):
        local.register(MirrorSpec(**{**payments.__dict__, "events": {"subclient_active": "OPEN"}}))
    with pytest.raises(LookupError):
        local.get("nothing")
