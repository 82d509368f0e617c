"""Sync benchmark: mirror N deposits from the sandbox, against the raw fetch of the same data.

    .venv/bin/python bench/sync.py [--rows 20000] [--window-max 1000] [--repeat 3] [--no-memory]

Starts its own sandbox (own database, webhooks off) and imports N confirmed deposits, sets up a
fresh back-office database (the embedded SQLite; with DATABASE_URL, a PostgreSQL database of its
own, bench_sync_<pid>, made on that server and dropped at the end), then, interleaved:

- raw: the same windows the sync walks (its own walk_windows), fetched with plain httpx and the
  same query document, parsed with simplejson (parse_float=Decimal): the floor any sync pays;
- sync: `sync_entity("deposits", full=True)` into an empty mirror: client, typing, the apply
  rule and the database writes.

Prints the medians and their ratio (goal: sync <= 1.2x raw), then the peak Python memory of a sync
(tracemalloc) for N rows and for N/4 rows with the same window size, and for N rows with
windows four times larger: the peak should follow the rows per window, not the total.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import httpx
import simplejson

BASE_DIR = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(BASE_DIR))
START = datetime(2026, 1, 1, tzinfo=UTC)
END = datetime(2026, 11, 1, tzinfo=UTC)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_sandbox(workdir: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SANDBOX_", "DJANGO_"))}
    env |= {
        "SANDBOX_DB_PATH": str(workdir / "sandbox.sqlite3"),
        "SANDBOX_WEBHOOK_URL": "",
        "SANDBOX_LOG_LEVEL": "WARNING",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "flashfx.sandbox", "serve", "--port", str(port), "--no-seed"],
        cwd=BASE_DIR,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/"
    for _ in range(300):
        try:
            if httpx.get(url + "_sandbox/health", timeout=1).status_code == 200:
                return process, url
        except httpx.HTTPError:
            time.sleep(0.1)
    process.kill()
    raise SystemExit("the sandbox did not start")


def iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def raw_fetch(url: str, token: str, query: str, windows) -> tuple[int, float]:
    """The sync's own window walk (same function, same widths) with nothing but HTTP and JSON."""
    started = time.perf_counter()
    with httpx.Client(
        headers={"authorization": f"Bearer {token}", "content-type": "application/json"},
        timeout=120,
    ) as http:

        def fetch(filters: dict) -> list:
            body = simplejson.dumps({"query": query, "variables": {"input": filters}})
            return simplejson.loads(http.post(url, content=body).content, parse_float=Decimal)[
                "data"
            ]["deposits"]

        rows = sum(len(window.rows) for window in windows(fetch))
    return rows, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--window-max", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--no-memory", action="store_true", help="skip the three tracemalloc syncs (time only)"
    )
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="bench-sync-"))
    os.environ |= {
        "DEBUG": "true",
        "VAR_DIR": str(workdir),
        "DJANGO_SETTINGS_MODULE": "backoffice.settings",
        "LOG_LEVEL": "WARNING",
    }
    database = own_database()
    sandbox, url = start_sandbox(workdir)
    try:
        imported = httpx.post(
            url + "_sandbox/deposits/import",
            timeout=600,
            json={"count": args.rows, "createdFrom": iso(START), "createdTo": iso(END)},
        )
        imported.raise_for_status()

        import django

        django.setup()
        from django.conf import settings
        from django.core.management import call_command

        from flashfx.client import FlashFXClient
        from flashfx.operations import OPERATIONS
        from flashfx.tokens import MemoryTokenStore
        from mirrors.models import SyncRun
        from mirrors.sync import sync_entity, walk_windows
        from payments.models import Deposit

        call_command("migrate", verbosity=0)
        settings.DEBUG = False  # DEBUG keeps every SQL statement in memory
        settings.FLASHFX_SYNC_EPOCH = START - timedelta(days=1)
        client = FlashFXClient(
            url, "api@sandbox.local", "sandbox-password", token_store=MemoryTokenStore()
        )
        token = client.login().token
        query = OPERATIONS["Deposits"].text

        def empty_mirror() -> None:
            Deposit.objects.all().delete()
            SyncRun.objects.all().delete()

        def sync_once(window_max: int, since: datetime | None = None) -> tuple[int, float]:
            empty_mirror()
            settings.FLASHFX_SYNC_WINDOW_MAX_ROWS = window_max
            started = time.perf_counter()
            run = sync_entity(client=client, entity="deposits", since=since, full=since is None)
            return run.created, time.perf_counter() - started

        raw_times, sync_times = [], []
        for _ in range(args.repeat):
            rows, seconds = raw_fetch(
                url,
                token,
                query,
                lambda fetch: walk_windows(
                    fetch,
                    settings.FLASHFX_SYNC_EPOCH,
                    datetime.now(UTC),
                    max_rows=args.window_max,
                    first_window=timedelta(hours=settings.FLASHFX_SYNC_FIRST_WINDOW_HOURS),
                ),
            )
            raw_times.append(seconds)
            created, seconds = sync_once(args.window_max)
            sync_times.append(seconds)
            assert rows == created == args.rows, (rows, created)
        raw, synced = statistics.median(raw_times), statistics.median(sync_times)
        engine = settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1]
        print(
            f"{args.rows} deposits, windows of < {args.window_max} rows, {engine}, median of {args.repeat}"
        )
        print(f"  raw fetch + parse   {raw:7.2f} s   ({args.rows / raw:8.0f} rows/s)")
        print(f"  full sync           {synced:7.2f} s   ({args.rows / synced:8.0f} rows/s)")
        print(f"  ratio sync / raw    {synced / raw:7.2f}x   (goal <= 1.2x)")

        if args.no_memory:
            client.logout()
            client.close()
            return

        def peak(window_max: int, since: datetime | None = None) -> tuple[int, float]:
            empty_mirror()  # before tracing: deleting the last run's rows loads them all
            tracemalloc.start()
            created, _ = sync_once(window_max, since)
            _, top = tracemalloc.get_traced_memory()
            tracemalloc.stop()
            return created, top / 2**20

        quarter_since = START + (END - START) * 3 / 4
        small_rows, small = peak(args.window_max, quarter_since)
        all_rows, full = peak(args.window_max)
        big_rows, big = peak(args.window_max * 4)
        print("  peak Python memory during a sync (tracemalloc):")
        print(f"    {small_rows:6d} rows, windows < {args.window_max:5d} rows: {small:7.1f} MiB")
        print(
            f"    {all_rows:6d} rows, windows < {args.window_max:5d} rows: {full:7.1f} MiB   ({full / small:.2f}x for {all_rows / small_rows:.1f}x the rows)"
        )
        print(
            f"    {big_rows:6d} rows, windows < {args.window_max * 4:5d} rows: {big:7.1f} MiB   ({big / full:.2f}x for 4x the rows per window)"
        )
        client.logout()
        client.close()
    finally:
        sandbox.terminate()
        sandbox.wait(timeout=20)
        if database is not None:
            from django.db import connections

            connections.close_all()
            drop_database(database)


def own_database() -> tuple[str, str] | None:
    """With DATABASE_URL (PostgreSQL): a new database of the bench's own on that server, which
    DATABASE_URL then names; (server URL, name) for dropping it. None for the embedded SQLite."""
    url = os.environ.get("DATABASE_URL", "")
    if not url:
        return None
    import psycopg
    from psycopg import sql

    server, _, _ = url.rpartition("/")
    name = f"bench_sync_{os.getpid()}"
    with psycopg.connect(f"{server}/postgres", autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    os.environ["DATABASE_URL"] = f"{server}/{name}"
    return server, name


def drop_database(database: tuple[str, str]) -> None:
    import psycopg
    from psycopg import sql

    server, name = database
    with psycopg.connect(f"{server}/postgres", autocommit=True) as admin:
        admin.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


if __name__ == "__main__":
    main()
