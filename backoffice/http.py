"""Request helpers shared by every app's views."""

from __future__ import annotations

from django.http import HttpRequest


def is_fragment_request(request: HttpRequest) -> bool:
    """Swap requests get a partial; boosted navigation and history restores need the whole page.

    A view that switches on this must also say @vary_on_headers("HX-Request").
    """
    htmx = getattr(request, "htmx", None)  # set by django_htmx's HtmxMiddleware
    return bool(htmx) and not htmx.boosted and not htmx.history_restore_request
