"""The match panel of a deposit page: the matched expectation, or the proposals to decide."""

from __future__ import annotations

from typing import Any

from django import template

from ..selectors.expected import match_panel

register = template.Library()


@register.inclusion_tag("payments/deposit/_match.html", takes_context=True)
def deposit_match_panel(context, deposit):
    user = context.get("user")
    return {
        **match_panel(deposit=deposit, user=user),
        "request": context.get("request"),
        "user": user,
        "csrf_token": context.get("csrf_token"),
    }


def panel_context(*, deposit: Any, user: Any, error: str = "") -> dict[str, Any]:
    """What the panel shows, for a view that answers with the panel alone (htmx)."""
    return {**match_panel(deposit=deposit, user=user), "error": error}
