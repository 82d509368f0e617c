"""python manage.py replay_webhooks [--id N ...] [--since ISO] [--until ISO] [--apply]

A dry run unless --apply: it shows, one line per event, what applying it would change.
Without --id, every FAILED or DEAD event received in [--since, --until] is replayed.
"""

from __future__ import annotations

from datetime import datetime

from django.core.management.base import BaseCommand, CommandError

from webhooks import replay


def aware(option: str, value: str | None) -> datetime | None:
    """ISO-8601 with an offset; a CommandError (not a traceback) for anything else."""
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise CommandError(
            f"{option} must be ISO-8601, e.g. 2026-01-31T00:00:00Z, not {value!r}"
        ) from None
    if parsed.tzinfo is None:
        raise CommandError(f"{option} needs a UTC offset or Z, e.g. {value}Z")
    return parsed


class Command(BaseCommand):
    help = (
        "Replay stored FlashFX webhooks: the given events, or every failed or dead one received "
        "in a time range. A dry run unless --apply."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--id",
            dest="event_ids",
            type=int,
            nargs="+",
            action="extend",
            metavar="N",
            help="inbound event ids (as in the admin); repeatable",
        )
        # Parsed in handle(), so that a bad date is a CommandError, not an argparse traceback.
        parser.add_argument("--since", help="received at or after, ISO-8601 with offset")
        parser.add_argument("--until", help="received at or before, ISO-8601 with offset")
        parser.add_argument(
            "--apply", action="store_true", help="really apply (default: dry run, changes nothing)"
        )

    def handle(self, *args, event_ids=None, since=None, until=None, apply=False, **options):
        since_at, until_at = aware("--since", since), aware("--until", until)
        if since_at and until_at and since_at > until_at:
            raise CommandError("--since is after --until")
        if event_ids and (since_at or until_at):
            raise CommandError("give either --id or a time range, not both")
        results = replay.replay(
            event_ids=event_ids, since=since_at, until=until_at, dry_run=not apply
        )
        for result in results:
            self.stdout.write(f"{result.event_id} {result.event or '-'}: {result.outcome}")
        # The summary goes to stderr: stdout stays one line per event, for grep and scripts.
        mode = "applied" if apply else "dry run, nothing changed; --apply to apply"
        self.stderr.write(f"{len(results)} event(s) ({mode})")
