"""POST /webhooks/flashfx/: the only door FlashFX's webhooks come through (docs/flashfx.md §4)."""

from __future__ import annotations

import logging

from django.conf import settings
from django.db import Error, transaction
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from backoffice import metrics

from . import receiving, tasks

log = logging.getLogger(__name__)


@csrf_exempt  # FlashFX signs its requests; it has no CSRF token
@require_POST
@transaction.non_atomic_requests  # one INSERT commits on its own; no request-wide transaction
def flashfx_webhook(request: HttpRequest) -> JsonResponse:
    """Answer 2xx as soon as the event is durable; 4xx for what we refuse (kept in quarantine)."""
    limit = settings.FLASHFX_WEBHOOK_MAX_BODY_BYTES
    remote_addr = receiving.client_ip(request.META)
    headers = dict(request.headers)
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        # Not a length (gunicorn refuses these itself; wsgiref passes them on). Django reads no
        # body then; the request is still recorded, with the header as sent, and refused below.
        declared = 0
    try:
        if declared > limit:  # refused before reading it
            receipt = receiving.too_large(size=declared, headers=headers, remote_addr=remote_addr)
        else:
            body = _read_body(request, limit + 1)
            if len(body) > limit:  # a body sent without Content-Length (chunked), read so far
                receipt = receiving.too_large(
                    size=len(body), headers=headers, remote_addr=remote_addr
                )
            else:
                receipt = receiving.receive(
                    body=body,
                    headers=headers,
                    remote_addr=remote_addr,
                    hand_off=lambda event_id: tasks.hand_off_with_answer(request, event_id),
                )
    except Error:  # DatabaseError, and InterfaceError for a connection that went away
        # Nothing is durable, so nothing is acknowledged: FlashFX retries (6 s, 60 s, 600 s).
        log.exception("webhook not stored: database unavailable")
        metrics.count_with_request(request, "webhook_receipts", "database_unavailable")
        return JsonResponse({"error": "temporarily unavailable"}, status=503)
    metrics.count_with_request(request, "webhook_receipts", str(receipt.detail))
    return JsonResponse({"status": receipt.detail}, status=receipt.status_code)


def _read_body(request: HttpRequest, size: int) -> bytes:
    """At most `size` bytes of the body.

    With a Content-Length, request.read() stops there (bytes after it are not this request's).
    Without one, Django reads nothing; a server that de-chunks and ends the input for us says so
    with `wsgi.input_terminated` (gunicorn, mod_wsgi), and then the input is read up to `size`.
    Otherwise (wsgiref, runserver) an unbounded read would wait for the client: the body is empty.
    """
    if not request.META.get("CONTENT_LENGTH") and request.META.get("wsgi.input_terminated"):
        stream = request.META["wsgi.input"]
        chunks, remaining = [], size
        while remaining > 0:
            chunk = stream.read(min(remaining, 64 * 1024))
            if not chunk:
                break
            chunks.append(chunk)
            remaining -= len(chunk)
        return b"".join(chunks)
    return request.read(size)
