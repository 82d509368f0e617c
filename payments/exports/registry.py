"""The exportable lists: each one's filters (read as its page reads them), its rows (ordered as
its page orders them) and its columns. payments/exports/lists.py registers ours; another app
registers its own list from its AppConfig.ready() (see payments/exports/__init__.py)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.db.models import Expression, F, QuerySet
from django.http import QueryDict

from .formatting import MASKED


class ExportError(ValueError):
    """An export that cannot be made as asked (bad filters, too many rows for XLSX...)."""


@dataclass(frozen=True)
class Column:
    key: str  # stable: the column chooser and saved jobs name columns by it
    label: str
    source: str | Expression  # a field path ("sub_client__full_name") or an expression
    kind: str  # formatting.TEXT, MONEY, ...
    sensitive: bool = False  # masked for members without ACCOUNT_NUMBER_PERMISSION
    default: bool = True  # ticked in the column chooser
    decimals: int = 2  # money: the number format of its XLSX cells

    def expression(self) -> Expression:
        return F(self.source) if isinstance(self.source, str) else self.source

    def kind_for(self, *, unmasked: bool) -> str:
        return MASKED if self.sensitive and not unmasked else self.kind


@dataclass(frozen=True)
class ExportList:
    name: str  # in URLs, jobs and the audit trail: "deposits"
    title: str  # "Deposits"
    permission: str  # who may read the list's page may export it (with backoffice.export_data)
    url_name: str  # the page, to go back to
    # The page's filters from its query string, as a dict of JSON values (kept on a job, put
    # in the audit trail); raises ExportError naming what is wrong.
    filters: Callable[[QueryDict, Any], dict[str, Any]]
    # Every row those filters select, in the page's order.
    rows: Callable[[dict[str, Any], Any], QuerySet]
    columns: tuple[Column, ...]

    def column(self, key: str) -> Column:
        for c in self.columns:
            if c.key == key:
                return c
        raise ExportError(f"{self.title} have no column {key!r}.")


REGISTRY: dict[str, ExportList] = {}


def register(entry: ExportList) -> ExportList:
    if entry.name in REGISTRY and REGISTRY[entry.name] != entry:
        raise ValueError(f"an export list named {entry.name!r} is registered already")
    keys = [c.key for c in entry.columns]
    if len(set(keys)) != len(keys):
        raise ValueError(f"{entry.name}: column keys repeat")
    REGISTRY[entry.name] = entry
    return entry


def export_list(name: str) -> ExportList | None:
    return REGISTRY.get(name)
