"""Scaffolding for issue 10: replaced by the page's real views."""

from __future__ import annotations

from django.http import HttpResponse


def approval_list(request, *args, **kwargs):
    return HttpResponse("being built", status=501)


def approval_decide(request, *args, **kwargs):
    return HttpResponse("being built", status=501)
