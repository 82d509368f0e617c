"""What the export tests share: a member of a role signed in, and an export asked for through
the list page's panel (a POST with the filters the page shows).

A plain module beside the tests: `from export_support import ...`.
"""

from __future__ import annotations

import csv
import io

from django.test import Client
from staff import make_staff, sign_in

DEPOSIT_DEFAULT = [
    "flashfx_id",
    "received",
    "amount",
    "currency",
    "status",
    "review",
    "payer",
    "payer_bsb",
    "payer_account",
    "reference",
    "sub_client",
    "assignee",
    "third_party",
]


def member(role: str, username: str | None = None) -> Client:
    client = Client()
    sign_in(client, make_staff(role, username or f"{role}-exporter"))
    return client


def export(
    client: Client,
    list_name: str,
    *,
    filters: str = "",
    columns: list[str] | None = None,
    file_format: str = "csv",
    zone: str = "Australia/Sydney",
):
    data = {"filters": filters, "format": file_format, "zone": zone}
    if columns is not None:
        data["columns"] = columns
    return client.post(f"/exports/start/{list_name}/", data)


def body(response) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content


def csv_rows(response) -> list[list[str]]:
    return list(csv.reader(io.StringIO(body(response).decode("utf-8-sig"), newline="")))
