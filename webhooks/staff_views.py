"""Staff pages for inbound webhooks (the receiver is webhooks/views.py)."""

from __future__ import annotations

from django.contrib.auth.decorators import permission_required
from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_safe

from backoffice.views import placeholder


@require_safe
@permission_required("webhooks.view_inboundevent", raise_exception=True)
def events(request: HttpRequest) -> HttpResponse:
    return placeholder(
        request,
        "Webhook events",
        "Every event FlashFX sent, as received: type, status, raw body and headers, processing "
        "attempts and errors, the quarantine, and replay with a dry run first. Until then, "
        "admins find them in the admin.",
    )
