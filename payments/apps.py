from __future__ import annotations

from django.apps import AppConfig


class PaymentsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "payments"

    def ready(self) -> None:
        # Our exportable lists register themselves (payments/exports/lists.py).
        from .exports import lists  # noqa: F401
