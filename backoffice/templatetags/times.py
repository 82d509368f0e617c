"""`{% when at %}`: a moment as staff read it, in one place for every page.

The local time (the active time zone) is shown; the UTC time is in the title and in the
machine-readable `datetime` attribute, so nothing is lost to the conversion. One format_html
call rather than three `date` filters: lists render it once per row, and Django's `date`
filter costs tens of microseconds a call (bench/deposit_queue.py).
"""

from __future__ import annotations

from datetime import UTC, datetime

from django import template
from django.utils import timezone
from django.utils.html import format_html

register = template.Library()


@register.simple_tag
def when(at: datetime | None) -> str:
    if at is None:
        return "—"
    utc = at.astimezone(UTC)
    return format_html(
        '<time datetime="{}" title="{} UTC">{}</time>',
        utc.isoformat(),
        utc.strftime("%Y-%m-%d %H:%M:%S"),
        timezone.localtime(at).strftime("%Y-%m-%d %H:%M"),
    )
