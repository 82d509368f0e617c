"""A worker keeps its database connection from task to task, as Django keeps one from request
to request (CONN_MAX_AGE, CONN_HEALTH_CHECKS), instead of Celery's Django fixup closing it
around every task: backoffice/celery.py and CELERY_DB_REUSE_MAX."""

from __future__ import annotations

import time

import pytest
from celery import signals
from celery.fixups.django import DjangoWorkerFixup
from django.db import connection

from backoffice import celery_app
from payments.tasks import payout_submit

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def kept_connection():
    """A connection open for up to 60 s, as production's DATABASE_URL gives it."""
    before = connection.settings_dict["CONN_MAX_AGE"]
    connection.close()
    connection.settings_dict["CONN_MAX_AGE"] = 60
    connection.ensure_connection()
    yield connection.connection
    connection.settings_dict["CONN_MAX_AGE"] = before
    connection.close()


def run_task_signals(fixup: DjangoWorkerFixup) -> None:
    """What a worker does around one task: the fixup's handlers and the ones connected to
    task_prerun/task_postrun (ours), for a task not run eagerly."""
    task = payout_submit  # any task; a shared_task, bound to the project's app
    fixup.on_task_prerun(sender=task)
    signals.task_prerun.send(sender=task, task_id="t", task=task, args=(), kwargs={})
    fixup.on_task_postrun(sender=task)
    signals.task_postrun.send(sender=task, task_id="t", task=task, args=(), kwargs={})


def test_a_worker_keeps_its_connection_from_task_to_task(kept_connection):
    fixup = DjangoWorkerFixup(celery_app)
    assert fixup.db_reuse_max  # CELERY_DB_REUSE_MAX reaches the fixup
    for _ in range(3):
        run_task_signals(fixup)
        assert connection.connection is kept_connection


def test_without_the_setting_the_fixup_would_close_it_around_every_task(kept_connection):
    fixup = DjangoWorkerFixup(celery_app)
    fixup.db_reuse_max = None  # Celery's default
    run_task_signals(fixup)
    assert connection.connection is None


def test_a_connection_past_CONN_MAX_AGE_is_closed_after_a_task(kept_connection):
    connection.close_at = time.monotonic() - 1
    run_task_signals(DjangoWorkerFixup(celery_app))
    assert connection.connection is None
