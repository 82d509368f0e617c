"""Our exportable lists: each reads its filters as its page does and selects its rows with
the page's own selector, so an export holds exactly the rows the page shows, in its order.

The deposit queue, payouts, international payments, recipients, senders and the audit trail.
"""

from __future__ import annotations

from typing import Any

from django.db.models.functions import Coalesce
from django.http import QueryDict

from backoffice import selectors as audit_selectors
from parties import selectors as parties
from parties.forms.parties import SearchForm

from ..forms.deposits import DepositQueueForm
from ..selectors import deposits, payment_orders, payouts
from .formatting import BOOL, DATETIME, IP, JSON, MONEY, TEXT
from .registry import Column, ExportError, ExportList, register


def _form_errors(form: Any) -> str:
    return "; ".join(
        f"{form.fields[f].label if f in form.fields else 'Filters'}: {' '.join(errors)}"
        for f, errors in form.errors.items()
    )


# --- Deposits (the queue at /deposits/) -------------------------------------------------------


def _deposit_filters(query: QueryDict, user: Any) -> dict[str, Any]:
    form = DepositQueueForm(query)
    if not form.is_valid():
        raise ExportError(f"The filters are not valid: {_form_errors(form)}")
    # The form's own values, as the page would use them ("me" stays "me": the member's id is
    # added when the rows are read, so a job reads the same rows).
    return {k: query.get(k, "") for k in form.fields if query.get(k, "")}


def _deposit_rows(filters: dict[str, Any], user: Any) -> Any:
    query = QueryDict(mutable=True)
    query.update(filters)
    form = DepositQueueForm(query)
    if not form.is_valid():
        raise ExportError(f"The filters are not valid: {_form_errors(form)}")
    return deposits.deposit_queue_rows(form.filters(user_id=user.pk))


DEPOSITS = register(
    ExportList(
        name="deposits",
        title="Deposits",
        permission="payments.view_deposit",
        url_name="payments:deposits",
        filters=_deposit_filters,
        rows=_deposit_rows,
        columns=(
            Column("flashfx_id", "FlashFX id", "flashfx_id", TEXT),
            Column("received", "Received", Coalesce("flashfx_created_at", "created_at"), DATETIME),
            Column("amount", "Amount", "amount", MONEY),
            Column("currency", "Currency", "currency", TEXT),
            Column("status", "FlashFX status", "flashfx_status", TEXT),
            Column("review", "Review", "review_state", TEXT),
            Column("payer", "Payer name", "sender_account_name", TEXT),
            Column("payer_bsb", "Payer BSB", "sender_bsb", TEXT),
            Column("payer_account", "Payer account", "sender_account_no", TEXT, sensitive=True),
            Column("reference", "Reference", "external_reference", TEXT),
            Column("sub_client", "Sub-client", "sub_client__full_name", TEXT),
            Column("assignee", "Assignee", "assignee__username", TEXT),
            Column("third_party", "Third party", "third_party", BOOL),
            Column("cleared", "Cleared", "cleared_at", DATETIME, default=False),
            Column("fee", "Total fee", "total_fee", MONEY, default=False),
            Column("external_id", "External id", "external_id", TEXT, default=False),
        ),
    )
)


# --- Payouts (/payouts/) ----------------------------------------------------------------------


def _payout_filters(query: QueryDict, user: Any) -> dict[str, Any]:
    return {k: v for k, v in payouts.payout_list_filters(query).items() if v}


PAYOUTS = register(
    ExportList(
        name="payouts",
        title="Payouts",
        permission="payments.view_withdrawal",
        url_name="payments:payouts",
        filters=_payout_filters,
        rows=lambda filters, user: payouts.payouts_filtered(**filters),
        columns=(
            Column("code", "Code", "code", TEXT),
            Column("started", "Started", "created_at", DATETIME),
            Column("recipient", "Recipient", "recipient__display_name", TEXT),
            Column("recipient_bsb", "Recipient BSB", "recipient__bsb", TEXT),
            Column(
                "recipient_account",
                "Recipient account",
                "recipient__account_no",
                TEXT,
                sensitive=True,
            ),
            Column("amount", "Amount", "amount", MONEY),
            Column("currency", "Currency", "currency", TEXT),
            Column("reference", "Reference", "reference", TEXT),
            Column("reason", "Reason", "reason", TEXT),
            Column("state", "Our state", "state", TEXT),
            Column("status", "FlashFX status", "withdrawal__flashfx_status", TEXT),
            Column("flashfx_id", "FlashFX id", "withdrawal__flashfx_id", TEXT, default=False),
            Column("maker", "Maker", "maker__username", TEXT),
        ),
    )
)


# --- International payments (/payments/) ------------------------------------------------------


def _payment_filters(query: QueryDict, user: Any) -> dict[str, Any]:
    return {k: v for k, v in payment_orders.payment_order_list_filters(query).items() if v}


PAYMENTS = register(
    ExportList(
        name="payments",
        title="International payments",
        permission="payments.view_payment",
        url_name="payments:payments",
        filters=_payment_filters,
        rows=lambda filters, user: payment_orders.payment_orders_filtered(**filters),
        columns=(
            Column("code", "Code", "code", TEXT),
            Column("started", "Started", "created_at", DATETIME),
            Column("recipient", "Recipient", "recipient__display_name", TEXT),
            Column(
                "recipient_account",
                "Recipient account",
                "recipient__account_no",
                TEXT,
                sensitive=True,
            ),
            Column("recipient_iban", "Recipient IBAN", "recipient__iban", TEXT, sensitive=True),
            Column("size", "Amount", "size", MONEY),
            Column("size_currency", "Amount currency", "size_currency", TEXT),
            Column("from_currency", "From currency", "from_currency", TEXT),
            Column("to_currency", "To currency", "to_currency", TEXT),
            Column("rate", "Quoted rate", "quoted_rate", MONEY, decimals=8),
            Column("fee", "Quoted fee (from currency)", "quoted_fee", MONEY),
            Column("from_amount", "Quoted from amount", "quoted_from_amount", MONEY),
            Column("to_amount", "Quoted to amount", "quoted_to_amount", MONEY),
            Column("reference", "Reference", "reference", TEXT),
            Column("reason", "Reason", "reason", TEXT),
            Column("state", "Our state", "state", TEXT),
            Column("maker", "Maker", "created_by__username", TEXT),
        ),
    )
)


# --- Recipients and senders (/parties/...) ----------------------------------------------------


def _search_filters(query: QueryDict, user: Any) -> dict[str, Any]:
    form = SearchForm(query)
    if not form.is_valid():
        raise ExportError(f"The search is not valid: {_form_errors(form)}")
    q = form.cleaned_data.get("q", "")
    return {"q": q} if q else {}


RECIPIENTS = register(
    ExportList(
        name="recipients",
        title="Recipients",
        permission="parties.view_recipient",
        url_name="parties:recipients",
        filters=_search_filters,
        rows=lambda filters, user: parties.newest_first(parties.recipients_filtered(**filters)),
        columns=(
            Column("flashfx_id", "FlashFX id", "flashfx_id", TEXT),
            Column("seen", "Created", Coalesce("flashfx_created_at", "created_at"), DATETIME),
            Column("name", "Name", "display_name", TEXT),
            Column("nick_name", "Nickname", "nick_name", TEXT, default=False),
            Column("type", "Account type", "account_id_type", TEXT),
            Column("currency", "Currency", "currency", TEXT),
            Column("country", "Country", "country", TEXT),
            Column("bsb", "BSB", "bsb", TEXT),
            Column("account", "Account", "account_no", TEXT, sensitive=True),
            Column("payid", "PayID", "payid", TEXT, sensitive=True),
            Column("iban", "IBAN", "iban", TEXT, sensitive=True),
            Column("bic", "BIC", "bic", TEXT),
            Column("email", "Email", "email", TEXT, default=False),
            Column("external_id", "External id", "external_id", TEXT, default=False),
        ),
    )
)

SENDERS = register(
    ExportList(
        name="senders",
        title="Senders",
        permission="parties.view_sender",
        url_name="parties:senders",
        filters=_search_filters,
        rows=lambda filters, user: parties.newest_first(parties.senders_filtered(**filters)),
        columns=(
            Column("flashfx_id", "FlashFX id", "flashfx_id", TEXT),
            Column("seen", "Created", Coalesce("flashfx_created_at", "created_at"), DATETIME),
            Column("nick_name", "Nickname", "nick_name", TEXT),
            Column("first_name", "First name", "first_name", TEXT),
            Column("middle_name", "Middle name", "middle_name", TEXT, default=False),
            Column("last_name", "Last name", "last_name", TEXT),
            Column("company", "Company", "company_name", TEXT),
            Column("email", "Email", "email", TEXT),
            Column("country", "Country", "country", TEXT),
            Column("external_id", "External id", "external_id", TEXT, default=False),
        ),
    )
)


# --- The audit trail (/audit/) ----------------------------------------------------------------


def _audit_filters(query: QueryDict, user: Any) -> dict[str, Any]:
    found = {k: query.get(k, "").strip() for k in ("action", "actor")}
    return {k: v for k, v in found.items() if v}


AUDIT = register(
    ExportList(
        name="audit",
        title="Audit trail",
        permission="backoffice.view_auditevent",
        url_name="audit-trail",
        filters=_audit_filters,
        rows=lambda filters, user: audit_selectors.audit_events_filtered(**filters),
        columns=(
            Column("id", "Event", "id", "number"),
            Column("at", "When", "occurred_at", DATETIME),
            Column("actor", "Who", "actor", TEXT),
            Column("action", "Action", "action", TEXT),
            Column("object_type", "Object type", "object_type", TEXT),
            Column("object_id", "Object id", "object_id", TEXT),
            Column("object", "Object", "object_repr", TEXT),
            Column("details", "Details", "details", JSON),
            Column("address", "Address", "remote_addr", IP),
            Column("before", "Before", "before", JSON, default=False),
            Column("after", "After", "after", JSON, default=False),
        ),
    )
)
