from __future__ import annotations

import os

from celery import Celery, Task, signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "backoffice.settings")

# DjangoTask adds delay_on_commit/apply_async_on_commit (Celery >= 5.4).
app = Celery("backoffice", task_cls="celery.contrib.django.task:DjangoTask")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@signals.task_prerun.connect
@signals.task_postrun.connect
def _database_connections_as_for_a_request(task: Task | None = None, **kwargs: object) -> None:
    """Before and after each task, what Django does around each request: close a connection
    that is broken, in a failed transaction or older than CONN_MAX_AGE, and health-check
    the one kept (CONN_HEALTH_CHECKS) on its next use.

    Celery's Django fixup would otherwise close every connection around every task (unless
    CELERY_DB_REUSE_MAX is set, backoffice/settings.py), and a worker would pay a new
    PostgreSQL connection (a server process forked, authentication, session setup) for each
    task: about 4 ms of a payout's send (bench/payouts.py). Not for a task run eagerly
    (`apply()`), inside its caller's transaction, as the fixup does not either.
    """
    from django.db import close_old_connections

    if task is not None and getattr(task.request, "is_eager", False):
        return

    close_old_connections()
