"""Only a document made of public fields alone (login, introspection) goes without a token."""

from __future__ import annotations

import pytest

PROTECTED_DOCUMENTS = [
    "{ balances { cleared } }",
    "{ ... on Query { balances { cleared } } }",
    "query Q { ...Bal } fragment Bal on Query { balances { cleared } }",
    "{ __typename balances { cleared } }",
    'mutation { login(input: {email: "a@b.co", password: "x"}) { token } logout { success } }',
]


@pytest.mark.parametrize("document", PROTECTED_DOCUMENTS)
def test_a_document_touching_protected_fields_needs_a_token(sandbox, document):
    envelope = sandbox.gql(document, token=None)
    assert envelope["data"] is None
    assert envelope["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


def test_an_ambiguous_document_without_operation_name_is_not_public(sandbox):
    envelope = sandbox.gql("query A { __typename } query B { balances { cleared } }", token=None)
    assert envelope["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


def test_typename_alone_needs_no_token(sandbox):
    assert sandbox.data("{ __typename }", token=None) == {"__typename": "Query"}
