from __future__ import annotations

import re
from pathlib import Path

import pytest
from graphql import (
    ArgumentNode,
    FieldNode,
    FragmentDefinitionNode,
    GraphQLObjectType,
    OperationDefinitionNode,
    VariableNode,
    build_schema,
    get_named_type,
    validate,
    visit,
)
from graphql.language import Visitor

from flashfx.operations import (
    DIRECTORY,
    FRAGMENTS,
    FRAGMENTS_PATH,
    OPERATIONS,
    load_fragments,
    load_operation,
)

# The operation documents (flashfx/operations/*.graphql), as sent: each with the fragments of
# operations/fragments.graphql it uses appended. Checked against the contract here, never on
# each call (it would make every call slower), with the rule that only flashfx/transport.py
# imports gql.

BASE_DIR = Path(__file__).resolve().parents[2]
SCHEMA = build_schema((BASE_DIR / "flashfx" / "schema.graphql").read_text())
EXPECTED = {
    "Login", "Logout", "Balances", "Statement", "Deposits", "Deposit", "RefundDeposit",
    "Withdrawals", "Withdrawal", "CreateWithdrawal", "Payments", "Payment", "CreatePayment",
    "Quote", "Senders", "Sender", "CreateSender", "UpdateSender", "DeleteSender", "Recipients",
    "Recipient", "CreateRecipient", "UpdateRecipient", "DeleteRecipient", "SubClients",
    "SubClient", "CreateSubClient", "ConfirmationOfPayee",
}  # fmt: skip
NAMES = sorted(OPERATIONS)


def test_there_is_one_document_per_operation_the_client_needs():
    assert set(OPERATIONS) == EXPECTED
    files = {path.stem for path in DIRECTORY.glob("*.graphql") if path != FRAGMENTS_PATH}
    assert files == EXPECTED


@pytest.mark.parametrize("name", NAMES)
def test_the_document_validates_against_the_schema(name):
    # The whole document: the operation and its fragments (validation also refuses a missing,
    # unused or cyclic fragment).
    assert validate(SCHEMA, OPERATIONS[name].document) == []


@pytest.mark.parametrize("fragment", sorted(FRAGMENTS))
def test_an_unknown_field_inside_a_fragment_fails_validation(fragment, tmp_path):
    """The check above reaches into fragments, including those only other fragments spread."""
    head = f"fragment {fragment} on "
    text = FRAGMENTS_PATH.read_text()
    start = text.index(head)
    brace = text.index("{", start) + 1
    broken = tmp_path / FRAGMENTS_PATH.name
    broken.write_text(text[:brace] + "\n  notAField" + text[brace:])
    fragments = load_fragments(broken)
    failed = []
    for name in NAMES:
        operation = load_operation(DIRECTORY / f"{name}.graphql", fragments)
        uses = {d.name.value for d in operation.document.definitions[1:]}
        errors = [error.message for error in validate(SCHEMA, operation.document)]
        if fragment in uses:
            assert len(errors) == 1 and "'notAField'" in errors[0], (name, errors)
            failed.append(name)
        else:
            assert errors == [], name
    assert failed


def test_every_fragment_is_used():
    used = {
        definition.name.value
        for operation in OPERATIONS.values()
        for definition in operation.document.definitions[1:]
    }
    assert used == set(FRAGMENTS)


def test_an_operation_spreading_an_unknown_fragment_is_refused_at_load(tmp_path):
    path = tmp_path / "Recipient.graphql"
    path.write_text("query Recipient($id: ID!) { recipient(id: $id) { ...Nope } }")
    with pytest.raises(ValueError, match="Nope"):
        load_operation(path, FRAGMENTS)


class _VariableUses(Visitor):
    """Every place a variable is used, as (argument name, depth of the field it is on)."""

    def __init__(self) -> None:
        super().__init__()
        self.uses: list[tuple[str, str, bool]] = []  # (variable, argument, directly on root?)
        self.depth = 0

    def enter_fragment_definition(self, *_args) -> None:
        self.depth += 1  # a fragment's fields are never the root field

    def leave_fragment_definition(self, *_args) -> None:
        self.depth -= 1

    def enter_field(self, node: FieldNode, *_args) -> None:
        self.depth += 1
        for argument in node.arguments or ():
            self._argument(argument)

    def leave_field(self, *_args) -> None:
        self.depth -= 1

    def _argument(self, argument: ArgumentNode) -> None:
        value = argument.value
        if isinstance(value, VariableNode):
            self.uses.append((value.name.value, argument.name.value, self.depth == 1))
        else:
            self.uses.append(("<literal>", argument.name.value, False))


@pytest.mark.parametrize("name", NAMES)
def test_the_document_declares_only_top_level_variables(name):
    """docs/flashfx.md §1.1: only the root field's own arguments are variables (`$input`, `$id`), each
    passed whole; no nested variables, no inline literals, none inside fragments."""
    operation = OPERATIONS[name]
    definition, *fragments = operation.document.definitions
    assert isinstance(definition, OperationDefinitionNode)
    assert all(isinstance(fragment, FragmentDefinitionNode) for fragment in fragments)
    uses = _VariableUses()
    visit(operation.document, uses)
    declared = {v.variable.name.value for v in definition.variable_definitions or ()}
    assert all(on_root for _, _, on_root in uses.uses), uses.uses
    assert {variable for variable, _, _ in uses.uses} == declared
    # Each variable is named after the argument it fills, and types match the root field's.
    root = (SCHEMA.mutation_type if operation.is_mutation else SCHEMA.query_type).fields[
        operation.root_field
    ]
    for variable, argument, _ in uses.uses:
        assert variable == argument
        assert argument in root.args


def _entity_type(name: str) -> GraphQLObjectType:
    """The type the operation returns: the entity itself, or the one inside a `...Reply`."""
    operation = OPERATIONS[name]
    root = SCHEMA.mutation_type if operation.is_mutation else SCHEMA.query_type
    returned = get_named_type(root.fields[operation.root_field].type)
    for field in returned.fields.values():
        if returned.name.endswith("Reply") and isinstance(
            inner := get_named_type(field.type), GraphQLObjectType
        ):
            return inner
    return returned


@pytest.mark.parametrize("name", NAMES)
def test_an_entity_with_a_sub_client_selects_its_id(name):
    if "subClient" in _entity_type(name).fields:
        assert re.search(r"subClient \{\s*id\s*\}", OPERATIONS[name].text)


def test_only_the_transport_imports_gql():
    importing = re.compile(r"^\s*(from\s+gql\b|import\s+gql\b)", re.MULTILINE)
    offenders = [
        str(path.relative_to(BASE_DIR))
        for path in BASE_DIR.rglob("*.py")
        if ".venv" not in path.parts
        and "node_modules" not in path.parts
        and importing.search(path.read_text(errors="replace"))
    ]
    assert offenders == ["flashfx/transport.py"]
