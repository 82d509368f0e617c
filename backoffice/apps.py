from __future__ import annotations

from django.apps import AppConfig
from django.db.models.signals import post_migrate


class BackofficeConfig(AppConfig):
    name = "backoffice"
    default = True
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import signals  # noqa: F401 - connects the audit receivers

        post_migrate.connect(_ensure_roles, dispatch_uid="backoffice.ensure_roles")


def _ensure_roles(sender: AppConfig, **kwargs: object) -> None:
    """After the last app's post_migrate, when every app's permissions exist."""
    from django.apps import apps

    if sender is list(apps.get_app_configs())[-1]:
        from .roles import ensure_roles

        ensure_roles()
