"""What the parties tests share: the back-office's own client pointed at the test sandbox,
and the inputs of a few parties.

A plain module beside the tests (pytest puts this folder on sys.path):
`from parties_support import ...`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from harness import close_app_client

# Our form fields (snake_case) for an Australian BSB recipient, as a member types them.
BSB_RECIPIENT = {
    "first_name": "Mia",
    "last_name": "Ng",
    "email": "mia@example.com",
    "currency": "AUD",
    "bsb": "062000",
    "account_no": "12345678",
}
SENDER = {"company_name": "Harbour Imports Pty Ltd", "email": "ops@harbour.example"}
SUB_CLIENT = {
    "first_name": "Ada",
    "last_name": "Lovelace",
    "street": "1 George St",
    "suburb": "Sydney",
    "state": "NSW",
    "postcode": "2000",
    "country": "AU",
}


@contextmanager
def app_at(sandbox, settings) -> Iterator[Any]:
    """The back-office's client talks to the sandbox; logins need no pause."""
    sandbox.configure(login_interval_seconds=0)
    close_app_client()
    settings.FLASHFX_API_URL = sandbox.url
    try:
        yield sandbox
    finally:
        close_app_client()


def sandbox_recipient(sandbox, recipient_id: str) -> dict | None:
    """The recipient as the sandbox holds it, read over GraphQL as any client would."""
    return sandbox.data(
        "query($id: ID) { recipient(id: $id) { id bsb accountNo lastName } }", {"id": recipient_id}
    )["recipient"]
