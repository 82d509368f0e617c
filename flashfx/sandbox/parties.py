"""Senders, recipients and sub-clients (docs/flashfx.md §3.4, §3.5, §3.9)."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models import Max

from . import machines, validation, wire
from .errors import BadUserInput, BusinessFailure
from .models import Recipient, Sender, SubClient

VAN_BSB = "802919"  # decision §5.41
VAN_FIRST_ACCOUNT = 1000001


def nick_name(data: dict) -> str:
    """First 10 characters of first+last name, or of the company name (§3.4, inferred)."""
    base = (
        data.get("companyName")
        or data.get("legalName")
        or f"{data.get('firstName') or ''}{data.get('lastName') or ''}"
    )
    return base[:10]


def display_name(data: dict) -> str:
    if data.get("companyName"):
        return data["companyName"]
    names = (data.get("firstName"), data.get("middleName"), data.get("lastName"))
    return " ".join(n for n in names if n)


def _filter(queryset, filters: dict, fields: dict[str, str], *, json_field: str = "data"):
    """Exact-match filters on the stored input; min/maxCreatedAt inclusive (decision §5.12)."""
    queryset = validation.created_between(queryset, filters)
    for name, value in filters.items():
        if value is None or name in ("minCreatedAt", "maxCreatedAt"):
            continue
        if name in fields:
            queryset = queryset.filter(**{fields[name]: value})
        else:
            queryset = queryset.filter(**{f"{json_field}__{name}": value})
    return queryset


# --- Senders --------------------------------------------------------------------------------


def sender_to_graphql(sender: Sender) -> dict[str, Any]:
    return {**sender.data, "id": sender.id, "createdAt": wire.timestamp(sender.created_at)}


def sender_inline(data: dict) -> dict[str, Any]:
    """An inline sender on a payout: reported, never stored, so its id is null (§3.3.2)."""
    return {**data, "id": None, "nickName": nick_name(data)}


def sender_create(data: dict) -> Sender:
    data = validation.sender("input", data)
    return Sender.objects.create(
        data={**data, "nickName": nick_name(data)}, external_id=data.get("externalId") or ""
    )


def sender_update(sender_id: Any, data: dict) -> Sender:
    """Only the fields given change; the merged sender must still be valid."""
    validation.object_id("id", sender_id)
    validation.strings("input", data)
    with transaction.atomic():
        sender = Sender.objects.filter(pk=sender_id).first()
        if sender is None:
            raise BusinessFailure("NOT_FOUND", f"Sender {sender_id} not found")
        stored = {k: v for k, v in sender.data.items() if k != "nickName"}
        merged = validation.sender(
            "input", {**stored, **{k: v for k, v in data.items() if v is not None}}
        )
        sender.data = {**merged, "nickName": nick_name(merged)}
        sender.external_id = merged.get("externalId") or ""
        sender.save()
    return sender


def sender_delete(sender_id: Any) -> Sender:
    validation.object_id("id", sender_id)
    sender = Sender.objects.filter(pk=sender_id).first()
    if sender is None:
        raise BusinessFailure("NOT_FOUND", f"Sender {sender_id} not found")
    sender.delete()
    sender.id = sender_id  # the reply still shows what was deleted
    return sender


def senders_list(filters: dict) -> list[Sender]:
    return list(_filter(Sender.objects.all(), filters, {"externalId": "external_id"}))


# --- Recipients -----------------------------------------------------------------------------


def recipient_data(field: str, data: dict) -> dict[str, Any]:
    """Validated input plus what FlashFX derives: nickName, displayName, country."""
    data = validation.recipient(field, data)
    country = (data.get("address") or {}).get("country")
    if country is None and data["accountIdType"] in ("BSB", "PAYID"):
        country = "AU"
    if country is None and data.get("iban"):
        country = data["iban"][:2]
    if country is None and data.get("bic"):
        country = data["bic"][4:6]  # a BIC's 5th and 6th letters are its country
    return {
        **data,
        "nickName": data.get("nickName") or nick_name(data),
        "displayName": display_name(data),
        "country": country,
    }


def recipient_to_graphql(recipient: Recipient) -> dict[str, Any]:
    return {**recipient.data, "id": recipient.id, "createdAt": wire.timestamp(recipient.created_at)}


def recipient_create(data: dict) -> Recipient:
    data = recipient_data("input", data)
    return Recipient.objects.create(
        data=data,
        account_id_type=data["accountIdType"],
        currency=data["currency"],
        external_id=data.get("externalId") or "",
    )


def recipient_update(recipient_id: Any, data: dict) -> Recipient:
    validation.object_id("id", recipient_id)
    with transaction.atomic():
        recipient = Recipient.objects.filter(pk=recipient_id).first()
        if recipient is None:
            raise BusinessFailure("NOT_FOUND", f"Recipient {recipient_id} not found")
        if data.get("accountIdType") not in (None, recipient.account_id_type):
            # Since 2024-02-05 (§3.5): an error, never a silent change.
            raise BadUserInput(
                "input.accountIdType", "cannot be changed; create a new recipient instead"
            )
        merged = {
            k: v
            for k, v in {**recipient.data, **data}.items()
            if k not in ("nickName", "displayName", "country")
        }
        if data.get("nickName"):
            merged["nickName"] = data["nickName"]
        merged = recipient_data("input", {k: v for k, v in merged.items() if v is not None})
        recipient.data = merged
        recipient.currency = merged["currency"]
        recipient.external_id = merged.get("externalId") or ""
        recipient.save()
    return recipient


def recipient_delete(recipient_id: Any) -> Recipient:
    validation.object_id("id", recipient_id)
    recipient = Recipient.objects.filter(pk=recipient_id).first()
    if recipient is None:
        raise BusinessFailure("NOT_FOUND", f"Recipient {recipient_id} not found")
    recipient.delete()
    recipient.id = recipient_id
    return recipient


def recipients_list(filters: dict) -> list[Recipient]:
    fields = {
        "externalId": "external_id",
        "currency": "currency",
        "accountIdType": "account_id_type",
    }
    return list(_filter(Recipient.objects.all(), filters, fields))


# --- Sub-clients ----------------------------------------------------------------------------


def sub_client_to_graphql(sub_client: SubClient) -> dict[str, Any]:
    data = sub_client.data
    return {
        "id": sub_client.id,
        "fullName": sub_client.full_name,
        "legalName": data.get("legalName"),
        "tradingAsName": data.get("tradingAsName"),
        "businessNumber": data.get("businessNumber"),
        "clientType": sub_client.client_type,
        "status": sub_client.status,
        "primaryContact": {
            k: data.get(k)
            for k in ("firstName", "middleName", "lastName", "email", "dob", "mobile")
        },
        "address": data.get("address"),
        "postalAddress": data.get("postalAddress"),
        "bsb": sub_client.bsb,
        "accountNo": sub_client.account_no,
        "externalId": sub_client.external_id or None,
        "createdAt": wire.timestamp(sub_client.created_at),
    }


def sub_client_create(data: dict) -> SubClient:
    """INITIATED, with its own BSB + VAN; the clock then activates it (§3.9.4)."""
    validation.strings("input", data)
    is_company = bool(data.get("legalName") and data.get("businessNumber"))  # §3.9.1
    for part in ("firstName", "middleName", "lastName"):
        validation.person_name(f"input.{part}", data.get(part), is_required=part != "middleName")
    for part in ("legalName", "tradingAsName"):
        validation.company_name(f"input.{part}", data.get(part))
    validation.email("input.email", data.get("email"))
    validation.dob("input.dob", data.get("dob"), max_age=65)
    validation.address("input.address", data.get("address"), full=True)
    validation.address("input.postalAddress", data.get("postalAddress"))
    validation.id_doc("input.idDoc", data.get("idDoc"))
    data = {**data, "mobile": validation.mobile("input.mobile", data.get("mobile"))}
    if is_company:
        full_name = data.get("tradingAsName") or data["legalName"]
    else:
        full_name = display_name({k: data.get(k) for k in ("firstName", "middleName", "lastName")})
    with transaction.atomic():
        last = SubClient.objects.aggregate(last=Max("account_no"))["last"]
        sub_client = SubClient.objects.create(
            data=data,
            status="INITIATED",
            client_type="COMPANY" if is_company else "INDIVIDUAL",
            full_name=full_name,
            bsb=VAN_BSB,
            account_no=str(int(last) + 1 if last else VAN_FIRST_ACCOUNT),
            external_id=data.get("externalId") or "",
        )
        machines.start(sub_client, ["ACTIVE"])
    return sub_client


def sub_clients_list(filters: dict) -> list[SubClient]:
    filters = dict(filters)
    country = (filters.pop("address", None) or {}).get("country")
    queryset = _filter(
        SubClient.objects.all(),
        filters,
        {"externalId": "external_id", "status": "status", "clientType": "client_type"},
    )
    if country:
        queryset = queryset.filter(data__address__country=country)
    return list(queryset)


def sub_client_get(sub_client_id: Any, field: str) -> SubClient | None:
    if sub_client_id is None:
        return None
    validation.object_id(field, sub_client_id)
    sub_client = SubClient.objects.filter(pk=sub_client_id).first()
    if sub_client is None:
        raise BadUserInput(field, f"no sub-client {sub_client_id}")
    return sub_client
