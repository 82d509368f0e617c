"""POST /webhooks/flashfx/: the only door FlashFX's webhooks come through (API.md §4)."""

from __future__ import annotations

import logging

from django.conf import settings
from django.db import DatabaseError, transaction
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from . import receiving

log = logging.getLogger(__name__)


@csrf_exempt  # FlashFX signs its requests; it has no CSRF token
@require_POST
@transaction.non_atomic_requests  # one INSERT commits on its own; no request-wide transaction
def flashfx_webhook(request: HttpRequest) -> JsonResponse:
    """Answer 2xx as soon as the event is durable; 4xx for what we refuse (kept in quarantine)."""
    limit = settings.FLASHFX_WEBHOOK_MAX_BODY_BYTES
    remote_addr = receiving.client_ip(request.META)
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return JsonResponse({"error": "bad Content-Length"}, status=400)
    try:
        if declared > limit:  # refused before reading it
            receipt = receiving.too_large(
                size=declared, headers=dict(request.headers), remote_addr=remote_addr
            )
        else:
            body = request.read(limit + 1)
            if len(body) > limit:
                receipt = receiving.too_large(
                    size=len(body), headers=dict(request.headers), remote_addr=remote_addr
                )
            else:
                receipt = receiving.receive(
                    body=body, headers=dict(request.headers), remote_addr=remote_addr
                )
    except DatabaseError:
        # Nothing is durable, so nothing is acknowledged: FlashFX retries (6 s, 60 s, 600 s).
        log.exception("webhook not stored: database unavailable")
        return JsonResponse({"error": "temporarily unavailable"}, status=503)
    return JsonResponse({"status": receipt.detail}, status=receipt.status_code)
