"""The models that moved into mirrors/ kept their rows: a database at the schema before the move,
with a row in every moved table, migrates to today's head and still holds them all.

Sync runs, drift reports and items, balance snapshots and checks came from payments/, the token
row from backoffice/ (payments 0003, backoffice 0004, mirrors 0001). Their content types move
with them, so the permissions a role holds stay the same rows.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.contrib.auth.models import Group, Permission
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

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
    ("parties", "0001_initial"),
    ("webhooks", "0001_initial"),
]
AT = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def migrate(targets) -> MigrationExecutor:
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return MigrationExecutor(connection)


def head() -> list[tuple[str, str]]:
    return MigrationExecutor(connection).loader.graph.leaf_nodes()


@pytest.mark.django_db(transaction=True)
def test_every_moved_table_keeps_its_rows_and_its_permissions():
    executor = migrate(BEFORE_THE_MOVE)
    old = executor.loader.project_state(BEFORE_THE_MOVE).apps
    assert not any(app == "mirrors" for app, _ in executor.loader.applied_migrations)

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

    migrate(head())

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
