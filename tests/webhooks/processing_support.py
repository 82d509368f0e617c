"""What the webhook processing tests share: the sandbox's own webhooks stored as the receiver
would store them, the back-office's client pointed at the sandbox (or at nothing), and the
mirror compared with FlashFX's version of an entity.

A plain module beside the tests (pytest puts this folder on sys.path): `from processing_support
import ...`. Events are stored with the ORM, as verified and accepted: these tests are about
what happens after receipt (webhooks.processing), not about the receiver.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from decimal import Decimal
from typing import Any

from harness import (
    API_EMAIL,
    API_PASSWORD,
    close_app_client,
    loads,
    point_app_at,
    point_app_at_nothing,
)

from flashfx import types
from flashfx.client import FlashFXClient
from flashfx.tokens import MemoryTokenStore
from mirrors.registry import registry
from parties.models import SubClient
from payments.models import Deposit, Payment, Withdrawal
from webhooks.models import InboundEvent
from webhooks.processing import inbound_event_process

BSB_RECIPIENT = {
    "accountIdType": "BSB",
    "currency": "AUD",
    "bsb": "062000",
    "accountNo": "12345678",
    "firstName": "Mia",
    "lastName": "Ng",
}
GBP_RECIPIENT = {
    "accountIdType": "IBAN",
    "currency": "GBP",
    "iban": "GB29NWBK60161331926819",
    "firstName": "Oliver",
    "lastName": "Bennett",
}
SUB_CLIENT = {
    "firstName": "Ada",
    "lastName": "Lovelace",
    "dob": "1985-12-10",
    "externalId": "sc-ada",
    "address": {
        "street": "1 George St",
        "suburb": "Sydney",
        "state": "NSW",
        "postcode": "2000",
        "country": "AU",
    },
}
MIRRORS = {"deposit": Deposit, "withdrawal": Withdrawal, "payment": Payment, "subclient": SubClient}
SPECS = {
    "deposit": "deposits",
    "withdrawal": "withdrawals",
    "payment": "payments",
    "subclient": "subclients",
}
KEPT_HEADERS = ("content-type", "user-agent", "flashfx-request-id", "flashfx-signature")


def sandbox_client(sandbox) -> FlashFXClient:
    """The test's own client (not the app's): how the test reads FlashFX's truth."""
    return FlashFXClient(sandbox.url, API_EMAIL, API_PASSWORD, token_store=MemoryTokenStore())


def quick_logins(sandbox) -> None:
    """The test, the app and the fixture each log in; no need to wait a second in between."""
    sandbox.configure(login_interval_seconds=0)


def hold(sandbox) -> None:
    """Nothing moves by itself: only forced transitions change a status (and send webhooks)."""
    sandbox.configure(step_delay_seconds=3600, login_interval_seconds=0)


def force(sandbox, kind: str, entity_id: str, to: str, **details: Any) -> None:
    response = sandbox.advance(kind, entity_id, to, **details)
    assert response.status_code == 200, response.text


def fund(sandbox, amount: str = "500.00") -> None:
    """Money in the balance, also while the sandbox is held: a deposit forced to CONFIRMED."""
    deposit = sandbox.receive_deposit(amount)
    force(sandbox, "deposits", deposit["id"], "CONFIRMED")


# --- The back-office's own client -------------------------------------------------------------


@contextmanager
def app_pointed_at_sandbox(sandbox, settings) -> Iterator[Any]:
    """The back-office's own client (fetch-first) talks to the sandbox meanwhile.

    Test files wrap this in a fixture of their own (a fixture imported from here would shadow
    the import, which ruff rightly flags).
    """
    quick_logins(sandbox)
    point_app_at(settings, sandbox.url)
    try:
        yield sandbox
    finally:
        close_app_client()


# --- Events as the receiver stores them ----------------------------------------------------------


def store(received, *, request_id: str | None = None) -> InboundEvent:
    """One webhook the sandbox sent (a conftest `Received`), as a verified, accepted event."""
    return store_body(
        received.body,
        request_id=request_id or received.headers["flashfx-request-id"],
        headers={k: v for k, v in received.headers.items() if k in KEPT_HEADERS},
    )


def store_body(
    body: bytes, *, request_id: str, headers: dict | None = None, **fields: Any
) -> InboundEvent:
    payload = loads(body)
    try:
        scheduled = types.to_datetime(payload.get("eventScheduledAt"))
    except ValueError:  # kept in the body as received; the column stays empty
        scheduled = None
    row = {
        "accepted": True,
        "status": InboundEvent.Status.RECEIVED,
        "request_id": request_id,
        "event": payload["event"],
        "entity_id": str(payload["id"]),
        "event_scheduled_at": scheduled,
        "body": body,
        "body_sha256": hashlib.sha256(body).hexdigest(),
        "body_size": len(body),
        "headers": headers
        or {"content-type": "application/json", "flashfx-request-id": request_id},
    }
    return InboundEvent.objects.create(**(row | fields))


def signed_post(client, settings, body: bytes, request_id: str):
    """A delivery as FlashFX makes it, through the real endpoint (Django's test client), signed
    here with the app's secret (docs/flashfx.md §4.4), independently of the app's code."""
    mac = hmac.new(settings.FLASHFX_WEBHOOK_SECRET.encode(), body, hashlib.sha256).digest()
    return client.post(
        "/webhooks/flashfx/",
        data=body,
        content_type="application/json",
        headers={
            "user-agent": "FlashFX",
            "flashfx-request-id": request_id,
            "flashfx-signature": base64.b64encode(mac).decode(),
        },
    )


def process(events: list[InboundEvent]) -> list[str]:
    """Each event through the worker's service, in the order given; their outcomes."""
    return [inbound_event_process(event_id=e.pk) for e in events]


def regular(received: list) -> list:
    """The deliveries to the registered endpoint (not the ad hoc callbackUri ones)."""
    return [r for r in received if r.path == "/webhooks/flashfx/"]


# --- The mirror against FlashFX ---------------------------------------------------------------


def version_fields(kind: str, version: Any, at: datetime) -> dict[str, Any]:
    """FlashFX's version of an entity as mirror columns (all of them but `raw`)."""
    remote = registry.get(SPECS[kind]).remote_of(version, at)
    return {k: v for k, v in remote.fields.items() if k != "raw"}


def assert_mirror_matches(kind: str, version: Any) -> None:
    """Every column FlashFX's version feeds is equal in the mirror, and nothing is flagged."""
    row = MIRRORS[kind].objects.get(flashfx_id=version.id)
    expected = version_fields(kind, version, row.remote_changed_at)
    actual = {k: getattr(row, k) for k in expected}
    assert actual == expected
    assert row.anomaly == ""


def row_state(kind: str, flashfx_id: str) -> dict[str, Any]:
    """Everything stored for one entity, except the row's own id and creation time."""
    row = MIRRORS[kind].objects.filter(flashfx_id=flashfx_id).values().get()
    return {k: v for k, v in row.items() if k not in ("id", "created_at")}


# --- Dead letters -------------------------------------------------------------------------------


def dead_while_flashfx_was_down(sandbox, settings) -> tuple[Any, list[InboundEvent]]:
    """A real payout's three webhooks, received while FlashFX could not be reached: the entity
    had to be fetched first, every attempt failed, and the events are dead letters now.

    Returns FlashFX's final version of the payout and the events (oldest first). The app's
    client is pointed at nothing afterwards; point it at the sandbox to replay.
    """
    from webhooks.processing import inbound_event_dead

    hold(sandbox)
    fund(sandbox)
    client = sandbox_client(sandbox)
    reply = client.create_withdrawal(
        {"amount": Decimal("8.8"), "currency": "AUD", "recipient": BSB_RECIPIENT}
    )
    force(sandbox, "withdrawals", reply.id, "PENDING")
    force(sandbox, "withdrawals", reply.id, "CONFIRMED")
    received = sandbox.receiver.wait_for_events(
        reply.id, ["withdrawal_initiated", "withdrawal_pending", "withdrawal_completed"]
    )
    final = client.withdrawal(reply.id)
    client.close()
    events = [store(r) for r in received]
    point_app_at_nothing(settings)
    for event in events:
        try:
            inbound_event_process(event_id=event.pk)
        except Exception:  # FlashFX unreachable: what the task's last retry would see
            inbound_event_dead(event_id=event.pk)
    events = [InboundEvent.objects.get(pk=e.pk) for e in events]
    assert {e.status for e in events} == {InboundEvent.Status.DEAD}
    return final, events
