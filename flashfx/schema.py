"""The contract: flashfx/schema.graphql, loaded once, for the tests and for known enum values."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from graphql import GraphQLEnumType, GraphQLSchema, build_schema

SDL_PATH = Path(__file__).with_name("schema.graphql")


@cache
def schema() -> GraphQLSchema:
    return build_schema(SDL_PATH.read_text())


@cache
def enum_values(name: str) -> frozenset[str]:
    """The values the SDL lists for an enum (e.g. RejectCode): what we know of, not all there is."""
    enum = schema().get_type(name)
    if not isinstance(enum, GraphQLEnumType):
        raise KeyError(f"{name} is not an enum of the FlashFX schema")
    return frozenset(enum.values)
