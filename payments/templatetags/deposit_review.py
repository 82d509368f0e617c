"""The review panel of a deposit page: review state, assignee, notes, Accept, Flag.

The deposit page includes it with `{% load deposit_review %}{% deposit_review_panel deposit %}`;
the review actions (payments/views/deposits.py deposit_review) answer it again to htmx.
"""

from __future__ import annotations

from typing import Any

from django import template

from ..services.review import MOVES, NOT_ACCEPTABLE

register = template.Library()


def review_panel_context(request, deposit, *, error: str = "", done: str = "") -> dict[str, Any]:
    user = getattr(request, "user", None)
    state = deposit.review_state
    return {
        "deposit": deposit,
        "request": request,
        "user": user,
        "notes": list(deposit.notes.select_related("author")),
        "can_review": bool(user and user.has_perm("payments.review_deposit")),
        "can_accept": "accepted" in MOVES[state] and deposit.flashfx_status not in NOT_ACCEPTABLE,
        "can_flag": "flagged" in MOVES[state],
        "held_by_flashfx": deposit.flashfx_status == "REVIEWING",
        "error": error,
        "done": done,
    }


@register.inclusion_tag("payments/deposit/_review.html", takes_context=True)
def deposit_review_panel(context, deposit):
    request = context.get("request")
    ctx = review_panel_context(request, deposit)
    ctx["csrf_token"] = context.get("csrf_token")
    return ctx
