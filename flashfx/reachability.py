"""Whether FlashFX's API answers at all, for the readiness check: one plain HTTP request, no
login, no GraphQL. Any HTTP answer (a GraphQL endpoint answers a GET with 4xx) is reachable;
a refused connection, a DNS failure or a timeout is not."""

from __future__ import annotations

import httpx


def unreachable(url: str, *, timeout: float) -> str:
    """ "" when something answered at `url`, else why not, in a few words."""
    try:
        httpx.get(url, timeout=timeout, follow_redirects=False)
    except httpx.TimeoutException:
        return f"no answer within {timeout:g} s"
    except httpx.HTTPError as exc:
        return type(exc).__name__
    return ""
