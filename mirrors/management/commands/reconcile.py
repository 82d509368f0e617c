"""python manage.py reconcile [--days N] [--entity deposits ...]: drift report and balance proof."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from flashfx.errors import FlashFXError
from mirrors import reconcile
from mirrors.client import flashfx_client, logout_quietly
from mirrors.registry import registry


class Command(BaseCommand):
    help = "Compare the mirror with FlashFX field by field, re-apply FlashFX's version where they differ, prove balances."

    def add_arguments(self, parser):
        parser.add_argument("--days", type=int, default=settings.FLASHFX_RECONCILE_DAYS)
        parser.add_argument("--entity", action="append", choices=registry.names())

    def handle(self, *args, days, entity=None, **options):
        if days <= 0:
            raise CommandError("--days must be positive")
        client = flashfx_client()
        try:
            report = reconcile.reconcile(
                client=client, since=timezone.now() - timedelta(days=days), entities=entity
            )
        except FlashFXError as exc:
            raise CommandError(f"FlashFX: {type(exc).__name__}: {exc}") from exc
        finally:
            logout_quietly(client)
        items = list(report.items.all())
        self.stdout.write(
            f"drift report {report.pk}: {report.compared} compared, {len(items)} differences"
        )
        for item in items:
            self.stdout.write(
                f"  {item.kind:<17} {item.entity:<12} {item.flashfx_id} {item.resolution}: {item.differences}"
            )
        for check in report.balance_checks.all():
            state = (
                "balanced"
                if check.balanced
                else f"DIFFERS by {check.cleared_difference} cleared, {check.pending_difference} pending"
            )
            self.stdout.write(
                f"  balance {check.currency}: FlashFX {check.reported_cleared}, mirror {check.implied_cleared}: {state}"
            )
