"""The two ways the sandbox says no, as FlashFX does (docs/flashfx.md §2.6)."""

from __future__ import annotations

from graphql import GraphQLError


class BadUserInput(GraphQLError):
    """A GraphQL error with extensions.code = BAD_USER_INPUT; the message names the field."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(
            f"{field}: {problem}", extensions={"code": "BAD_USER_INPUT", "field": field}
        )
        self.field = field


class Unauthenticated(GraphQLError):
    def __init__(self, message: str) -> None:
        super().__init__(message, extensions={"code": "UNAUTHENTICATED"})


class BusinessFailure(Exception):
    """Answered as data: `success: false` with a machine code (e.g. INSUFFICIENT_FUNDS)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class InvalidTransition(Exception):
    """A forced transition that the documented state machine does not have."""
