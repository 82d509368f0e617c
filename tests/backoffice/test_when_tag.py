"""{% when %}: local time shown, UTC kept in the title and the datetime attribute."""

from __future__ import annotations

from datetime import UTC, datetime

from django.template import engines
from django.utils import timezone


def render(at) -> str:
    return engines["django"].from_string("{% load times %}{% when at %}").render({"at": at})


def test_a_moment_shows_local_time_and_keeps_utc():
    at = datetime(2026, 12, 4, 22, 30, 15, tzinfo=UTC)
    with timezone.override("Australia/Sydney"):
        html = render(at)
    assert html == (
        '<time datetime="2026-12-04T22:30:15+00:00" title="2026-12-04 22:30:15 UTC">'
        "2026-12-05 09:30</time>"
    )


def test_nothing_is_a_dash():
    assert render(None) == "—"
