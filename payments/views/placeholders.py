"""Pages a later issue fills in: exports."""

from __future__ import annotations

from django.contrib.auth.decorators import permission_required
from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_safe

from backoffice.views import placeholder


@require_safe
@permission_required("backoffice.export_data", raise_exception=True)
def exports(request: HttpRequest) -> HttpResponse:
    return placeholder(
        request,
        "Exports",
        "CSV and XLSX exports of what you can see, each one recorded in the audit trail.",
    )
