"""Faults on demand (our test tooling, not part of FlashFX): what a flaky provider looks like.

http_500, html_502, rate_limit_429 and graphql_error answer before anything is executed, so
the request has no effect. slow waits, then executes and answers. commit_then_drop executes and
commits, then cuts the connection without an answer: the client cannot know what happened.
"""

from __future__ import annotations

import json
import random

from django.db import transaction
from django.http import HttpResponse

from . import conf
from .models import Setting

BAD_GATEWAY_PAGE = (
    "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    "<center><h1>502 Bad Gateway</h1></center>\r\n</body>\r\n</html>\r\n"
)


def pick(root_fields: set[str]) -> tuple[str | None, dict]:
    """The fault for this request, if any, counting it against the configured limit."""
    faults = conf.get_faults()
    if faults["operations"] and not set(faults["operations"]) & root_fields:
        return None, faults
    if faults["limit"] == 0:
        return None, faults
    roll, cumulative, chosen = random.random(), 0.0, None  # noqa: S311 (a fault mix, no secret)
    for mode in conf.FAULT_MODES:
        cumulative += faults[mode]
        if roll < cumulative:
            chosen = mode
            break
    if chosen and faults["limit"] is not None:
        with transaction.atomic():
            stored = Setting.objects.get(key=conf.FAULTS_KEY)
            if stored.value["limit"] == 0:  # a concurrent request took the last one
                return None, faults
            stored.value["limit"] -= 1
            stored.save(update_fields=["value"])
    return chosen, faults


def early_response(mode: str, faults: dict) -> HttpResponse | None:
    """The answer of the modes that answer instead of executing."""
    if mode == "http_500":
        return HttpResponse("Internal Server Error", status=500, content_type="text/plain")
    if mode == "html_502":
        return HttpResponse(BAD_GATEWAY_PAGE, status=502, content_type="text/html")
    if mode == "rate_limit_429":
        return rate_limited(int(faults["retry_after_seconds"]), "Retry after 1 min")
    if mode == "graphql_error":
        body = {
            "data": None,
            "errors": [
                {
                    "message": "Unexpected error value: internal failure",
                    "extensions": {"code": "INTERNAL_SERVER_ERROR"},
                }
            ],
        }
        return HttpResponse(json.dumps(body), content_type="application/json")
    return None


def rate_limited(retry_after: int, message: str) -> HttpResponse:
    """HTTP 429 exactly as documented (docs/flashfx.md §1.4)."""
    body = {
        "success": False,
        "code": "TOO_MANY_REQUESTS",
        "message": message,
        "retrySecs": retry_after,
    }
    response = HttpResponse(json.dumps(body), status=429, content_type="application/json")
    response["Retry-After"] = str(retry_after)
    return response
