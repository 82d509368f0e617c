"""The review panel of a deposit page (scaffolding: the queue's piece of issue 10 fills it)."""

from __future__ import annotations

from django import template

register = template.Library()


@register.inclusion_tag("payments/deposit/_review.html", takes_context=True)
def deposit_review_panel(context, deposit):
    return {"deposit": deposit, "request": context.get("request"), "user": context.get("user")}
