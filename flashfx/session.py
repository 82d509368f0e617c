"""Logging in to FlashFX and keeping the token fresh (docs/flashfx.md §1.2, §1.3).

One login serves every thread and every process that shares the TokenStore (flashfx/tokens.py):
a caller takes the store's login lock, re-reads the store (whoever held the lock may have just
logged in) and only then logs in. From this process at most one login per
`min_login_interval`, a 429 on login is waited out (its Retry-After) up to
`login_retry_after_limit` in total, and the token is renewed ahead of its `exp` and once more
when FlashFX answers UNAUTHENTICATED.
"""

from __future__ import annotations

import time
from typing import Any

from .call_log import ClientStats, log_call
from .error_mapping import Unauthenticated
from .errors import FlashFXAuthError, FlashFXError, FlashFXRejected, FlashFXUnavailable
from .operations import OPERATIONS, Operation
from .tokens import StoredToken, TokenLockTimeout, TokenStore
from .transport import Transport


class Session:
    """Sends operations with a valid token; thread-safe, one per client.

    Our session with FlashFX, i.e. its token; not one of gql's sessions (flashfx/transport.py)."""

    def __init__(
        self,
        transport: Transport,
        email: str,
        password: str,
        *,
        token_store: TokenStore,
        stats: ClientStats,
        min_login_interval: float,
        login_retry_after_limit: float,
        refresh_margin: float,
        refresh_fraction: float,
    ) -> None:
        self._transport = transport
        self._email = email
        self._password = password
        self._store = token_store
        self._stats = stats
        self._min_login_interval = min_login_interval
        self._login_retry_after_limit = login_retry_after_limit
        self._refresh_margin = refresh_margin
        self._refresh_fraction = refresh_fraction
        self._last_login_at: float | None = None  # time.monotonic(); written under login_lock

    def login(self, *, force: bool = False) -> StoredToken:
        """A valid token, logging in only when needed (or when `force`d)."""
        current = self._store.get() if force else None
        return self._valid_token(stale=current.token if current else None)

    def logout(self) -> None:
        """Revoke the current token at FlashFX and forget it."""
        current = self._store.get()
        if current is None:
            return
        started = time.monotonic()
        outcome = "ok"
        try:
            data = self._transport.send(
                OPERATIONS["Logout"], None, current.token, outcome_matters=False
            )
            reply = data.get("logout") or {}
            if not reply.get("success"):
                raise FlashFXRejected(
                    reply.get("message") or "logout refused",
                    operation="Logout",
                    code=reply.get("code") or "",
                )
        except Unauthenticated:
            outcome = "ok (token already invalid)"
        except FlashFXError as exc:
            outcome = f"{type(exc).__name__}:{exc.code}"
            raise
        finally:
            self._store.discard(current.token)
            log_call("Logout", started, 1, outcome)

    def send(self, operation: Operation, variables: dict[str, Any]) -> dict[str, Any]:
        """Send with a valid token; on UNAUTHENTICATED log in once more and send once more.

        Safe for mutations too: FlashFX checks the token before executing anything."""
        token = self._valid_token()
        try:
            return self._transport.send(operation, variables, token.token, outcome_matters=True)
        except Unauthenticated:
            self._store.discard(token.token)
        self._stats.count("relogins")
        token = self._valid_token(stale=token.token)
        try:
            return self._transport.send(operation, variables, token.token, outcome_matters=True)
        except Unauthenticated:
            self._store.discard(token.token)
            raise FlashFXAuthError(
                "FlashFX refused a freshly obtained token",
                operation=operation.name,
                code="UNAUTHENTICATED",
            ) from None

    def _usable(self, token: StoredToken | None, stale: str | None) -> bool:
        return (
            token is not None
            and token.token != stale
            and time.time()
            < token.refresh_at(max_margin=self._refresh_margin, fraction=self._refresh_fraction)
        )

    def _valid_token(self, *, stale: str | None = None) -> StoredToken:
        """The stored token while it is fresh; else one login, made under the store's lock.

        `stale` is a token FlashFX just refused: never hand it out again."""
        current = self._store.get()
        if self._usable(current, stale):
            return current  # type: ignore[return-value]
        try:
            with self._store.login_lock():
                # Whoever held the lock before us may have just logged in: reuse that token.
                current = self._store.get()
                if self._usable(current, stale):
                    return current  # type: ignore[return-value]
                try:
                    token = self._login()
                except FlashFXUnavailable:
                    # Renewing ahead of time failed; the old token still works until `exp`.
                    if (
                        current is not None
                        and current.token != stale
                        and time.time() < current.expires_at - 1
                    ):
                        return current
                    raise
                self._store.put(token)
                return token
        except TokenLockTimeout as exc:
            raise FlashFXUnavailable(
                str(exc), operation="Login", code="LOGIN_LOCK_TIMEOUT"
            ) from exc

    def _login(self) -> StoredToken:
        """One login (docs/flashfx.md §1.2), at most one per `min_login_interval` from this process;
        a 429 is waited out (its Retry-After) up to `login_retry_after_limit` in total."""
        login = OPERATIONS["Login"]
        variables = {"input": {"email": self._email, "password": self._password}}
        waited = 0.0
        while True:
            if self._last_login_at is not None:
                pause = self._last_login_at + self._min_login_interval - time.monotonic()
                if pause > 0:
                    time.sleep(pause)
            started = time.monotonic()
            try:
                try:
                    data = self._transport.send(login, variables, None, outcome_matters=False)
                finally:
                    # FlashFX stamps a login somewhere between our send and its answer: space
                    # the next one from the answer, or it may land inside FlashFX's second.
                    self._last_login_at = time.monotonic()
            except FlashFXUnavailable as exc:
                log_call("Login", started, 1, f"{type(exc).__name__}:{exc.code}")
                wait = exc.retry_after
                if exc.status_code != 429 or wait is None:
                    raise
                if waited + wait > self._login_retry_after_limit:
                    raise
                waited += wait
                self._stats.count("login_waits")
                time.sleep(wait)
                continue
            except Unauthenticated:  # not expected for login; treat as refused credentials
                log_call("Login", started, 1, "FlashFXAuthError:UNAUTHENTICATED")
                raise FlashFXAuthError(
                    "FlashFX refused the login", operation="Login", code="UNAUTHENTICATED"
                ) from None
            except FlashFXError as exc:
                log_call("Login", started, 1, f"{type(exc).__name__}:{exc.code}")
                raise
            reply = data.get("login") or {}
            if not reply.get("success") or not reply.get("token"):
                code = reply.get("code") or "LOGIN_FAILED"
                log_call("Login", started, 1, f"FlashFXAuthError:{code}")
                raise FlashFXAuthError(
                    reply.get("message") or "login refused", operation="Login", code=code
                )
            log_call("Login", started, 1, "ok")
            self._stats.count("logins")
            return StoredToken.from_jwt(reply["token"])
