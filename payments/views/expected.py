"""Scaffolding for issue 10: replaced by the page's real views."""

from __future__ import annotations

from django.http import HttpResponse


def expected_list(request, *args, **kwargs):
    return HttpResponse("being built", status=501)


def expected_upload(request, *args, **kwargs):
    return HttpResponse("being built", status=501)


def match_decide(request, *args, **kwargs):
    return HttpResponse("being built", status=501)
