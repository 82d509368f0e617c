"""`manage.py readiness [--only beat ...]`: /readyz's checks from a shell, for container health
checks of processes that serve no HTTP (beat, workers) and for an operator at a prompt.

Prints the checks as JSON; exits 0 when every check asked for passed, 1 otherwise.
"""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from backoffice import readiness


class Command(BaseCommand):
    help = "Run /readyz's checks (all, or those named with --only); exit 1 when one fails."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--only", nargs="+", choices=list(readiness.CHECKS), default=None)

    def handle(self, *args: Any, only: list[str] | None, **options: Any) -> None:
        checks = readiness.run_checks(only)
        self.stdout.write(json.dumps({c.name: c.as_json() for c in checks}))
        if not all(c.ok for c in checks):
            raise SystemExit(1)
