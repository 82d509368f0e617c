"""Scaffolding for issue 10: replaced by the page's real views."""

from __future__ import annotations

from django.http import HttpResponse


def deposit_queue(request, *args, **kwargs):
    return HttpResponse("being built", status=501)


def deposit_queue_new(request, *args, **kwargs):
    return HttpResponse("being built", status=501)


def deposits_accept(request, *args, **kwargs):
    return HttpResponse("being built", status=501)


def deposit_review(request, *args, **kwargs):
    return HttpResponse("being built", status=501)
