"""The FlashFX client: the only code that calls FlashFX (over flashfx/transport.py).

    client = FlashFXClient(url, email, password, token_store=MemoryTokenStore(),
                           connect_timeout=5, read_timeout=30)
    withdrawal = client.create_withdrawal({"amount": Decimal("250.00"), "currency": "AUD", ...})

What it guarantees (API.md §1, §2):

* Money crosses the wire as exact JSON numbers and comes back as Decimal (no float anywhere);
  datetimes come back aware UTC; results are the dataclasses of flashfx/types.py.
* One login serves every thread and process (the TokenStore's lock), at most one login per
  second, the token renewed ahead of its `exp` and once more when FlashFX answers
  UNAUTHENTICATED.
* Errors are flashfx/errors.py's: FlashFXUnavailable (retryable), FlashFXRejected (FlashFX said
  no), FlashFXAuthError, OutcomeUnknown (a mutation may have taken effect). Queries are retried
  within a time budget; mutations never are, except after UNAUTHENTICATED (not executed).
* Each call is logged once at INFO: operation, duration, attempts and outcome. Never a token,
  a password or a request body.

No Django here: settings are passed in (backoffice/flashfx.py builds the process's client).
"""

from __future__ import annotations

import random
import time
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from . import types
from .call_log import ClientStats, log, log_call
from .error_mapping import Unauthenticated, check_reply
from .errors import FlashFXAuthError, FlashFXError, FlashFXRejected, FlashFXUnavailable
from .operations import OPERATIONS, Operation
from .tokens import StoredToken, TokenLockTimeout, TokenStore
from .transport import DEFAULT_USER_AGENT, Transport, to_wire


class FlashFXClient:
    """One per process (it is thread-safe); see the module docstring."""

    def __init__(
        self,
        api_url: str,
        email: str,
        password: str,
        *,
        token_store: TokenStore,
        connect_timeout: float = 5.0,
        read_timeout: float = 30.0,
        user_agent: str = DEFAULT_USER_AGENT,
        query_retry_budget_seconds: float = 15.0,
        backoff_base_seconds: float = 0.25,
        backoff_cap_seconds: float = 8.0,
        min_login_interval_seconds: float = 1.0,
        login_retry_after_limit_seconds: float = 60.0,
        refresh_margin_seconds: float = 300.0,
        refresh_margin_fraction: float = 0.1,
        max_idle_sessions: int = 8,
        http_options: dict[str, Any] | None = None,
    ) -> None:
        self.api_url = api_url
        self._email = email
        self._password = password
        self._store = token_store
        self.query_retry_budget = query_retry_budget_seconds
        self.backoff_base = backoff_base_seconds
        self.backoff_cap = backoff_cap_seconds
        self.min_login_interval = min_login_interval_seconds
        self.login_retry_after_limit = login_retry_after_limit_seconds
        self.refresh_margin = refresh_margin_seconds
        self.refresh_fraction = refresh_margin_fraction
        self.stats = ClientStats()
        self._transport = Transport(
            api_url,
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            user_agent=user_agent,
            max_idle_sessions=max_idle_sessions,
            http_options=http_options,
        )
        self._last_login_at: float | None = None  # time.monotonic(); written under login_lock

    # --- Lifecycle ----------------------------------------------------------------------------

    def close(self) -> None:
        """Close the HTTP connections (the token stays in the store for the next process)."""
        self._transport.close()

    def __enter__(self) -> FlashFXClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- Public API: authentication -----------------------------------------------------------

    def login(self, *, force: bool = False) -> StoredToken:
        """A valid token, logging in only when needed (or when `force`d)."""
        current = self._store.get() if force else None
        return self._valid_token(stale=current.token if current else None)

    def logout(self) -> None:
        """Revoke the current token at FlashFX and forget it (end of a long-running command).

        Other processes sharing the store will log in again on their next call."""
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

    # --- Public API: balances -----------------------------------------------------------------

    def balances(self, currencies: list[str] | None = None) -> list[types.Balance]:
        data = self._call("Balances", {"currencies": currencies})
        return [types.Balance.from_wire(row) for row in data["balances"] or []]

    def statement(
        self, from_date: date | datetime, currency: str = "AUD"
    ) -> list[types.StatementLine]:
        """One day of ledger lines from `from_date` (a date means 00:00 UTC that day)."""
        if not isinstance(from_date, datetime):
            from_date = datetime(from_date.year, from_date.month, from_date.day, tzinfo=UTC)
        variables = {"input": {"fromDate": from_date, "currency": currency}}
        reply = self._call("Statement", variables, envelope=True)["statement"]
        return [types.StatementLine.from_wire(row) for row in reply.get("rows") or []]

    # --- Public API: deposits -----------------------------------------------------------------

    def deposits(self, **filters: Any) -> list[types.Deposit]:
        """Filters are DepositQueryInput's fields, camelCase (e.g. minCreatedAt=datetime)."""
        return self._list("Deposits", types.Deposit, filters)

    def deposit(self, id: str) -> types.Deposit | None:
        return self._one("Deposit", types.Deposit, id)

    def refund_deposit(
        self, id: str, amount: Decimal | None = None, reason: str | None = None
    ) -> types.Deposit:
        refund = {k: v for k, v in (("amount", amount), ("reason", reason)) if v is not None}
        return self._mutate("RefundDeposit", "deposit", types.Deposit, {"id": id, "input": refund})

    # --- Public API: withdrawals --------------------------------------------------------------

    def withdrawals(self, **filters: Any) -> list[types.Withdrawal]:
        return self._list("Withdrawals", types.Withdrawal, filters)

    def withdrawal(self, id: str) -> types.Withdrawal | None:
        return self._one("Withdrawal", types.Withdrawal, id)

    def create_withdrawal(self, input: dict[str, Any]) -> types.Withdrawal:
        """CreateWithdrawalInput in FlashFX's camelCase, amounts as Decimal. Never retried:
        on OutcomeUnknown look it up by externalId or repeat it with the same idempotencyKey."""
        return self._mutate("CreateWithdrawal", "withdrawal", types.Withdrawal, {"input": input})

    # --- Public API: payments and quotes ------------------------------------------------------

    def payments(self, **filters: Any) -> list[types.Payment]:
        return self._list("Payments", types.Payment, filters)

    def payment(self, id: str) -> types.Payment | None:
        return self._one("Payment", types.Payment, id)

    def create_payment(self, input: dict[str, Any]) -> types.Payment:
        return self._mutate("CreatePayment", "payment", types.Payment, {"input": input})

    def quote(self, input: dict[str, Any]) -> types.Quote:
        data = self._call("Quote", {"input": input})
        if data["quote"] is None:
            raise FlashFXRejected("no quote for this input", operation="Quote", code="NO_QUOTE")
        return types.Quote.from_wire(data["quote"])

    # --- Public API: senders, recipients, sub-clients -----------------------------------------

    def senders(self, **filters: Any) -> list[types.Sender]:
        return self._list("Senders", types.Sender, filters)

    def sender(self, id: str) -> types.Sender | None:
        return self._one("Sender", types.Sender, id)

    def create_sender(self, input: dict[str, Any]) -> types.Sender:
        return self._mutate("CreateSender", "sender", types.Sender, {"input": input})

    def update_sender(self, id: str, input: dict[str, Any]) -> types.Sender:
        return self._mutate("UpdateSender", "sender", types.Sender, {"id": id, "input": input})

    def delete_sender(self, id: str) -> types.Sender:
        return self._mutate("DeleteSender", "sender", types.Sender, {"id": id})

    def recipients(self, **filters: Any) -> list[types.Recipient]:
        return self._list("Recipients", types.Recipient, filters)

    def recipient(self, id: str) -> types.Recipient | None:
        return self._one("Recipient", types.Recipient, id)

    def create_recipient(self, input: dict[str, Any]) -> types.Recipient:
        return self._mutate("CreateRecipient", "recipient", types.Recipient, {"input": input})

    def update_recipient(self, id: str, input: dict[str, Any]) -> types.Recipient:
        return self._mutate(
            "UpdateRecipient", "recipient", types.Recipient, {"id": id, "input": input}
        )

    def delete_recipient(self, id: str) -> types.Recipient:
        return self._mutate("DeleteRecipient", "recipient", types.Recipient, {"id": id})

    def sub_clients(self, **filters: Any) -> list[types.SubClient]:
        return self._list("SubClients", types.SubClient, filters)

    def sub_client(self, id: str) -> types.SubClient | None:
        return self._one("SubClient", types.SubClient, id)

    def create_sub_client(self, input: dict[str, Any]) -> types.SubClient:
        return self._mutate("CreateSubClient", "subClient", types.SubClient, {"input": input})

    # --- Shapes of calls ----------------------------------------------------------------------

    def _list(self, name: str, kind: Any, filters: dict[str, Any]) -> list[Any]:
        data = self._call(name, {"input": filters})
        return [kind.from_wire(row) for row in data[OPERATIONS[name].root_field] or []]

    def _one(self, name: str, kind: Any, id: str) -> Any:
        row = self._call(name, {"id": id})[OPERATIONS[name].root_field]
        return None if row is None else kind.from_wire(row)

    def _mutate(self, name: str, entity: str, kind: Any, variables: dict[str, Any]) -> Any:
        data = self._call(name, variables, envelope=True, entity=entity)
        return kind.from_wire(data[OPERATIONS[name].root_field][entity])

    # --- One call: retries, auth, logging -----------------------------------------------------

    def _call(
        self,
        name: str,
        variables: dict[str, Any],
        *,
        envelope: bool = False,
        entity: str | None = None,
    ) -> dict[str, Any]:
        """Run one operation: retries (queries), auth, error mapping, one log line.

        `envelope`: the root field is a `{success, code, message}` reply, checked here so that
        a business failure is logged as such; `entity`: the reply must carry it."""
        operation = OPERATIONS[name]
        variables = to_wire(variables)
        started = time.monotonic()
        deadline = started + self.query_retry_budget
        attempt = 0
        while True:
            attempt += 1
            try:
                data = self._authenticated(operation, variables)
                if envelope:
                    check_reply(operation, data[operation.root_field], entity)
            except FlashFXUnavailable as exc:
                # Queries only: a mutation that failed here may not be repeated by us (the
                # caller decides, with the same idempotencyKey); see flashfx/errors.py.
                delay = self._backoff(attempt, exc.retry_after)
                if operation.is_mutation or time.monotonic() + delay > deadline:
                    log_call(name, started, attempt, f"{type(exc).__name__}:{exc.code}")
                    raise
                log.info(
                    "flashfx %s attempt %d failed (%s); retrying in %.2f s",
                    name,
                    attempt,
                    exc.code,
                    delay,
                )
                self.stats.count("retries")
                time.sleep(delay)
            except FlashFXError as exc:
                log_call(name, started, attempt, f"{type(exc).__name__}:{exc.code}")
                raise
            else:
                log_call(name, started, attempt, "ok")
                return data

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        """Exponential backoff with full jitter; a Retry-After is honoured as a minimum."""
        jitter = random.uniform(0, min(self.backoff_cap, self.backoff_base * 2 ** (attempt - 1)))
        return max(retry_after or 0.0, jitter)

    def _authenticated(self, operation: Operation, variables: dict[str, Any]) -> dict[str, Any]:
        """Send with a valid token; on UNAUTHENTICATED log in once more and send once more.

        Safe for mutations too: FlashFX checks the token before executing anything."""
        token = self._valid_token()
        try:
            return self._transport.send(operation, variables, token.token, outcome_matters=True)
        except Unauthenticated:
            self._store.discard(token.token)
        self.stats.count("relogins")
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

    # --- Tokens -------------------------------------------------------------------------------

    def _usable(self, token: StoredToken | None, stale: str | None) -> bool:
        return (
            token is not None
            and token.token != stale
            and time.time()
            < token.refresh_at(max_margin=self.refresh_margin, fraction=self.refresh_fraction)
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
        """One login (API.md §1.2), at most one per `min_login_interval` from this process;
        a 429 is waited out (its Retry-After) up to `login_retry_after_limit` in total."""
        login = OPERATIONS["Login"]
        variables = {"input": {"email": self._email, "password": self._password}}
        waited = 0.0
        while True:
            if self._last_login_at is not None:
                pause = self._last_login_at + self.min_login_interval - time.monotonic()
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
                if waited + wait > self.login_retry_after_limit:
                    raise
                waited += wait
                self.stats.count("login_waits")
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
            self.stats.count("logins")
            return StoredToken.from_jwt(reply["token"])
