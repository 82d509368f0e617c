"""The FlashFX client: the only code that calls FlashFX (over flashfx/transport.py).

    client = FlashFXClient(url, email, password, token_store=MemoryTokenStore(),
                           connect_timeout=5, read_timeout=30)
    withdrawal = client.create_withdrawal({"amount": Decimal("250.00"), "currency": "AUD", ...})

What it guarantees (docs/flashfx.md §1, §2):

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

This module holds the operations; each job below them has its own module: transport.py (HTTP,
gql, the wire format), session.py (login, token renewal, logout), retry.py (the query retry
budget), error_mapping.py (answers and failures to flashfx.errors), call_log.py (the log line
and ClientStats).

No Django here: settings are passed in (mirrors/client.py builds the process's client).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from . import types
from .call_log import ClientStats
from .error_mapping import check_advisory_reply, check_reply
from .errors import FlashFXRejected
from .operations import OPERATIONS
from .retry import QueryRetries
from .session import Session
from .tokens import StoredToken, TokenStore
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
        self.stats = ClientStats()
        self._transport = Transport(
            api_url,
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            user_agent=user_agent,
            max_idle_sessions=max_idle_sessions,
            http_options=http_options,
        )
        self._session = Session(
            self._transport,
            email,
            password,
            token_store=token_store,
            stats=self.stats,
            min_login_interval=min_login_interval_seconds,
            login_retry_after_limit=login_retry_after_limit_seconds,
            refresh_margin=refresh_margin_seconds,
            refresh_fraction=refresh_margin_fraction,
        )
        self._retries = QueryRetries(
            budget=query_retry_budget_seconds,
            backoff_base=backoff_base_seconds,
            backoff_cap=backoff_cap_seconds,
        )

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
        return self._session.login(force=force)

    def logout(self) -> None:
        """Revoke the current token at FlashFX and forget it (end of a long-running command).

        Other processes sharing the store will log in again on their next call."""
        self._session.logout()

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

    # --- Public API: Confirmation of Payee -----------------------------------------------------

    def confirmation_of_payee(
        self, *, bsb: str, account_no: str, account_name: str
    ) -> types.CopResult:
        """Ask the recipient's bank whether `account_name` is the name on a BSB account
        (docs/flashfx.md §3.13.2). Advisory: the result never blocks a payout.

        Every code FlashFX answers is a CopResult, its two refusals (COP_API_DISABLED,
        COP_LIMIT_EXCEEDED, `success` False) included: they are outcomes to show, not errors of
        the call. What is not an answer raises as for every call (FlashFXUnavailable,
        FlashFXRejected for BAD_USER_INPUT, ...). A mutation, so never retried by us; after
        OutcomeUnknown asking again is safe (at worst a second check is billed)."""
        cop_input = {
            "accountIdType": "BSB",
            "bsb": bsb,
            "accountNo": account_no,
            "accountName": account_name,
        }
        data = self._call("ConfirmationOfPayee", {"input": cop_input}, envelope=True, advisory=True)
        return types.CopResult.from_wire(data["confirmationOfPayee"])

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
        advisory: bool = False,
    ) -> dict[str, Any]:
        """Run one operation: retries (queries), auth, error mapping, one log line.

        `envelope`: the root field is a `{success, code, message}` reply, checked here so that
        a business failure is logged as such; `entity`: the reply must carry it; `advisory`:
        a `success: false` reply is a result too, not FlashFXRejected."""
        operation = OPERATIONS[name]
        variables = to_wire(variables)

        def attempt() -> dict[str, Any]:
            data = self._session.send(operation, variables)
            if envelope and advisory:
                check_advisory_reply(operation, data[operation.root_field])
            elif envelope:
                check_reply(operation, data[operation.root_field], entity)
            return data

        return self._retries.run(operation, attempt, self.stats)
