from __future__ import annotations

from django.apps import AppConfig
from django.utils.module_loading import autodiscover_modules


class MirrorsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "mirrors"

    def ready(self) -> None:
        # Each app declares its mirrored entities in <app>/mirrors.py (mirrors/registry.py).
        autodiscover_modules("mirrors")
