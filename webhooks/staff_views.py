"""Staff pages for inbound webhooks (the receiver is webhooks/views.py)."""

from __future__ import annotations

import json

from django.contrib.auth.decorators import permission_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_safe

from backoffice.views import placeholder

from .models import InboundEvent


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


@require_safe
@permission_required("webhooks.view_inboundevent", raise_exception=True)
def event(request: HttpRequest, pk: int) -> HttpResponse:
    """One received event as it arrived: headers, raw body, and what processing made of it."""
    inbound = get_object_or_404(InboundEvent, pk=pk)
    body = bytes(inbound.body or b"")
    try:
        text = body.decode()
    except UnicodeDecodeError:
        text = body.decode("latin-1")
    try:  # pretty-printed when it is JSON; the exact bytes are shown beside it
        pretty = json.dumps(json.loads(text), indent=2, sort_keys=True, ensure_ascii=False)
    except ValueError:
        pretty = ""
    context = {
        "event": inbound,
        "body_text": text,
        "body_kept": len(body),
        "body_pretty": pretty,
        "headers": sorted((inbound.headers or {}).items()),
    }
    return render(request, "webhooks/event.html", context)
