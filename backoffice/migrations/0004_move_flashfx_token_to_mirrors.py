"""The shared FlashFX token row moves to the mirrors app (mirrors 0001), with its table."""

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ("backoffice", "0003_audit_append_only"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[
                migrations.AlterModelTable(name="flashfxtoken", table="mirrors_flashfxtoken"),
            ],
            state_operations=[migrations.DeleteModel(name="FlashFXToken")],
        ),
    ]
