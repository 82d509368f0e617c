"""The models that moved into mirrors/ kept their rows: a database at the schema before the move,
with a row in every moved table, migrates to today's head and still holds them all.

Sync runs, drift reports and items, balance snapshots and checks came from payments/, the token
row from backoffice/ (payments 0003, backoffice 0004, mirrors 0001). Their content types move
with them, so the permissions a role holds stay the same rows. Both directions run as an
operator would run them (`manage.py migrate`, post_migrate included).
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import Group, Permission, User
from django.contrib.contenttypes.models import ContentType
from django.core.management import call_command
from django.db import connection
from django.db.migrations.loader import MigrationLoader

from mirrors.models import (
    BalanceCheck,
    BalanceSnapshot,
    DriftItem,
    DriftReport,
    FlashFXToken,
    SyncRun,
)

BEFORE_THE_MOVE = [
    ("backoffice", "0003_audit_append_only"),
    ("payments", "0002_money_action_permissions"),
]
AT = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def back_to_before_the_move():
    """As an operator rolls back: `migrate <app> <migration>` (post_migrate and all)."""
    call_command("migrate", "payments", "0002", verbosity=0)
    call_command("migrate", "backoffice", "0003", verbosity=0)
    tables = connection.introspection.table_names()
    assert "payments_syncrun" in tables and "backoffice_flashfxtoken" in tables
    assert not any(table.startswith("mirrors_") for table in tables)
    loader = MigrationLoader(connection)
    others = [
        n for n in loader.graph.leaf_nodes() if n[0] not in ("backoffice", "payments", "mirrors")
    ]
    return loader.project_state([*BEFORE_THE_MOVE, *others]).apps


def forward_to_head():
    call_command("migrate", verbosity=0)


@pytest.mark.django_db(transaction=True)
def test_every_moved_table_keeps_its_rows_and_its_permissions():
    old = back_to_before_the_move()

    run = old.get_model("payments", "SyncRun").objects.create(
        entity="deposits", mode="full", until=AT, fetched=7, changed_ids=["a1", "a2"]
    )
    report = old.get_model("payments", "DriftReport").objects.create(
        window_start=AT, window_end=AT, entities=["deposits"], compared=3
    )
    item = old.get_model("payments", "DriftItem").objects.create(
        report=report,
        entity="deposits",
        flashfx_id="65f0c0ffee0000000000d001",
        kind="conflict",
        differences={"amount": ["1.00", "2.00"]},
        resolution="applied",
    )
    snapshot = old.get_model("payments", "BalanceSnapshot").objects.create(
        currency="AUD", cleared=Decimal("10.50"), pending=Decimal("0.25"), taken_at=AT
    )
    check = old.get_model("payments", "BalanceCheck").objects.create(
        report=report,
        currency="AUD",
        reported_cleared=Decimal("10.50"),
        implied_cleared=Decimal("10.00"),
        reported_pending=Decimal("0.25"),
        implied_pending=Decimal("0.25"),
    )
    old.get_model("backoffice", "FlashFXToken").objects.create(token="a-token", expires_at=AT)
    old_permission = old.get_model("auth", "Permission").objects.get(
        content_type__app_label="payments", codename="view_syncrun"
    )
    old.get_model("auth", "Group").objects.get(name="viewer").permissions.add(old_permission)

    forward_to_head()

    moved = SyncRun.objects.get(pk=run.pk)
    assert (moved.entity, moved.fetched, moved.changed_ids) == ("deposits", 7, ["a1", "a2"])
    assert DriftReport.objects.get(pk=report.pk).compared == 3
    assert DriftItem.objects.get(pk=item.pk).report_id == report.pk
    assert BalanceSnapshot.objects.get(pk=snapshot.pk).cleared == Decimal("10.50")
    moved_check = BalanceCheck.objects.get(pk=check.pk)
    assert (moved_check.report_id, moved_check.cleared_difference) == (report.pk, Decimal("0.50"))
    assert FlashFXToken.objects.get().token == "a-token"
    # New rows still get new keys after the rename (the sequences came along on PostgreSQL).
    assert SyncRun.objects.create(entity="senders", mode="full", until=AT).pk > run.pk

    permission = Permission.objects.get(pk=old_permission.pk)
    assert permission.content_type.app_label == "mirrors"
    assert Group.objects.get(name="viewer").permissions.filter(pk=permission.pk).exists()
    assert not Permission.objects.filter(
        content_type__app_label="payments", codename="view_syncrun"
    )


@pytest.mark.django_db(transaction=True)
def test_content_types_created_early_are_merged_not_left_behind():
    """If the mirrors content type exists before the move (something asked for it early), the
    old one is merged into it: who held the old permission holds the new, history follows."""
    old = back_to_before_the_move()
    types = old.get_model("contenttypes", "ContentType").objects
    permissions = old.get_model("auth", "Permission").objects
    source = types.get(app_label="payments", model="syncrun")
    early = types.create(app_label="mirrors", model="syncrun")
    permissions.create(content_type=early, codename="view_syncrun", name="Can view sync run")
    run = old.get_model("payments", "SyncRun").objects.create(
        entity="deposits", mode="full", until=AT
    )
    clerk = old.get_model("auth", "User").objects.create(username="clerk")
    clerk.user_permissions.add(permissions.get(content_type=source, codename="view_syncrun"))
    old.get_model("admin", "LogEntry").objects.create(
        user=clerk, content_type=source, object_id=str(run.pk), object_repr="sync", action_flag=2
    )

    forward_to_head()

    assert not ContentType.objects.filter(app_label="payments", model="syncrun").exists()
    assert User.objects.get(username="clerk").has_perm("mirrors.view_syncrun")
    assert Permission.objects.filter(codename="view_syncrun").count() == 1
    entry = LogEntry.objects.get(object_id=str(run.pk))
    assert entry.get_edited_object() == SyncRun.objects.get(pk=run.pk)
