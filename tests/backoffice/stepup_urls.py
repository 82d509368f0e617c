"""Test-only URLconf: the app's own URLs plus a money action behind step_up_required."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.urls import path

import backoffice.urls
from backoffice.stepup import step_up_required

MONEY_MOVED = b"money moved"


@step_up_required
def move_money(request: HttpRequest) -> HttpResponse:
    return HttpResponse(MONEY_MOVED)


urlpatterns = [
    path("test/money/", move_money, name="test-money"),
    *backoffice.urls.urlpatterns,
]
