"""Request helpers shared by every app: htmx fragments, list filters, safe return addresses,
and the client's address."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import Any

from django.http import HttpRequest
from django.utils.http import url_has_allowed_host_and_scheme


def is_fragment_request(request: HttpRequest) -> bool:
    """Swap requests get a partial; boosted navigation and history restores need the whole page.

    A view that switches on this must also say @vary_on_headers("HX-Request").
    """
    htmx = getattr(request, "htmx", None)  # set by django_htmx's HtmxMiddleware
    return bool(htmx) and not htmx.boosted and not htmx.history_restore_request


def filter_query(request: HttpRequest, keys: Iterable[str]) -> str:
    """This request's filters (the query's `keys` only: no cursor) as a query string, for the
    links and forms that must keep them (paging, exports, "back to the list")."""
    keep = set(keys)
    query = request.GET.copy()
    for key in list(query):
        if key not in keep:
            del query[key]
    return query.urlencode()


def safe_next(request: HttpRequest, fallback: str) -> str:
    """The form's `next` address when it is one of ours (never an open redirect), else fallback."""
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return fallback


def client_ip(meta: dict[str, Any], *, trusted_proxies: int) -> str | None:
    """The client's address as our own proxies saw it (webhooks, sign-in limits, audit):
    REMOTE_ADDR, or the address the outermost of `trusted_proxies` appended to
    X-Forwarded-For (addresses further left were written by the client and prove nothing).

    An IPv4-mapped IPv6 address (a dual-stack listener's "::ffff:52.64.185.170") is the IPv4
    address it carries; an IPv6 zone ("%eth0") is dropped, as PostgreSQL's inet cannot hold it.
    None when what is there is not an address.
    """
    address = meta.get("REMOTE_ADDR")
    if trusted_proxies:
        forwarded = [
            a.strip() for a in meta.get("HTTP_X_FORWARDED_FOR", "").split(",") if a.strip()
        ]
        if len(forwarded) >= trusted_proxies:
            address = forwarded[-trusted_proxies]
    try:
        ip = ipaddress.ip_address(address) if address else None
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address):
        ip = ip.ipv4_mapped or ipaddress.IPv6Address(ip.packed)
    return str(ip) if ip else None
