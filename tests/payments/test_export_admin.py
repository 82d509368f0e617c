"""The Django admin exports the mirrors through the same engine: the selected rows, every stored
field, escaped, masked for a member without the permission, in the audit trail."""

from __future__ import annotations

import io
from decimal import Decimal

import openpyxl
import pytest
from django.contrib.auth.models import Group, Permission
from django.test import Client
from export_support import body, csv_rows
from queue_support import make_deposit
from staff import make_staff, sign_in

from backoffice import audit, roles
from backoffice.models import AuditEvent

pytestmark = pytest.mark.django_db


def admin_client(**fields) -> Client:
    client = Client()
    sign_in(client, make_staff(None, "root", is_staff=True, **fields))
    return client


def test_a_superuser_exports_the_selected_deposits_from_the_admin():
    chosen = make_deposit(
        sender_account_name="=cmd", amount=Decimal("-3.10"), sender_account_no="12345678"
    )
    make_deposit()
    client = admin_client(is_superuser=True)
    response = client.post(
        "/admin/payments/deposit/",
        {"action": "export_csv", "_selected_action": [chosen.pk]},
    )
    assert response.status_code == 200
    rows = csv_rows(response)
    header = rows[0]
    assert "Amount" in header and "Currency" in header and "Raw" not in header
    assert "Flashfx created at (Australia/Sydney)" in header
    assert len(rows) == 2
    row = dict(zip(header, rows[1], strict=True))
    assert row["Amount"] == "-3.10" and row["Sender account name"] == "'=cmd"
    assert row["Sender account no"] == "12345678"  # a superuser holds every permission
    event = AuditEvent.objects.get(action=audit.EXPORTED)
    assert event.details["list"] == "admin:payments.deposit" and event.details["rows"] == 1


def test_the_admin_export_masks_accounts_for_an_exporter_without_the_permission():
    chosen = make_deposit(sender_account_no="12345678")
    client = Client()
    sign_in(client, make_staff(roles.ADMIN, "boss", is_staff=True))  # exports, masked
    response = client.post(
        "/admin/payments/deposit/",
        {"action": "export_xlsx", "_selected_action": [chosen.pk]},
    )
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/vnd.openxmlformats")
    sheet = openpyxl.load_workbook(io.BytesIO(body(response))).active
    header, row = list(sheet.iter_rows(values_only=True))
    assert dict(zip(header, row, strict=True))["Sender account no"] == "*****678"


def test_a_member_without_the_export_permission_is_not_offered_the_action():
    make_deposit()
    client = Client()
    # An installation that took exporting away from its admins (a superuser can, in the admin).
    Group.objects.get(name=roles.ADMIN).permissions.remove(
        Permission.objects.get(codename="export_data")
    )
    sign_in(client, make_staff(roles.ADMIN, "boss", is_staff=True))
    response = client.get("/admin/payments/deposit/")
    assert response.status_code == 200
    page = response.content.decode()
    assert "1 deposit" in page  # the list, without the export actions
    assert "Export selected as CSV" not in page
    assert (
        "Export selected as CSV"
        in admin_client(is_superuser=True).get("/admin/payments/deposit/").content.decode()
    )
