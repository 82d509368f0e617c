"""From what FlashFX answered, or failed to answer, to the classes of flashfx/errors.py.

Follows docs/flashfx.md §1.4 and §2.6. Nothing here knows gql: flashfx/transport.py catches gql's and
httpx's exceptions and passes on what they carry (GraphQL errors, an HTTP status and response,
the network error), and the client checks `{success, code, message}` replies with
`check_reply`. The other functions return the exception for their caller to raise.
"""

from __future__ import annotations

import json
import time
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from .errors import FlashFXAuthError, FlashFXRejected, FlashFXUnavailable, OutcomeUnknown
from .operations import Operation

# GraphQL error codes (extensions.code) that mean "try again later" (docs/flashfx.md §2.6, sandbox).
RETRYABLE_CODES = {"TOO_MANY_REQUESTS", "INTERNAL_SERVER_ERROR"}
# Network failures that happen before a byte of the request can have reached FlashFX.
NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.UnsupportedProtocol)


class Unauthenticated(Exception):
    """FlashFX refused the token (UNAUTHENTICATED): the request was not executed.

    Never leaves flashfx/: the session logs in again, or raises FlashFXAuthError."""


def graphql_error(name: str, errors: list[Any] | None, fallback: str) -> Exception:
    """Top-level GraphQL errors (each with extensions.code); `fallback` is the message when
    they carry none."""
    errors = [e for e in errors or [] if isinstance(e, dict)]
    codes = [(e.get("extensions") or {}).get("code") for e in errors]
    message = "; ".join(str(e.get("message")) for e in errors) or fallback
    if "UNAUTHENTICATED" in codes:
        return Unauthenticated(message)
    if retryable := [c for c in codes if c in RETRYABLE_CODES]:
        return FlashFXUnavailable(message, operation=name, code=retryable[0])
    if "BAD_USER_INPUT" in codes:
        first = errors[codes.index("BAD_USER_INPUT")]
        return FlashFXRejected(
            str(first.get("message")),
            operation=name,
            code="BAD_USER_INPUT",
            field=(first.get("extensions") or {}).get("field"),
        )
    # Anything else (GRAPHQL_VALIDATION_FAILED, an unknown code): the same request would get
    # the same answer.
    return FlashFXRejected(
        message, operation=name, code=next((c for c in codes if c), "GRAPHQL_ERROR")
    )


def http_error(name: str, status: int, response: httpx.Response | None, unsafe: bool) -> Exception:
    """An HTTP error status. `unsafe`: a mutation whose effect we must not guess."""
    retry_after = parse_retry_after(response)
    message = f"HTTP {status} from FlashFX"
    if status == 429:  # rate limited (docs/flashfx.md §1.4): nothing was executed
        return FlashFXUnavailable(
            message,
            operation=name,
            code="TOO_MANY_REQUESTS",
            retry_after=retry_after,
            status_code=status,
        )
    if status == 401:
        return Unauthenticated(message)
    if status == 403:  # a firewall (User-Agent, IP allow-list), not our token
        return FlashFXAuthError(f"{message} (forbidden)", operation=name, code="HTTP_403")
    if status == 504 and unsafe:
        # A gateway gave up waiting for FlashFX, which may still have executed it.
        return OutcomeUnknown(message, operation=name, code="HTTP_504")
    if status >= 500:
        return FlashFXUnavailable(
            message,
            operation=name,
            code=f"HTTP_{status}",
            retry_after=retry_after,
            status_code=status,
        )
    return FlashFXRejected(message, operation=name, code=f"HTTP_{status}")


def network_error(name: str, cause: BaseException | None, unsafe: bool) -> Exception:
    """No answer: the connection failed, timed out or was dropped."""
    kind = type(cause).__name__ if cause is not None else "TransportError"
    code = {
        "ConnectError": "CONNECT_ERROR",
        "ConnectTimeout": "CONNECT_TIMEOUT",
        "PoolTimeout": "POOL_TIMEOUT",
        "ReadTimeout": "READ_TIMEOUT",
        "WriteTimeout": "WRITE_TIMEOUT",
        "RemoteProtocolError": "CONNECTION_CLOSED",
        "ReadError": "READ_ERROR",
        "WriteError": "WRITE_ERROR",
    }.get(kind, kind.upper())
    message = f"{kind} talking to FlashFX: {cause}"
    if isinstance(cause, NOT_SENT) or not unsafe:
        return FlashFXUnavailable(message, operation=name, code=code)
    # The request may have been (partly) sent and executed: only a look-up can tell.
    return OutcomeUnknown(message, operation=name, code=code)


def not_graphql(name: str, detail: str) -> FlashFXUnavailable:
    """2xx/3xx but not a GraphQL answer (HTML from a proxy, empty body...)."""
    return FlashFXUnavailable(_excerpt(detail), operation=name, code="NOT_GRAPHQL")


def check_reply(operation: Operation, reply: Any, entity: str | None) -> None:
    """A `{success, code, message, <entity>}` reply (docs/flashfx.md §2.6): business failures
    arrive as data and become FlashFXRejected; `entity`: the reply must carry it."""
    name = operation.name
    _require_reply(operation, reply)
    if not reply.get("success"):
        raise FlashFXRejected(
            reply.get("message") or f"{name} failed",
            operation=name,
            code=reply.get("code") or "",
        )
    if entity is not None and reply.get(entity) is None:
        raise OutcomeUnknown(
            f"{name} succeeded without a {entity} in the reply",
            operation=name,
            code="NO_ENTITY",
        )


def check_advisory_reply(operation: Operation, reply: Any) -> None:
    """A `{success, code, message, ...}` reply whose every code is an outcome to record, the
    refusals included (Confirmation of Payee, docs/flashfx.md §3.13.2): only no reply at all
    is an error."""
    _require_reply(operation, reply)


def _require_reply(operation: Operation, reply: Any) -> None:
    if reply is None:  # no answer to a mutation: we cannot tell what FlashFX did
        kind = OutcomeUnknown if operation.is_mutation else FlashFXUnavailable
        name = operation.name
        raise kind(f"{name}: empty reply", operation=name, code="EMPTY_REPLY")


def parse_retry_after(response: httpx.Response | None) -> float | None:
    """Retry-After as seconds (delta-seconds or an HTTP date), else the body's `retrySecs`."""
    if response is None:
        return None
    header = response.headers.get("retry-after")
    if header:
        try:
            return max(0.0, float(header))
        except ValueError:
            try:
                return max(0.0, parsedate_to_datetime(header).timestamp() - time.time())
            except (TypeError, ValueError):
                pass
    try:
        seconds = json.loads(response.content).get("retrySecs")
        return max(0.0, float(seconds)) if seconds is not None else None
    except (ValueError, AttributeError, TypeError):
        return None


def _excerpt(text: str, limit: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit] + "..."
