"""`manage.py rebuild_money_rollup [--check]`: recompute the dashboard's money roll-up from the
mirrored rows (after rows were written outside the apply rule, e.g. a restore), or with --check
only say where it disagrees with them (exit status 1 if it does)."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from mirrors import rollup


class Command(BaseCommand):
    help = "Recompute the money roll-up (MoneyRollup) from the mirrored rows."

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--check",
            action="store_true",
            help="only compare; change nothing, exit 1 if it differs",
        )

    def handle(self, *args, check: bool = False, **options) -> None:
        if check:
            differing = rollup.differences()
            for (source, currency, hour), (have, want) in sorted(differing.items()):
                self.stdout.write(f"{hour:%Y-%m-%d %H}:00 {source} {currency}: {have} != {want}")
            if differing:
                raise CommandError(f"{len(differing)} hours differ: run without --check to fix")
            self.stdout.write("The money roll-up agrees with the rows.")
            return
        hours = rollup.rebuild()
        self.stdout.write(f"Money roll-up rebuilt: {hours} hours.")
