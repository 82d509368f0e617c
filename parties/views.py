"""Staff pages for parties: senders, recipients and sub-clients (filled in by a later issue)."""

from __future__ import annotations

from django.contrib.auth.decorators import permission_required
from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_safe

from backoffice.views import placeholder


@require_safe
@permission_required("parties.view_sender", raise_exception=True)
def parties(request: HttpRequest) -> HttpResponse:
    return placeholder(
        request,
        "Parties",
        "Senders, recipients and sub-clients, mirrored from FlashFX, with their history.",
    )
