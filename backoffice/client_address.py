"""The client's address as our own proxies saw it (used by webhooks, sign-in limits and audit)."""

from __future__ import annotations

import ipaddress
from typing import Any


def client_ip(meta: dict[str, Any], *, trusted_proxies: int) -> str | None:
    """REMOTE_ADDR, or the address the outermost of `trusted_proxies` appended to
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
