"""Exports benchmark: our CSV (COPY) against psql's \\copy of the same query, our XLSX against
csv.writer on the same rows, and the peak memory each adds, at 1,000,000 deposits.

    .venv/bin/python bench/exports.py [--rows 1000000] [--postgres postgresql://postgres@127.0.0.1:5432]

PostgreSQL only (--postgres, trust auth; psql on PATH). Creates its own database
(bench_exports_<pid>), migrates it, fills it with --rows deposits by COPY (bench/deposit_queue.py's
fill: production's spread of statuses, reviews, sub-clients, assignees and references), and
drops it at the end, also on error or Ctrl-C.

Each export runs in a fresh Python process of its own (`bench/exports.py --measure <kind>`): it
sets Django up, reads the queryset's first row (connection, plan, imports warm), resets its peak
resident set to the current one (/proc/self/clear_refs "5") and notes it (VmRSS), runs the
export to a sink (/dev/null for CSV, a temporary file for XLSX), and reports rows, seconds and
its peak resident set (VmHWM) minus that start: the memory the export itself added. The rows are the deposit queue's export (payments/exports/lists.py, every
default column, Australia/Sydney, account numbers masked: the heaviest SQL), unfiltered,
newest first, all --rows of them:

- ours, CSV: payments.exports.writers.csv_chunks, i.e. COPY (the ORM's query, each column
  formatted by PostgreSQL) TO STDOUT through psycopg, plus the header;
- psql: `psql -c "\\copy (<the same SQL, parameters inlined>) to stdout with (format csv)"`,
  output to /dev/null (its own process; its memory is not measured);
- ours, XLSX: payments.exports.writers.write_xlsx (XlsxWriter, constant_memory), every row;
- csv.writer: the same rows (the queryset's stored values, one server-side cursor, 2,000 a
  fetch) written by a bare csv.writer to /dev/null, no formatting: the floor of any Python export.

Goals: CSV >= 0.5x psql's rows/s; XLSX >= 0.05x csv.writer's rows/s; each of ours adds < 50 MB
of peak RSS at 1M rows. Exits 1 when one is missed.

Dashboard (issue 13): if bench/dashboard.py exists, its measure_dashboard() -> (queries,
seconds) is called in this process at 1,000 deposits (before the fill goes on) and at --rows
(goal: the same query count, time within 1.5x). The hook: DASHBOARD_HOOK below.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parents[1]
BENCH = Path(__file__).resolve().parent
sys.path[:0] = [str(BASE_DIR), str(BENCH), str(BASE_DIR / "tests")]

DASHBOARD_HOOK = BENCH / "dashboard.py"  # measure_dashboard() -> (queries, seconds)
SMALL = 1_000
GOAL_CSV, GOAL_XLSX, GOAL_RSS_MB = 0.5, 0.05, 50.0


def setup_django() -> None:
    os.environ.setdefault("DEBUG", "true")  # the development secrets only; DEBUG goes off below
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "backoffice.settings")
    import django

    django.setup()
    from django.conf import settings

    settings.DEBUG = False  # DEBUG keeps every SQL statement in memory


def proc_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def the_export():
    """The deposit queue's export as an approver asks for it: default columns, masked."""
    from zoneinfo import ZoneInfo

    from django.contrib.auth import get_user_model

    from payments.exports import lists

    entry = lists.DEPOSITS
    columns = [c for c in entry.columns if c.default]
    user = get_user_model().objects.get(username="bench-op0")
    qs = entry.rows({}, user)
    return qs, columns, ZoneInfo("Australia/Sydney")


def copy_sql() -> str:
    """The COPY's query as psql gets it: the ORM's SQL with its parameters inlined."""
    from django.db import connection
    from psycopg import ClientCursor

    from payments.exports.formatting import PgCell
    from payments.exports.writers import _selected

    qs, columns, _ = the_export()
    query = _selected(
        qs,
        columns,
        lambda c, e: PgCell(e, kind=c.kind_for(unmasked=False), zone_name="Australia/Sydney"),
    )
    sql, params = query.query.sql_with_params()
    connection.ensure_connection()
    return ClientCursor(connection.connection).mogrify(sql, params)


def measure(kind: str) -> dict:
    """One export in this (fresh) process: rows, seconds, peak RSS added (MB)."""
    setup_django()
    import csv

    from payments.exports.writers import csv_chunks, raw_rows, write_xlsx

    qs, columns, zone = the_export()
    list(qs[:1])  # connection, plan, imports: warm
    # Reset the peak (VmHWM) to the resident set now (Linux: clear_refs "5"), so that the peak
    # at the end is the export's alone, not Django's start-up.
    Path("/proc/self/clear_refs").write_text("5")
    start_kb = proc_kb("VmRSS")
    t = time.perf_counter()
    if kind == "csv":
        rows = -1  # the header
        with open(os.devnull, "wb") as sink:
            for chunk in csv_chunks(
                qs, columns, zone=zone, zone_name="Australia/Sydney", unmasked=False
            ):
                rows += chunk.count(b"\n")  # no field of these holds a newline
                sink.write(chunk)
    elif kind == "xlsx":
        with tempfile.NamedTemporaryFile(suffix=".xlsx") as out:
            rows = write_xlsx(
                out.name,
                qs,
                columns,
                zone=zone,
                zone_name="Australia/Sydney",
                unmasked=False,
                title="Deposits",
            )
            size = os.path.getsize(out.name)
    elif kind == "csv.writer":
        rows = 0
        with open(os.devnull, "w", newline="") as sink:
            writer = csv.writer(sink)
            writer.writerow([c.label for c in columns])
            for row in raw_rows(qs, columns):
                writer.writerow(row)
                rows += 1
    else:
        raise SystemExit(f"unknown measure {kind!r}")
    seconds = time.perf_counter() - t
    result = {
        "kind": kind,
        "rows": rows,
        "seconds": seconds,
        "rss_growth_mb": (proc_kb("VmHWM") - start_kb) / 1024,
    }
    if kind == "xlsx":
        result["bytes"] = size
    return result


def run_measure(kind: str, env: dict[str, str]) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--measure", kind],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def run_psql(sql: str, dsn: str) -> dict:
    t = time.perf_counter()
    with open(os.devnull, "wb") as sink:
        subprocess.run(
            ["psql", dsn, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-c",
             f"\\copy ({sql}) to stdout with (format csv)"],
            stdout=sink,
            check=True,
        )  # fmt: skip
    return {"kind": "psql", "seconds": time.perf_counter() - t}


def dashboard(label: str) -> tuple[int, float] | None:
    if not DASHBOARD_HOOK.exists():
        return None
    spec = importlib.util.spec_from_file_location("bench_dashboard", DASHBOARD_HOOK)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    queries, seconds = module.measure_dashboard()
    print(f"  dashboard at {label}: {queries} queries, {seconds * 1000:.1f} ms", flush=True)
    return queries, seconds


def fill(n: int, start_seq: int, subs: list[int], assignees: list[int], rng) -> None:
    import deposit_queue

    t = time.perf_counter()
    deposit_queue.fill(n, start_seq=start_seq, sub_client_ids=subs, assignee_ids=assignees, rng=rng)
    print(f"  +{n:,} deposits in {time.perf_counter() - t:.1f} s", flush=True)
    # Rows written outside the apply rule: their money roll-up as rebuild_money_rollup makes it
    # (the dashboard reads it).
    from mirrors import rollup

    t = time.perf_counter()
    rollup.rebuild()
    print(f"  money roll-up rebuilt in {time.perf_counter() - t:.1f} s", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432")
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--measure", help=argparse.SUPPRESS)  # in the child process
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure)), flush=True)
        return

    import psycopg

    database = f"bench_exports_{os.getpid()}"
    dsn = f"{args.postgres}/{database}"
    with psycopg.connect(f"{args.postgres}/postgres", autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{database}"')
    workdir = Path(tempfile.mkdtemp(prefix="bench-exports-"))
    os.environ.update(DATABASE_URL=dsn, VAR_DIR=str(workdir / "var"), EXPORT_DIR=str(workdir))
    env = dict(os.environ)
    try:
        setup_django()
        from django.core.management import call_command
        from django.db import connection
        from staff import make_staff

        from parties.models import SubClient

        call_command("migrate", verbosity=0)
        subs = [
            SubClient.objects.create(flashfx_id=f"SCBENCH{i}", full_name=f"Sub-client {i}").pk
            for i in range(30)
        ]
        ops = [make_staff("operator", f"bench-op{i}").pk for i in range(6)]
        rng = random.Random(args.seed)
        print(f"database {database}", flush=True)
        fill(min(SMALL, args.rows), 1, subs, ops, rng)
        small_dash = dashboard(f"{SMALL:,} deposits")
        if args.rows > SMALL:
            fill(args.rows - SMALL, SMALL + 1, subs, ops, rng)
        large_dash = dashboard(f"{args.rows:,} deposits")
        sql = copy_sql()
        connection.close()

        results = {}
        for kind in ("psql", "csv", "xlsx", "csv.writer"):
            results[kind] = run_psql(sql, dsn) if kind == "psql" else run_measure(kind, env)
            r = results[kind]
            extra = f", peak RSS +{r['rss_growth_mb']:.1f} MB" if "rss_growth_mb" in r else ""
            print(f"  {kind:>10}: {r['seconds']:7.2f} s{extra}", flush=True)
        rows = results["csv"]["rows"]
        assert rows == results["xlsx"]["rows"] == results["csv.writer"]["rows"] == args.rows, (
            results
        )

        def rate(kind: str) -> float:
            return rows / results[kind]["seconds"]

        csv_ratio = rate("csv") / rate("psql")
        xlsx_ratio = rate("xlsx") / rate("csv.writer")
        print(f"\n{rows:,} deposits (machine: {os.cpu_count()} cores)")
        print(f"  CSV  (COPY)   {rate('csv'):>10,.0f} rows/s   psql \\copy {rate('psql'):>10,.0f} rows/s"
              f"   {csv_ratio:.2f}x (goal >= {GOAL_CSV}x: {'met' if csv_ratio >= GOAL_CSV else 'MISSED'})")  # fmt: skip
        print(f"  XLSX          {rate('xlsx'):>10,.0f} rows/s   csv.writer  {rate('csv.writer'):>10,.0f} rows/s"
              f"   {xlsx_ratio:.3f}x (goal >= {GOAL_XLSX}x: {'met' if xlsx_ratio >= GOAL_XLSX else 'MISSED'})")  # fmt: skip
        missed = csv_ratio < GOAL_CSV or xlsx_ratio < GOAL_XLSX
        for kind in ("csv", "xlsx", "csv.writer"):
            growth = results[kind]["rss_growth_mb"]
            ours = kind != "csv.writer"
            verdict = ("met" if growth < GOAL_RSS_MB else "MISSED") if ours else "reference"
            missed |= ours and growth >= GOAL_RSS_MB
            print(f"  peak RSS growth {kind:>10}: {growth:6.1f} MB ({verdict})")
        print(f"  XLSX file: {results['xlsx']['bytes'] / 1e6:.1f} MB")
        if small_dash and large_dash:
            (q1, s1), (q2, s2) = small_dash, large_dash
            same = q1 == q2
            within = s2 <= 1.5 * s1
            print(f"  dashboard: {q1} -> {q2} queries ({'same' if same else 'DIFFERENT'}), "
                  f"{s2 / s1:.2f}x time (goal <= 1.5x: {'met' if within else 'MISSED'})")  # fmt: skip
            missed |= not (same and within)
        else:
            print("  dashboard: bench/dashboard.py not there (measure_dashboard() hook unused)")
        if missed:
            sys.exit(1)
    finally:
        from django.db import connections

        connections.close_all()
        with psycopg.connect(f"{args.postgres}/postgres", autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        import shutil

        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
