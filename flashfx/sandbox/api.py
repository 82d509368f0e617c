"""The GraphQL schema (flashfx/schema.graphql) bound to the sandbox's services.

Resolvers only translate: GraphQL arguments in, service call, reply dict out. Business failures
become `success: false` replies (docs/flashfx.md §2.6); input errors are raised as BAD_USER_INPUT.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from ariadne import MutationType, QueryType, load_schema_from_path, make_executable_schema
from django.db import transaction

from . import auth, cop, ledger, parties, transfers, validation, wire
from .errors import BadUserInput, BusinessFailure

SCHEMA_PATH = Path(__file__).resolve().parents[1] / "schema.graphql"
PUBLIC_FIELDS = {"login", "__schema", "__type", "__typename"}  # decision §5.8

query = QueryType()
mutation = MutationType()


def replying(entity: str | None, code: str, message: str | Callable[[Any], str]):
    """Wrap a mutation: its return value is the entity of a success reply, a BusinessFailure is a failure reply."""

    def decorate(service: Callable[..., Any]):
        def resolve(_obj: Any, info: Any, **kwargs: Any) -> dict[str, Any]:
            try:
                result = service(info, **kwargs)
            except BusinessFailure as failure:
                reply = {"success": False, "code": failure.code, "message": failure.message}
                return reply | ({entity: None} if entity else {})
            text = message(result) if callable(message) else message
            return {"success": True, "code": code, "message": text} | (
                {entity: result} if entity else {}
            )

        return resolve

    return decorate


# --- Authentication -------------------------------------------------------------------------


@mutation.field("login")
def resolve_login(_obj: Any, info: Any, input: dict) -> dict[str, Any] | None:
    try:
        token = auth.login(input["email"], input["password"], input.get("affiliation"))
    except auth.LoginThrottled:
        info.context["login_throttled"] = True  # the view answers HTTP 429 (decision §5.9)
        return None
    except BusinessFailure as failure:
        return {"success": False, "code": failure.code, "message": failure.message, "token": None}
    return {"success": True, "code": "SUCCESS", "message": "OK", "token": token}


@mutation.field("logout")
@replying(None, "SUCCESS", "Logged out")
def resolve_logout(info: Any) -> None:
    auth.logout(info.context["session"])


# --- Balances and statement -----------------------------------------------------------------


@query.field("balances")
def resolve_balances(
    _obj: Any, _info: Any, currencies: list[str] | None = None
) -> list[dict[str, Any]]:
    return [
        {"currency": b.currency, "cleared": b.cleared, "pending": b.pending}
        for b in ledger.balances(currencies)
    ]


@query.field("statement")
def resolve_statement(_obj: Any, _info: Any, input: dict) -> dict[str, Any]:
    start = validation.timestamp("input.fromDate", input["fromDate"])
    end = start + timedelta(days=1)
    currency = input.get("currency") or "AUD"
    rows = [
        {
            "id": line.id,
            "createdAt": wire.timestamp(line.created_at),
            "currency": line.currency,
            "type": line.kind,
            "description": line.description,
            "transactionId": line.transaction_id,
            "debit": line.debit,
            "credit": line.credit,
            "balance": line.balance_after,
        }
        for line in ledger.statement(currency, start, end)
    ]
    return {
        "success": True,
        "code": "GENERATED",
        "message": "Statement generated",
        "fromDate": wire.timestamp(start),
        "toDate": wire.timestamp(end),
        "rows": rows,
    }


# --- Deposits -------------------------------------------------------------------------------


@query.field("deposits")
def resolve_deposits(_obj: Any, _info: Any, input: dict | None = None) -> list[dict[str, Any]]:
    return [transfers.deposit_to_graphql(d) for d in transfers.deposits_list(input or {})]


@query.field("deposit")
def resolve_deposit(_obj: Any, _info: Any, id: Any = None) -> dict[str, Any] | None:
    deposit = transfers.deposit_get(id)
    return transfers.deposit_to_graphql(deposit) if deposit else None


@mutation.field("refundDeposit")
@replying("deposit", "REFUND_SENT", "Refund initiated successfully")
def resolve_refund_deposit(_info: Any, id: Any = None, input: dict | None = None) -> dict[str, Any]:
    return transfers.deposit_to_graphql(transfers.deposit_refund(id, input))


# --- Withdrawals ----------------------------------------------------------------------------


@query.field("withdrawals")
def resolve_withdrawals(_obj: Any, _info: Any, input: dict | None = None) -> list[dict[str, Any]]:
    return [transfers.withdrawal_to_graphql(w) for w in transfers.withdrawals_list(input or {})]


@query.field("withdrawal")
def resolve_withdrawal(_obj: Any, _info: Any, id: Any = None) -> dict[str, Any] | None:
    withdrawal = transfers.withdrawal_get(id)
    return transfers.withdrawal_to_graphql(withdrawal) if withdrawal else None


@mutation.field("createWithdrawal")
@replying("withdrawal", "SUCCESS", "Withdrawal was created")
def resolve_create_withdrawal(_info: Any, input: dict) -> dict[str, Any]:
    return transfers.withdrawal_to_graphql(transfers.withdrawal_create(input))


# --- Payments and quotes --------------------------------------------------------------------


@query.field("payments")
def resolve_payments(_obj: Any, _info: Any, input: dict | None = None) -> list[dict[str, Any]]:
    return [transfers.payment_to_graphql(p) for p in transfers.payments_list(input or {})]


@query.field("payment")
def resolve_payment(_obj: Any, _info: Any, id: Any = None) -> dict[str, Any] | None:
    payment = transfers.payment_get(id)
    return transfers.payment_to_graphql(payment) if payment else None


@mutation.field("createPayment")
@replying("payment", "SUCCESS", "Scheduled for immediate execution")
def resolve_create_payment(_info: Any, input: dict) -> dict[str, Any]:
    return transfers.payment_to_graphql(transfers.payment_create(input))


@query.field("quote")
def resolve_quote(_obj: Any, _info: Any, input: dict) -> dict[str, Any]:
    quote = transfers.quote_create(input)
    return transfers.quote_to_graphql(
        quote, tradeable=bool(input.get("tradeable") or input.get("tradable"))
    )


# --- Senders --------------------------------------------------------------------------------


@query.field("senders")
def resolve_senders(_obj: Any, _info: Any, input: dict) -> list[dict[str, Any]]:
    return [parties.sender_to_graphql(s) for s in parties.senders_list(input)]


@query.field("sender")
def resolve_sender(_obj: Any, _info: Any, id: Any = None) -> dict[str, Any] | None:
    validation.object_id("id", id)
    sender = parties.Sender.objects.filter(pk=id).first()
    return parties.sender_to_graphql(sender) if sender else None


@mutation.field("createSender")
@replying("sender", "CREATED", "New sender created")
def resolve_create_sender(_info: Any, input: dict) -> dict[str, Any]:
    return parties.sender_to_graphql(parties.sender_create(input))


@mutation.field("updateSender")
@replying("sender", "UPDATED", lambda sender: f"Sender {sender['id']} updated.")
def resolve_update_sender(_info: Any, input: dict, id: Any = None) -> dict[str, Any]:
    return parties.sender_to_graphql(parties.sender_update(id, input))


@mutation.field("deleteSender")
@replying("sender", "SUCCESS", "Sender deleted")
def resolve_delete_sender(_info: Any, id: Any = None) -> dict[str, Any]:
    return parties.sender_to_graphql(parties.sender_delete(id))


# --- Recipients -----------------------------------------------------------------------------


@query.field("recipients")
def resolve_recipients(_obj: Any, _info: Any, input: dict) -> list[dict[str, Any]]:
    return [parties.recipient_to_graphql(r) for r in parties.recipients_list(input)]


@query.field("recipient")
def resolve_recipient(_obj: Any, _info: Any, id: Any = None) -> dict[str, Any] | None:
    validation.object_id("id", id)
    recipient = parties.Recipient.objects.filter(pk=id).first()
    return parties.recipient_to_graphql(recipient) if recipient else None


@mutation.field("createRecipient")
@replying("recipient", "SUCCESS", "Recipient created")
def resolve_create_recipient(_info: Any, input: dict) -> dict[str, Any]:
    return parties.recipient_to_graphql(parties.recipient_create(input))


@mutation.field("updateRecipient")
@replying("recipient", "SUCCESS", "Recipient updated")
def resolve_update_recipient(_info: Any, input: dict, id: Any = None) -> dict[str, Any]:
    return parties.recipient_to_graphql(parties.recipient_update(id, input))


@mutation.field("deleteRecipient")
@replying("recipient", "SUCCESS", "Recipient deleted")
def resolve_delete_recipient(_info: Any, id: Any = None) -> dict[str, Any]:
    return parties.recipient_to_graphql(parties.recipient_delete(id))


# --- Sub-clients ----------------------------------------------------------------------------


@query.field("subClients")
def resolve_sub_clients(_obj: Any, _info: Any, input: dict | None = None) -> list[dict[str, Any]]:
    return [parties.sub_client_to_graphql(s) for s in parties.sub_clients_list(input or {})]


@query.field("subClient")
def resolve_sub_client(_obj: Any, _info: Any, id: Any = None) -> dict[str, Any] | None:
    validation.object_id("id", id)
    sub_client = parties.SubClient.objects.filter(pk=id).first()
    return parties.sub_client_to_graphql(sub_client) if sub_client else None


@mutation.field("createSubClient")
@replying("subClient", "SUBCLIENT_CREATED", "Sub-client was successfully created")
def resolve_create_sub_client(_info: Any, input: dict) -> dict[str, Any]:
    with transaction.atomic():
        return parties.sub_client_to_graphql(parties.sub_client_create(input))


# --- Confirmation of Payee -------------------------------------------------------------------


@mutation.field("confirmationOfPayee")
def resolve_confirmation_of_payee(_obj: Any, _info: Any, input: dict) -> dict[str, Any]:
    """Every outcome is a reply; the two refusals have success: false (§3.13.2, decision §5.46)."""
    answer = cop.check(input)
    return {
        "success": answer.success,
        "code": answer.code,
        "message": answer.message,
        "billable": answer.billable,
    }


schema = make_executable_schema(load_schema_from_path(str(SCHEMA_PATH)), query, mutation)

__all__ = ["PUBLIC_FIELDS", "SCHEMA_PATH", "BadUserInput", "schema"]
