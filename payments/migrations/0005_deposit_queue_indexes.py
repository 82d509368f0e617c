"""The deposit queue's indexes: one per filter and sort (Deposit.Meta), and on PostgreSQL a
trigram GIN index over the searched text, so `q` (ILIKE '%...%') reads an index, not the table.

The searched expression is written out here, not imported: it must stay what this migration
built even if payments/selectors/deposits.py changes (then a new migration rebuilds it).
SQLite has no pg_trgm: the search there is a plain scan, slower and correct.
"""

import django.db.models.functions.comparison
from django.conf import settings
from django.db import migrations, models

SEARCH_TEXT = (
    "(sender_account_name || ' ' || sender_bsb || ' ' || sender_account_no || ' '"
    " || sender_bsb || sender_account_no || ' ' || external_reference || ' '"
    " || flashfx_id || ' ' || external_id)"
)


def trigram_index(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    schema_editor.execute(
        "CREATE INDEX IF NOT EXISTS deposit_search_trgm ON payments_deposit"
        f" USING gin ({SEARCH_TEXT} gin_trgm_ops)"
    )
    # A finer histogram of the searched text: with the default 100 entries the planner guesses
    # that a common word ("smith") matches almost nothing and sorts every match instead of
    # walking the received index and stopping at a page; 1,000 lets it see the difference.
    schema_editor.execute("ALTER INDEX deposit_search_trgm ALTER COLUMN 1 SET STATISTICS 1000")


def drop_trigram_index(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("DROP INDEX IF EXISTS deposit_search_trgm")


class Migration(migrations.Migration):
    dependencies = [
        ("parties", "0001_initial"),
        ("payments", "0004_deposit_review"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddIndex(
            model_name="deposit",
            index=models.Index(
                django.db.models.functions.comparison.Coalesce("flashfx_created_at", "created_at"),
                models.F("id"),
                name="deposit_received",
            ),
        ),
        migrations.AddIndex(
            model_name="deposit",
            index=models.Index(models.F("amount"), models.F("id"), name="deposit_amount"),
        ),
        migrations.AddIndex(
            model_name="deposit",
            index=models.Index(
                models.F("flashfx_status"),
                django.db.models.functions.comparison.Coalesce("flashfx_created_at", "created_at"),
                models.F("id"),
                name="deposit_status_received",
            ),
        ),
        migrations.AddIndex(
            model_name="deposit",
            index=models.Index(
                models.F("review_state"),
                django.db.models.functions.comparison.Coalesce("flashfx_created_at", "created_at"),
                models.F("id"),
                name="deposit_review_received",
            ),
        ),
        migrations.AddIndex(
            model_name="deposit",
            index=models.Index(
                models.F("sub_client"),
                django.db.models.functions.comparison.Coalesce("flashfx_created_at", "created_at"),
                models.F("id"),
                name="deposit_subclient_received",
            ),
        ),
        migrations.AddIndex(
            model_name="deposit",
            index=models.Index(
                models.F("assignee"),
                django.db.models.functions.comparison.Coalesce("flashfx_created_at", "created_at"),
                models.F("id"),
                name="deposit_assignee_received",
            ),
        ),
        migrations.RunPython(trigram_index, drop_trigram_index),
    ]
