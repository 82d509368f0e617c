"""Sync runs, drift reports and balance records move to the mirrors app (mirrors 0001).

The tables are renamed, not copied: rows, keys and indexes stay. The transfers' sub-client
foreign keys now come from one abstract base (related_name "%(class)ss", the same names as
before): a change of migration state only.
"""

import django.db.models.deletion
from django.db import migrations, models

MOVED = ("balancesnapshot", "syncrun", "driftreport", "driftitem", "balancecheck")


class Migration(migrations.Migration):

    dependencies = [
        ("parties", "0001_initial"),
        ("payments", "0002_money_action_permissions"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[
                migrations.AlterModelTable(name=name, table=f"mirrors_{name}") for name in MOVED
            ],
            state_operations=[
                migrations.DeleteModel(name="BalanceCheck"),
                migrations.DeleteModel(name="DriftItem"),
                migrations.DeleteModel(name="DriftReport"),
                migrations.DeleteModel(name="SyncRun"),
                migrations.DeleteModel(name="BalanceSnapshot"),
            ],
        ),
    ] + [
        migrations.AlterField(
            model_name=model,
            name="sub_client",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="%(class)ss",
                to="parties.subclient",
            ),
        )
        for model in ("deposit", "payment", "withdrawal")
    ]
