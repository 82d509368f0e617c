from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from backoffice.audit import verify_chain
from backoffice.models import AuditEvent


class Command(BaseCommand):
    help = (
        "Recompute the audit trail's hash chain; exit non-zero at the first break. Keep the "
        "printed head and count somewhere else (a log, a ticket): --expect-head and --min-count "
        "then also catch rows removed from the end."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--expect-head", help="a head hash printed earlier: must be in the chain"
        )
        parser.add_argument("--min-count", type=int, default=0, help="at least this many events")

    def handle(self, *args: Any, expect_head: str | None, min_count: int, **options: Any) -> None:
        count, head, breaks = verify_chain()
        if expect_head and not AuditEvent.objects.filter(hash=expect_head).exists():
            raise CommandError(f"the head {expect_head} recorded earlier is no longer in the chain")
        if count < min_count:
            raise CommandError(f"{count} events, fewer than the {min_count} recorded earlier")
        if breaks:
            for found in breaks[:20]:
                self.stderr.write(f"audit event {found.event_id}: {found.problem}")
            raise CommandError(
                f"audit chain broken: {len(breaks)} problem(s) in {count} events "
                f"(first at event {breaks[0].event_id})"
            )
        self.stdout.write(f"audit chain intact: {count} events, head {head}")
