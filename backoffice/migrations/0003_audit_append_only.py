"""Database triggers that refuse changes to audit rows, whatever code (or SQL) tries.

PostgreSQL refuses UPDATE and DELETE. SQLite refuses UPDATE; not DELETE, because Django's test
flush empties tables with DELETE there (PostgreSQL's flush uses TRUNCATE, which the trigger does
not cover). verify_audit detects a removed row on either database.
"""

from __future__ import annotations

from django.db import migrations

PG_CREATE = """
CREATE OR REPLACE FUNCTION backoffice_auditevent_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'audit events are append-only (% refused)', TG_OP;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER backoffice_auditevent_append_only
    BEFORE UPDATE OR DELETE ON backoffice_auditevent
    FOR EACH ROW EXECUTE FUNCTION backoffice_auditevent_append_only();
"""
PG_DROP = """
DROP TRIGGER IF EXISTS backoffice_auditevent_append_only ON backoffice_auditevent;
DROP FUNCTION IF EXISTS backoffice_auditevent_append_only();
"""
SQLITE_CREATE = """
CREATE TRIGGER backoffice_auditevent_no_update BEFORE UPDATE ON backoffice_auditevent
BEGIN
    SELECT RAISE(ABORT, 'audit events are append-only (UPDATE refused)');
END;
"""
SQLITE_DROP = "DROP TRIGGER IF EXISTS backoffice_auditevent_no_update;"


def create(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(PG_CREATE, params=None)  # '%' is not a placeholder
    elif vendor == "sqlite":
        schema_editor.execute(SQLITE_CREATE)


def drop(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(PG_DROP, params=None)
    elif vendor == "sqlite":
        schema_editor.execute(SQLITE_DROP)


class Migration(migrations.Migration):
    dependencies = [("backoffice", "0002_audit_and_staff_sessions")]

    operations = [migrations.RunPython(create, drop)]
