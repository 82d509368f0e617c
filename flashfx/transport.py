"""HTTP to FlashFX: the only module that imports gql.

`Transport` POSTs one operation document and returns its `data`, or raises a flashfx.errors
exception (mapped in flashfx/error_mapping.py). It owns the process's one httpx.Client (keep-alive
pool, timeouts, User-Agent) and a small pool of gql sessions over it. Money goes out as exact
JSON numbers and comes back as Decimal, never float; `to_wire` prepares the variables.

Tokens and retries are not its business: flashfx/session.py adds the token, flashfx/retry.py
decides whether to try again.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from decimal import Decimal
from functools import partial
from typing import Any

import httpx
import simplejson  # type: ignore[import-untyped]  # no stubs published
from gql import Client, GraphQLRequest
from gql.transport.exceptions import (
    TransportClosed,
    TransportConnectionFailed,
    TransportProtocolError,
    TransportQueryError,
    TransportServerError,
)
from gql.transport.httpx import HTTPXTransport

from .call_log import log
from .error_mapping import (
    Unauthenticated,
    graphql_error,
    http_error,
    network_error,
    not_graphql,
)
from .errors import FlashFXError, FlashFXUnavailable
from .operations import Operation

# docs/flashfx.md §1.4: a descriptive agent; generic ones (curl, python-requests, ...) may be blocked.
DEFAULT_USER_AGENT = "flashfx-backoffice/0.1 (FlashFX back-office client)"


def to_wire(value: Any) -> Any:
    """A variable as FlashFX takes it: Decimal stays Decimal (an exact JSON number), datetimes
    become ISO-8601 UTC with Z and milliseconds (docs/flashfx.md §2.4), floats are refused."""
    if isinstance(value, float):
        raise TypeError("send amounts as Decimal, never float")
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"not a finite amount: {value}")
        return value
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value.isoformat()}: give it a timezone")
        return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, dict):
        return {key: to_wire(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [to_wire(item) for item in value]
    return value


class _Request(GraphQLRequest):
    """A gql request carrying the query text printed once at import (gql's own `payload`
    prints the document on every call)."""

    def __init__(self, operation: Operation, variables: dict[str, Any] | None) -> None:
        super().__init__(
            operation.document, variable_values=variables, operation_name=operation.name
        )
        self.text = operation.text

    @property
    def payload(self) -> dict[str, Any]:
        payload: dict[str, Any] = {"query": self.text, "operationName": self.operation_name}
        if self.variable_values is not None:
            payload["variables"] = self.variable_values
        return payload


class _HTTPXTransport(HTTPXTransport):
    """gql's HTTPXTransport over a shared httpx.Client, with two fixes.

    1. Decimal: HTTPXTransport hands the payload to httpx's `json=`, which encodes it with the
       standard json module; its `json_serialize` is only used for a debug log. We encode the
       body with `json_serialize` ourselves, so Decimals go out as exact JSON numbers.
    2. Secrets: gql logs request and response bodies at DEBUG; the login request holds the
       password and its answer the token. These overrides log nothing.
    """

    def __init__(self, http: httpx.Client, url: str, **kwargs: Any) -> None:
        super().__init__(url=url, **kwargs)
        self._http = http

    def connect(self) -> None:
        self.client = self._http

    def close(self) -> None:
        self.client = None  # the shared httpx.Client is closed by Transport.close()

    def _prepare_request(
        self,
        request: Any,
        *,
        extra_args: dict[str, Any] | None = None,
        upload_files: bool = False,
    ) -> dict[str, Any]:
        headers = {"content-type": "application/json"}
        args = dict(extra_args or {})
        headers.update(args.pop("headers", None) or {})
        body = self.json_serialize(request.payload)
        return {
            "content": body.encode() if isinstance(body, str) else body,
            "headers": headers,
            **args,
        }

    def _get_json_result(self, response: httpx.Response) -> Any:
        # Unlike gql's, keeps no `response_headers` on the transport (shared state) and logs
        # nothing.
        try:
            return self.json_deserialize(response.content)
        except Exception:
            self._raise_response_error(response, "Not a JSON answer")


class _Channel:
    """One gql Client + sync session. gql sessions are not thread-safe, so a channel is
    used by one thread at a time (Transport checks them out of a pool)."""

    def __init__(self, transport: _HTTPXTransport) -> None:
        self.gql = Client(transport=transport)  # no schema: no validation, no parse_result
        self.session = self.gql.connect_sync()

    def close(self) -> None:
        self.gql.close_sync()


class Transport:
    """POST operations to one FlashFX URL; thread-safe, one per client."""

    def __init__(
        self,
        api_url: str,
        *,
        connect_timeout: float,
        read_timeout: float,
        user_agent: str,
        max_idle_sessions: int,
        http_options: dict[str, Any] | None,
    ) -> None:
        self.api_url = api_url
        # One httpx.Client (one keep-alive pool) for the process: httpx documents it as
        # shareable between threads. `http_options` goes to httpx (e.g. event_hooks, verify).
        self._http = httpx.Client(
            timeout=httpx.Timeout(
                connect=connect_timeout, read=read_timeout, write=read_timeout, pool=connect_timeout
            ),
            headers={"user-agent": user_agent, "accept": "application/json"},
            follow_redirects=False,
            **(http_options or {}),
        )
        # Thread safety, decided by measuring: gql's sync session and transport keep
        # per-request state (e.g. `response_headers`) and are not thread-safe, so each call
        # checks a gql session out of a small pool and returns it afterwards; all of them share
        # the one httpx.Client above. Against the sandbox (2 cores), 10 threads x 50 `balances`
        # ran at the same rate either way (~150 calls/s, bound by the server), but with one
        # slow call (2 s) in flight, other calls waited up to 1983 ms behind a single locked
        # session and at most 159 ms with the pool. Unlike a session per thread, the pool does
        # not grow with threads that come and go (runserver, thread pools): it keeps at most
        # `max_idle_sessions` idle ones.
        self._idle: list[_Channel] = []
        self._pool_lock = threading.Lock()
        self._max_idle = max_idle_sessions
        self._closed = False

    def close(self) -> None:
        """Close the HTTP connections; a later `send` raises FlashFXUnavailable."""
        with self._pool_lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for channel in idle:
            channel.close()
        self._http.close()

    def send(
        self,
        operation: Operation,
        variables: dict[str, Any] | None,
        token: str | None,
        *,
        outcome_matters: bool,
    ) -> dict[str, Any]:
        """POST one operation; gql's and httpx's exceptions become flashfx.errors ones, and
        UNAUTHENTICATED becomes error_mapping.Unauthenticated (for the session to handle).

        `outcome_matters`: a mutation whose effect we must not guess (not login/logout). For
        those, a failure after the request may have reached FlashFX is OutcomeUnknown."""
        unsafe = outcome_matters and operation.is_mutation
        name = operation.name
        extra = {"headers": {"authorization": f"Bearer {token}"}} if token else None
        with self._channel() as channel:
            try:
                return channel.session.execute(_Request(operation, variables), extra_args=extra)
            except TransportQueryError as exc:
                if unsafe and isinstance(exc.data, dict) and exc.data.get(operation.root_field):
                    # It executed; an error on a nested field must not hide that.
                    log.warning("flashfx %s: executed with field errors: %s", name, exc.errors)
                    return exc.data
                raise graphql_error(name, exc.errors, str(exc)) from None
            except TransportServerError as exc:
                response = getattr(exc.__cause__, "response", None)
                raise http_error(name, exc.code or 0, response, unsafe) from None
            except TransportProtocolError as exc:
                raise not_graphql(name, str(exc)) from None
            except TransportConnectionFailed as exc:
                raise network_error(name, exc.__cause__, unsafe) from None
            except TransportClosed as exc:  # should not happen: our transport is always open
                raise FlashFXUnavailable(str(exc), operation=name, code="CLIENT_CLOSED") from None

    @contextmanager
    def _channel(self) -> Iterator[_Channel]:
        with self._pool_lock:
            if self._closed:
                raise FlashFXUnavailable("the FlashFX client is closed", code="CLIENT_CLOSED")
            channel = self._idle.pop() if self._idle else None
        if channel is None:
            channel = _Channel(
                _HTTPXTransport(
                    self._http,
                    self.api_url,
                    json_serialize=partial(simplejson.dumps, use_decimal=True),
                    json_deserialize=partial(json.loads, parse_float=Decimal),
                )
            )
        keep = True
        try:
            yield channel
        except (FlashFXError, Unauthenticated):
            raise  # an answer (or its absence) about this request: the session is fine
        except BaseException:
            keep = False  # something unexpected: don't reuse this session
            raise
        finally:
            with self._pool_lock:
                if keep and not self._closed and len(self._idle) < self._max_idle:
                    self._idle.append(channel)
                    channel = None
            if channel is not None:
                channel.close()
