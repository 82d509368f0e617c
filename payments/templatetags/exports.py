"""The export panel beside a list's filters: `{% load exports %}{% export_panel "deposits" %}`."""

from __future__ import annotations

from typing import Any

from django import template

from ..exports.jobs import DEFAULT_ZONE, EXPORT_PERMISSION, ZONES
from ..exports.registry import export_list

register = template.Library()

NOT_FILTERS = ("cursor", "after", "before", "since")  # where a page is, not what it selects


@register.inclusion_tag("payments/exports/_panel.html", takes_context=True)
def export_panel(context: Any, name: str) -> dict[str, Any]:
    request = context.get("request")
    user = context.get("user")
    entry = export_list(name)
    if entry is None:
        raise template.TemplateSyntaxError(f"export_panel: no export list is named {name!r}")
    shown = bool(user and user.has_perm(EXPORT_PERMISSION) and user.has_perm(entry.permission))
    query = request.GET.copy() if request is not None else None
    if query is not None:
        for key in NOT_FILTERS:
            query.pop(key, None)
    zone = request.session.get("export_zone", DEFAULT_ZONE) if request is not None else DEFAULT_ZONE
    return {
        "shown": shown,
        "entry": entry,
        "filters": query.urlencode() if query is not None else "",
        "zones": ZONES if zone in ZONES else (zone, *ZONES),
        "zone": zone,
        "csrf_token": context.get("csrf_token"),
    }
