from __future__ import annotations

import logging

from django.apps import AppConfig
from django.db.models.signals import post_migrate

log = logging.getLogger(__name__)


class BackofficeConfig(AppConfig):
    name = "backoffice"
    default = True
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from celery.signals import task_postrun, task_prerun

        from flashfx import call_log

        # signals connects the audit receivers; reconciliation_exports registers the statement's
        # export list (payments/exports).
        from . import metrics, reconciliation_exports, signals  # noqa: F401

        if metrics.flashfx_call not in call_log.LISTENERS:
            call_log.LISTENERS.append(metrics.flashfx_call)
        task_prerun.connect(metrics.task_started, dispatch_uid="backoffice.metrics.started")
        task_postrun.connect(metrics.task_finished, dispatch_uid="backoffice.metrics.finished")

        post_migrate.connect(_ensure_roles, dispatch_uid="backoffice.ensure_roles")


def _ensure_roles(sender: AppConfig, plan=None, **kwargs: object) -> None:
    """After the last app's post_migrate, when every app's permissions exist.

    Not after unapplying migrations: the roles name the permissions of this version's models,
    which a rollback towards an earlier version may have taken away (its own migrate sets its
    roles when it is deployed).
    """
    from django.apps import apps

    if sender is not list(apps.get_app_configs())[-1]:
        return
    if plan and any(backwards for _migration, backwards in plan):
        log.warning("migrations were unapplied: roles left as they are (no ensure_roles)")
        return
    from .roles import ensure_roles

    ensure_roles()
