"""The GraphQL operations the client sends, one `.graphql` file each in flashfx/operations/.

Each is read and parsed once, at import. Following API.md §1.1, an operation declares only
its top-level variables (e.g. `$input: CreateWithdrawalInput!`, `$id: ID!`), never nested
ones, so a change of FlashFX's inner input types cannot break it. The tests validate every
document against flashfx/schema.graphql; nothing validates them on each call (NOTES.md: local
validation makes a call about 3x slower).

Parsed with graphql-core (the parser gql's `gql()` calls) so that flashfx/transport.py stays
the only module importing gql; the transport wraps these documents in gql requests.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from graphql import DocumentNode, FieldNode, OperationDefinitionNode, parse, print_ast

DIRECTORY = Path(__file__).resolve().parent / "operations"


@dataclass(frozen=True)
class Operation:
    name: str  # the operation name, also the file name: "CreateWithdrawal"
    kind: str  # "query" or "mutation"
    root_field: str  # the one root field it selects: "createWithdrawal"
    document: DocumentNode
    text: str  # the document as sent on the wire (printed once, comments dropped)

    @property
    def is_mutation(self) -> bool:
        return self.kind == "mutation"


def _load(path: Path) -> Operation:
    document = parse(path.read_text())
    definitions = document.definitions
    if len(definitions) != 1 or not isinstance(definitions[0], OperationDefinitionNode):
        raise ValueError(f"{path.name}: exactly one operation and no fragments, please")
    definition = definitions[0]
    name = definition.name.value if definition.name else ""
    if name != path.stem:
        raise ValueError(f"{path.name}: the operation must be named {path.stem!r}, not {name!r}")
    fields = definition.selection_set.selections
    if len(fields) != 1 or not isinstance(fields[0], FieldNode):
        raise ValueError(f"{path.name}: exactly one root field, please")
    return Operation(
        name=name,
        kind=definition.operation.value,
        root_field=fields[0].name.value,
        document=document,
        text=print_ast(document),
    )


OPERATIONS: dict[str, Operation] = {
    op.name: op for op in map(_load, sorted(DIRECTORY.glob("*.graphql")))
}


def get(name: str) -> Operation:
    return OPERATIONS[name]
