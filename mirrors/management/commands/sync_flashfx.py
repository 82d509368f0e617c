"""python manage.py sync_flashfx [--entity deposits ...] [--since ISO-8601] [--full]"""

from __future__ import annotations

from datetime import datetime

from django.core.management.base import BaseCommand, CommandError

from flashfx.errors import FlashFXError
from mirrors import sync
from mirrors.client import flashfx_client, logout_quietly
from mirrors.registry import registry


def aware(value: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise CommandError(
            f"--since must be ISO-8601, e.g. 2026-01-31T00:00:00Z, not {value!r}"
        ) from None
    if parsed.tzinfo is None:
        raise CommandError("--since needs a UTC offset or Z")
    return parsed


class Command(BaseCommand):
    help = "Mirror FlashFX: incremental by default, a backfill with --since or --full."

    def add_arguments(self, parser):
        parser.add_argument(
            "--entity", action="append", choices=registry.names(), help="repeatable; default all"
        )
        parser.add_argument(
            "--since", type=aware, help="backfill everything created since this time"
        )
        parser.add_argument("--full", action="store_true", help="backfill from FLASHFX_SYNC_EPOCH")

    def handle(self, *args, entity=None, since=None, full=False, **options):
        client = flashfx_client()
        try:
            runs = sync.sync_all(client=client, entities=entity, since=since, full=full)
        except FlashFXError as exc:
            raise CommandError(f"FlashFX: {type(exc).__name__}: {exc}") from exc
        finally:
            logout_quietly(client)  # a long-running command gives its token back
        for run in runs:
            self.stdout.write(
                f"{run.entity:<12} {run.mode:<11} windows={run.windows} fetched={run.fetched} created={run.created} "
                f"updated={run.updated} unchanged={run.unchanged} stale={run.stale} refused={run.refused}"
            )
