"""Deposit queue benchmark: the real view at 1,000 rows against the same pages at 1,000,000.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/wt_queue_bench \\
        .venv/bin/python bench/deposit_queue.py [--rows 1000000] [--small 1000] [--repeat 30]

PostgreSQL only (DATABASE_URL; SQLite is refused: the queue's indexes and its trigram search
are PostgreSQL's, and a million rows is not what the embedded default is for). DATABASE_URL's
database gets the million rows, a second one beside it (<name>_small) the thousand; both are
created if missing, both are migrated and their deposits emptied first: use databases of their own.
Requests alternate between the two, five at a time, so a busy machine slows both alike.

Fills the table with COPY (its secondary indexes dropped and rebuilt around the load, as a
restore would), with a spread like production's: mostly CONFIRMED, some INITIALISED, REVIEWING,
REFUNDING, REFUNDED, CANCELLED; a third to sub-clients; review states new/matched/accepted/
flagged/rejected; a fifth assigned to one of six operators; received times over two years, a
few with no FlashFX time. Then ANALYZE, and times through django.test.Client, signed in as an
operator, p50 and p95 over --repeat requests each:

- first: /deposits/ (newest first);
- deep: the page 500 pages down (its cursor built from the row at that boundary; at the small
  size, the last full page, the deepest there is);
- filtered: /deposits/?status=REVIEWING&review=new;
- search name: /deposits/?q=<a surname> (many matches); search ref: ?q=<the reference of one
  recent invoice-style deposit> (one).

Goal: each at --rows within 1.5x of its time at --small, and the first page's p95 under 150 ms.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from urllib.parse import quote

BASE_DIR = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(BASE_DIR))

FIRST = ["Ava", "Liam", "Mia", "Noah", "Zoe", "Jack", "Isla", "Leo", "Ruby", "Oscar"] * 5
LAST = [
    f"{s}{i}"
    for i in range(4)
    for s in (
        "Nguyen",
        "Smith",
        "Ngata",
        "Kowal",
        "Patel",
        "Brown",
        "Wilson",
        "Taylor",
        "Chen",
        "Kelly",
    )
]
STATUSES = [("CONFIRMED", 85), ("INITIALISED", 3), ("REVIEWING", 2), ("REFUNDING", 1),
            ("REFUNDED", 3), ("CANCELLED", 1), ("CONFIRMED", 5)]  # fmt: skip
REVIEWS = [("new", 30), ("matched", 30), ("accepted", 35), ("flagged", 4), ("rejected", 1)]
START = datetime(2024, 12, 1, tzinfo=UTC)
SPAN_SECONDS = 2 * 365 * 86400
PAGE = 50
DEEP = 500


# What payers type: invoice numbers of many billers, names, free words. (Every reference
# sharing one prefix, e.g. all "INV-000...", would make each of its trigrams sit in every row.)
PREFIXES = ["INV", "SI", "PO", "ORD", "BILL", "REF", "TX", "ACC", "CUST", "PAY"]
WORDS = [
    "rent",
    "deposit",
    "invoice",
    "fees",
    "balance",
    "order",
    "topup",
    "loan",
    "school",
    "bond",
]


def reference(i: int, rng: random.Random) -> str:
    kind = i % 4
    if kind == 0:
        return f"{rng.choice(WORDS)} {rng.choice(WORDS)} {rng.randrange(1, 99)}"
    if kind == 1:
        return f"{rng.choice(FIRST)} {rng.randrange(100, 99999)}"
    return f"{rng.choice(PREFIXES)}-{rng.randrange(10**5, 10**9)}"


def weighted(pairs):
    values, weights = zip(*pairs, strict=True)
    return values, weights


def setup_django():
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://")):
        sys.exit(
            "bench/deposit_queue.py needs PostgreSQL: set DATABASE_URL=postgres://... to a "
            "database of its own (e.g. wt_queue_bench). SQLite is not measured here."
        )
    os.environ.setdefault("DEBUG", "true")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "backoffice.settings")
    import django

    django.setup()
    from django.conf import settings

    settings.DEBUG = False  # DEBUG keeps every SQL statement in memory
    # What django.test.Client needs, and no more: setup_test_environment() would also hook
    # every template render to copy its context for assertions, a cost production never pays.
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]


def secondary_indexes(cursor) -> list[tuple[str, str]]:
    cursor.execute(
        "SELECT i.indexname, i.indexdef FROM pg_indexes i WHERE i.tablename = 'payments_deposit'"
        " AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname)"
        " AND i.indexdef NOT LIKE 'CREATE UNIQUE%'"
    )
    return cursor.fetchall()


def fill(n: int, *, start_seq: int, sub_client_ids, assignee_ids, rng: random.Random) -> None:
    """COPY n more deposits in; secondary indexes are dropped first and rebuilt after."""
    from django.db import connection

    from payments.models import Deposit

    fields = [f for f in Deposit._meta.concrete_fields if f.column != "id"]
    columns = [f.column for f in fields]
    statuses, status_w = weighted(STATUSES)
    reviews, review_w = weighted(REVIEWS)
    now = datetime.now(UTC)
    with connection.cursor() as c:
        indexes = secondary_indexes(c)
        for name, _ in indexes:
            c.execute(f'DROP INDEX "{name}"')
        raw = c.connection  # psycopg's own connection, for COPY
        sql = f"COPY payments_deposit ({', '.join(columns)}) FROM STDIN"
        with raw.cursor() as pc, pc.copy(sql) as copy:
            for i in range(start_seq, start_seq + n):
                status = rng.choices(statuses, status_w)[0]
                review = rng.choices(reviews, review_w)[0]
                if status in ("REFUNDING", "REFUNDED"):
                    review = "rejected"
                sub = rng.choice(sub_client_ids) if rng.random() < 0.33 else None
                received = START + timedelta(seconds=rng.randrange(SPAN_SECONDS))
                row = {
                    "flashfx_id": f"D{i:09d}",
                    "external_id": f"ext-{i}" if rng.random() < 0.5 else "",
                    "raw": "{}",
                    "anomaly": "",
                    "created_at": received + timedelta(seconds=3),
                    "updated_at": now,
                    "flashfx_status": status,
                    "currency": "AUD",
                    "external_reference": reference(i, rng),
                    "sub_client_id": sub,
                    "sub_client_flashfx_id": f"SC{sub}" if sub else "",
                    "flashfx_created_at": received if rng.random() > 0.01 else None,
                    "status_message": "",
                    "amount": Decimal(rng.randrange(100, 5_000_000)) / 100,
                    "sender_account_name": f"{rng.choice(FIRST)} {rng.choice(LAST)}",
                    "sender_bank_name": "",
                    "sender_bsb": f"{rng.randrange(10, 99)}{rng.randrange(1000, 9999)}",
                    "sender_account_no": f"{rng.randrange(10**7, 10**9)}",
                    "refund_reason": "",
                    "rail": "NPP",
                    "rail_service": "",
                    "review_state": review,
                    "assignee_id": rng.choice(assignee_ids) if rng.random() < 0.2 else None,
                    "third_party": rng.random() < 0.03,
                }
                copy.write_row([row.get(col) for col in columns])
        for name, definition in indexes:
            c.execute(definition)
            if name == "deposit_search_trgm":  # what migration 0005 set, lost with the drop
                c.execute(f"ALTER INDEX {name} ALTER COLUMN 1 SET STATISTICS 1000")
    # As autovacuum would have by the time anyone reads a table this size: statistics, and a
    # visibility map for index-only counts. VACUUM cannot run inside a transaction block.
    with connection.cursor() as c:
        c.execute("VACUUM ANALYZE payments_deposit")


def one_reference() -> str:
    """An invoice-style reference of a recent deposit, as an operator would paste it."""
    from payments.models import Deposit

    return (
        Deposit.objects.filter(external_reference__contains="-")
        .order_by("-id")
        .values_list("external_reference", flat=True)
        .first()
    )


def boundary_cursor(offset: int) -> str:
    """The cursor of the page that starts after `offset` rows, newest first."""
    from django.db.models.functions import Coalesce

    from payments.models import Deposit
    from payments.selectors.deposits import encode_cursor

    row = (
        Deposit.objects.annotate(received=Coalesce("flashfx_created_at", "created_at"))
        .order_by("-received", "-id")
        .values("received", "id")[offset - 1]
    )
    return encode_cursor(sort="newest", key=row["received"], pk=row["id"], direction="next")


def use_database(name: str) -> None:
    """Point Django's one connection at database `name` (closed now, reopened on next use)."""
    from django.db import connections

    connections["default"].close()
    connections["default"].settings_dict["NAME"] = name


def ensure_database(name: str) -> None:
    import psycopg
    from django.db import connections

    params = dict(connections["default"].get_connection_params(), dbname="postgres")
    with psycopg.connect(**params, autocommit=True) as admin:
        if not admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            admin.execute(f'CREATE DATABASE "{name}"')


def prepare(name: str, rows: int, rng: random.Random) -> tuple[dict[str, str], int]:
    """Database `name` migrated, emptied and filled with `rows` deposits; the pages to time."""
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection
    from staff import make_staff

    from backoffice.roles import ensure_roles
    from parties.models import SubClient

    use_database(name)
    call_command("migrate", verbosity=0)
    with connection.cursor() as c:
        c.execute("TRUNCATE payments_deposit RESTART IDENTITY CASCADE")
        c.execute("DELETE FROM parties_subclient WHERE flashfx_id LIKE 'SCBENCH%%'")
    get_user_model().objects.filter(username__startswith="bench-").delete()
    ensure_roles()
    subs = [
        SubClient.objects.create(flashfx_id=f"SCBENCH{i}", full_name=f"Sub-client {i}").pk
        for i in range(30)
    ]
    operators = [make_staff("operator", f"bench-op{i}") for i in range(6)]
    t = time.perf_counter()
    fill(rows, start_seq=1, sub_client_ids=subs, assignee_ids=[o.pk for o in operators], rng=rng)
    print(f"{name}: {rows:,} deposits in {time.perf_counter() - t:.1f} s", flush=True)
    deep = min(DEEP * PAGE, rows - PAGE)
    return {
        "first page": "/deposits/",
        "deep page": f"/deposits/?cursor={boundary_cursor(deep)}",
        "filtered": "/deposits/?status=REVIEWING&review=new",
        "search name": "/deposits/?q=ngata2",
        "search ref": f"/deposits/?q={quote(one_reference())}",
    }, deep // PAGE


def signed_in_client(name: str):
    from django.contrib.auth import get_user_model
    from django.test import Client
    from staff import sign_in

    use_database(name)
    client = Client()
    sign_in(client, get_user_model().objects.get(username="bench-op0"))
    return client


def timed(client, url: str, n: int) -> list[float]:
    for _ in range(2):  # warm: the connection, the plan, the pages
        assert client.get(url).status_code == 200, url
    times = []
    for _ in range(n):
        t = time.perf_counter()
        r = client.get(url)
        times.append((time.perf_counter() - t) * 1000)
        assert r.status_code == 200, (url, r.status_code)
    return times


def p(times: list[float], q: float) -> float:
    ordered = sorted(times)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--small", type=int, default=1_000)
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--seed", type=int, default=10)
    args = parser.parse_args()
    setup_django()
    sys.path.insert(0, str(BASE_DIR / "tests"))
    from django.db import connections

    large = connections["default"].settings_dict["NAME"]
    small = f"{large}_small"
    for name in (large, small):
        ensure_database(name)
    rng = random.Random(args.seed)
    small_urls, small_deep = prepare(small, args.small, rng)
    large_urls, large_deep = prepare(large, args.rows, rng)
    clients = {small: signed_in_client(small), large: signed_in_client(large)}

    # Interleaved, a few requests at a time, so that whatever else the machine does meanwhile
    # falls on both sizes alike.
    times: dict[tuple[str, str], list[float]] = {}
    rounds = max(1, args.repeat // 5)
    for _ in range(rounds):
        for db, urls in ((small, small_urls), (large, large_urls)):
            use_database(db)
            for page, url in urls.items():
                times.setdefault((db, page), []).extend(timed(clients[db], url, 5))

    ok = True
    print(f"\ndeep page: {small_deep} pages down at {args.small:,} rows (the deepest there is), "
          f"{large_deep} at {args.rows:,}; {rounds * 5} requests each, interleaved")  # fmt: skip
    print(f"{'page':<14}{args.small:>12,} p50 / p95{args.rows:>14,} p50 / p95{'p50 ratio':>11}")
    for page in small_urls:
        s, big = times[(small, page)], times[(large, page)]
        ratio = statistics.median(big) / statistics.median(s)
        verdict = "PASS" if ratio <= 1.5 else "OVER"
        ok &= verdict == "PASS"
        print(
            f"{page:<14}{statistics.median(s):>12.1f} / {p(s, 0.95):>5.1f}"
            f"{statistics.median(big):>14.1f} / {p(big, 0.95):>5.1f}{ratio:>9.2f}x {verdict}"
        )
    first95 = p(times[(large, "first page")], 0.95)
    verdict = "PASS" if first95 < 150 else "OVER"
    ok &= verdict == "PASS"
    print(f"first page p95 at {args.rows:,} rows: {first95:.1f} ms (goal < 150 ms) {verdict}")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
