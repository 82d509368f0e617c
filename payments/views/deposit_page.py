"""Scaffolding for issue 10: replaced by the page's real views."""

from __future__ import annotations

from django.http import HttpResponse


def deposit_detail(request, *args, **kwargs):
    return HttpResponse("being built", status=501)


def deposit_reject(request, *args, **kwargs):
    return HttpResponse("being built", status=501)
