from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from backoffice.audit import verify_chain


class Command(BaseCommand):
    help = "Recompute the audit trail's hash chain; exit non-zero at the first break."

    def handle(self, *args: Any, **options: Any) -> None:
        count, head, breaks = verify_chain()
        if breaks:
            for found in breaks[:20]:
                self.stderr.write(f"audit event {found.event_id}: {found.problem}")
            raise CommandError(
                f"audit chain broken: {len(breaks)} problem(s) in {count} events "
                f"(first at event {breaks[0].event_id})"
            )
        self.stdout.write(f"audit chain intact: {count} events, head {head}")
