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


@signals.before_task_publish.connect
def _carry_the_request_id(headers: dict | None = None, **kwargs: object) -> None:
    """A task published while a request (or a task) runs carries its id (backoffice/log.py)."""
    from .log import current_request_id

    if headers is not None and "request_id" not in headers:
        headers["request_id"] = current_request_id()


_bound: dict[str, object] = {}  # task id -> the context token, from prerun to postrun


@signals.task_prerun.connect
def _bind_the_request_id(task_id: str = "", task: Task | None = None, **kwargs: object) -> None:
    from .log import _request_id

    request_id = None
    if task is not None:  # a worker makes message headers request attributes; apply() does not
        headers = getattr(task.request, "headers", None) or {}
        request_id = getattr(task.request, "request_id", None) or headers.get("request_id")
    if not request_id and task is not None and getattr(task.request, "is_eager", False):
        request_id = _request_id.get()  # run in its caller's process: the caller's id
    _bound[task_id] = _request_id.set(request_id or f"task-{task_id}")


@signals.task_postrun.connect
def _unbind_the_request_id(task_id: str = "", **kwargs: object) -> None:
    from .log import _request_id

    token = _bound.pop(task_id, None)
    if token is not None:
        _request_id.reset(token)  # type: ignore[arg-type]


@signals.setup_logging.connect
def _log_as_django_does(**kwargs: object) -> None:
    """Workers and beat log through the project's LOGGING (backoffice/settings.py), as the web
    does: the same format (JSON in production), the same request-id filter. Connecting here is
    what stops Celery from installing its own root handler and format."""
    import logging.config

    from django.conf import settings

    logging.config.dictConfig(settings.LOGGING)
