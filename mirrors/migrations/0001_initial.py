"""The mirrors app takes over the models that keep the mirrors true, with their rows.

SyncRun, DriftReport, DriftItem, BalanceSnapshot and BalanceCheck were payments' models, and
FlashFXToken was backoffice's. Their tables were renamed to mirrors_* by payments 0003 and
backoffice 0004 (rows, keys and indexes kept); here they only enter this app's state. Their
content types move too, so their permissions, the roles holding them and admin history follow.
"""

import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models

MOVED = {
    "payments": ("balancesnapshot", "syncrun", "driftreport", "driftitem", "balancecheck"),
    "backoffice": ("flashfxtoken",),
}


def _move(apps, db: str, model: str, source_app: str, target_app: str) -> None:
    """The content type of `model` moves from `source_app` to `target_app`, and with it the
    permissions, who holds them, and the admin's history of its rows.

    Usually that is renaming the row. If the target's content type exists already (something
    asked for it before this ran), the two are merged into it: a permission the target lacks
    moves over, one it has is given to whoever held the source's, and the source goes.
    """
    ContentType = apps.get_model("contenttypes", "ContentType")
    Permission = apps.get_model("auth", "Permission")
    Group = apps.get_model("auth", "Group")
    User = apps.get_model(settings.AUTH_USER_MODEL)
    LogEntry = apps.get_model("admin", "LogEntry")
    types = ContentType.objects.using(db)
    source = types.filter(app_label=source_app, model=model).first()
    if source is None:
        return  # a new database: post_migrate creates the target's later
    target = types.filter(app_label=target_app, model=model).first()
    if target is None:
        source.app_label = target_app
        source.save(using=db, update_fields=["app_label"])
        return
    group_holders = Group.permissions.through.objects.using(db)
    user_holders = User.user_permissions.through.objects.using(db)
    for permission in Permission.objects.using(db).filter(content_type=source):
        twin = Permission.objects.using(db).filter(
            content_type=target, codename=permission.codename
        ).first()
        if twin is None:
            permission.content_type = target
            permission.save(using=db, update_fields=["content_type"])
            continue
        for holder in group_holders.filter(permission=permission):
            group_holders.get_or_create(group_id=holder.group_id, permission=twin)
        for holder in user_holders.filter(permission=permission):
            user_holders.get_or_create(user_id=holder.user_id, permission=twin)
        permission.delete()
    LogEntry.objects.using(db).filter(content_type=source).update(content_type=target)
    source.delete()


def move_content_types(apps, schema_editor):
    for old_app, models_ in MOVED.items():
        for model in models_:
            _move(apps, schema_editor.connection.alias, model, old_app, "mirrors")


def restore_content_types(apps, schema_editor):
    for old_app, models_ in MOVED.items():
        for model in models_:
            _move(apps, schema_editor.connection.alias, model, "mirrors", old_app)


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ("backoffice", "0004_move_flashfx_token_to_mirrors"),
        ("admin", "0003_logentry_add_action_flag_choices"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
        ("parties", "0001_initial"),
        ("payments", "0003_move_sync_records_to_mirrors"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name='BalanceSnapshot',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('currency', models.CharField(max_length=3)),
                        ('cleared', models.DecimalField(decimal_places=2, max_digits=18)),
                        ('pending', models.DecimalField(decimal_places=2, max_digits=18)),
                        ('taken_at', models.DateTimeField(db_index=True, default=django.utils.timezone.now)),
                    ],
                    options={
                        'ordering': ['-taken_at', 'currency'],
                    },
                ),
                migrations.CreateModel(
                    name='DriftReport',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('window_start', models.DateTimeField()),
                        ('window_end', models.DateTimeField()),
                        ('entities', models.JSONField(default=list)),
                        ('compared', models.PositiveIntegerField(default=0)),
                        ('started_at', models.DateTimeField(default=django.utils.timezone.now)),
                        ('finished_at', models.DateTimeField(blank=True, null=True)),
                        ('error', models.TextField(blank=True)),
                    ],
                    options={
                        'ordering': ['-started_at'],
                    },
                ),
                migrations.CreateModel(
                    name='SyncRun',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('entity', models.CharField(db_index=True, max_length=16)),
                        ('mode', models.CharField(max_length=16)),
                        ('since', models.DateTimeField(blank=True, null=True)),
                        ('until', models.DateTimeField()),
                        ('status', models.CharField(choices=[('running', 'Running'), ('succeeded', 'Succeeded'), ('failed', 'Failed')], default='running', max_length=16)),
                        ('windows', models.PositiveIntegerField(default=0)),
                        ('fetched', models.PositiveIntegerField(default=0)),
                        ('created', models.PositiveIntegerField(default=0)),
                        ('updated', models.PositiveIntegerField(default=0)),
                        ('unchanged', models.PositiveIntegerField(default=0)),
                        ('stale', models.PositiveIntegerField(default=0)),
                        ('refused', models.PositiveIntegerField(default=0)),
                        ('error', models.TextField(blank=True)),
                        ('changed_ids', models.JSONField(blank=True, default=list)),
                        ('silence_checked_at', models.DateTimeField(blank=True, null=True)),
                        ('silent_ids', models.JSONField(blank=True, default=list)),
                        ('started_at', models.DateTimeField(default=django.utils.timezone.now)),
                        ('finished_at', models.DateTimeField(blank=True, null=True)),
                    ],
                    options={
                        'ordering': ['-started_at'],
                    },
                ),
                migrations.CreateModel(
                    name='DriftItem',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('entity', models.CharField(max_length=16)),
                        ('flashfx_id', models.CharField(max_length=24)),
                        ('kind', models.CharField(choices=[('missing_locally', 'Missing Locally'), ('missing_remotely', 'Missing Remotely'), ('conflict', 'Conflict')], max_length=20)),
                        ('differences', models.JSONField(default=dict)),
                        ('resolution', models.CharField(choices=[('applied', 'Applied'), ('flagged', 'Flagged')], max_length=16)),
                        ('note', models.CharField(blank=True, max_length=300)),
                        ('report', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='items', to='mirrors.driftreport')),
                    ],
                    options={
                        'ordering': ['id'],
                    },
                ),
                migrations.CreateModel(
                    name='BalanceCheck',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('currency', models.CharField(max_length=3)),
                        ('reported_cleared', models.DecimalField(decimal_places=2, max_digits=18)),
                        ('implied_cleared', models.DecimalField(decimal_places=2, max_digits=18)),
                        ('reported_pending', models.DecimalField(decimal_places=2, max_digits=18)),
                        ('implied_pending', models.DecimalField(decimal_places=2, max_digits=18)),
                        ('checked_at', models.DateTimeField(default=django.utils.timezone.now)),
                        ('report', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='balance_checks', to='mirrors.driftreport')),
                    ],
                    options={
                        'ordering': ['-checked_at', 'currency'],
                    },
                ),
                migrations.CreateModel(
                    name='FlashFXToken',
                    fields=[
                        ('id', models.PositiveSmallIntegerField(default=1, editable=False, primary_key=True, serialize=False)),
                        ('token', models.TextField(blank=True)),
                        ('issued_at', models.DateTimeField(blank=True, null=True)),
                        ('expires_at', models.DateTimeField(blank=True, null=True)),
                        ('updated_at', models.DateTimeField(auto_now=True)),
                    ],
                    options={
                        'verbose_name': 'FlashFX token',
                        'constraints': [models.CheckConstraint(condition=models.Q(('id', 1)), name='flashfx_token_singleton')],
                    },
                ),
            ],
            database_operations=[],
        ),
        migrations.RunPython(move_content_types, restore_content_types),
    ]
