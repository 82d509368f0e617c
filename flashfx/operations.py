"""The GraphQL operations the client sends, one `.graphql` file each in flashfx/operations/.

Each is read and parsed once, at import. Following docs/flashfx.md §1.1, an operation declares only
its top-level variables (e.g. `$input: CreateWithdrawalInput!`, `$id: ID!`), never nested
ones, so a change of FlashFX's inner input types cannot break it. The tests validate every
document against flashfx/schema.graphql; nothing validates them on each call (measured: local
validation makes a call about 3x slower).

Selection sets that several operations share are named fragments, all defined in
operations/fragments.graphql. Each operation document gets the fragments it spreads appended,
and the ones those spread in turn, so that what is sent (and validated) is complete on its own.

Parsed with graphql-core (the parser gql's `gql()` calls) so that flashfx/transport.py stays
the only module importing gql; the transport wraps these documents in gql requests.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    Node,
    OperationDefinitionNode,
    Visitor,
    parse,
    print_ast,
    visit,
)

DIRECTORY = Path(__file__).resolve().parent / "operations"
FRAGMENTS_PATH = DIRECTORY / "fragments.graphql"


@dataclass(frozen=True)
class Operation:
    name: str  # the operation name, also the file name: "CreateWithdrawal"
    kind: str  # "query" or "mutation"
    root_field: str  # the one root field it selects: "createWithdrawal"
    document: DocumentNode  # the operation, then the fragments it uses
    text: str  # the document as sent on the wire (printed once, comments dropped)

    @property
    def is_mutation(self) -> bool:
        return self.kind == "mutation"


def load_fragments(path: Path) -> dict[str, FragmentDefinitionNode]:
    """The fragments a file defines, by name (nothing else is allowed in it)."""
    fragments: dict[str, FragmentDefinitionNode] = {}
    for definition in parse(path.read_text()).definitions:
        if not isinstance(definition, FragmentDefinitionNode):
            raise ValueError(f"{path.name}: fragments only, please")
        name = definition.name.value
        if name in fragments:
            raise ValueError(f"{path.name}: fragment {name!r} is defined twice")
        fragments[name] = definition
    return fragments


class _Spreads(Visitor):
    def __init__(self) -> None:
        super().__init__()
        self.names: list[str] = []

    def enter_fragment_spread(self, node: FragmentSpreadNode, *_args: object) -> None:
        self.names.append(node.name.value)


def _spread_names(node: Node) -> list[str]:
    """The fragments `node` spreads directly, in order of appearance."""
    spreads = _Spreads()
    visit(node, spreads)
    return spreads.names


def _used_fragments(
    definition: OperationDefinitionNode, fragments: dict[str, FragmentDefinitionNode], file: str
) -> list[FragmentDefinitionNode]:
    """The fragments the operation spreads, then those they spread, each once."""
    used: list[FragmentDefinitionNode] = []
    seen: set[str] = set()
    pending = _spread_names(definition)
    while pending:
        name = pending.pop(0)
        if name in seen:
            continue
        if name not in fragments:
            raise ValueError(f"{file}: no fragment {name!r} in {FRAGMENTS_PATH.name}")
        seen.add(name)
        used.append(fragments[name])
        pending += _spread_names(fragments[name])
    return used


def load_operation(path: Path, fragments: dict[str, FragmentDefinitionNode]) -> Operation:
    """One operation file, with the fragments it uses taken from `fragments` and appended."""
    definitions = parse(path.read_text()).definitions
    if len(definitions) != 1 or not isinstance(definitions[0], OperationDefinitionNode):
        raise ValueError(
            f"{path.name}: exactly one operation, please (fragments go in {FRAGMENTS_PATH.name})"
        )
    definition = definitions[0]
    name = definition.name.value if definition.name else ""
    if name != path.stem:
        raise ValueError(f"{path.name}: the operation must be named {path.stem!r}, not {name!r}")
    fields = definition.selection_set.selections
    if len(fields) != 1 or not isinstance(fields[0], FieldNode):
        raise ValueError(f"{path.name}: exactly one root field, please")
    document = DocumentNode(
        definitions=(definition, *_used_fragments(definition, fragments, path.name))
    )
    return Operation(
        name=name,
        kind=definition.operation.value,
        root_field=fields[0].name.value,
        document=document,
        text=print_ast(document),
    )


FRAGMENTS: dict[str, FragmentDefinitionNode] = load_fragments(FRAGMENTS_PATH)

OPERATIONS: dict[str, Operation] = {
    op.name: op
    for op in (
        load_operation(path, FRAGMENTS)
        for path in sorted(DIRECTORY.glob("*.graphql"))
        if path != FRAGMENTS_PATH
    )
}


def get(name: str) -> Operation:
    return OPERATIONS[name]
