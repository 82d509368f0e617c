"""backoffice.http.is_fragment_request: which htmx requests get a partial."""

from __future__ import annotations

import pytest
from django.test import RequestFactory
from django_htmx.middleware import HtmxDetails

from backoffice.http import is_fragment_request

HX = {"HX-Request": "true"}


def request_with(headers: dict[str, str]):
    request = RequestFactory().get("/audit/", headers=headers)
    request.htmx = HtmxDetails(request)
    return request


@pytest.mark.parametrize(
    ("headers", "fragment"),
    [
        ({}, False),  # a plain page load, or no JavaScript
        (HX, True),  # a swap (hx-get on the filter form)
        ({**HX, "HX-Boosted": "true"}, False),  # the hx-boost'ed navigation
        ({**HX, "HX-History-Restore-Request": "true"}, False),  # Back, with no cached page
    ],
)
def test_only_a_swap_gets_a_fragment(headers, fragment):
    assert is_fragment_request(request_with(headers)) is fragment


def test_a_request_without_the_htmx_middleware_gets_the_whole_page():
    assert is_fragment_request(RequestFactory().get("/audit/")) is False
