"""Dashboard benchmark: the page's query count and render time at 1,000 deposits and at 1,000,000.

    .venv/bin/python bench/dashboard.py [--small 1000] [--rows 1000000] [--repeat 7]
        [--postgres postgresql://postgres@127.0.0.1:5432] [--keep]

`measure_dashboard() -> (queries, seconds)` renders / through django.test.Client for a signed-in
member (an approver, created if missing: approvals waiting for them are part of the page) against
whatever database Django is set up on, and answers the number of SQL queries of one render and
the median time of `repeat` renders after a warm-up. bench/exports.py calls it on its own
million rows.

main() creates its own PostgreSQL database (bench_dashboard_<pid>, dropped at the end unless
--keep), migrates it, and fills it with generate_series (INSERT ... SELECT, in the database)
as production would look: deposits received over two years up to now, stored in the order they arrived as
production's are (the last three days still
new to review, one in a thousand flagged, 1% refunded a day later, 1% cancelled), a tenth as
many payouts and a hundredth as many payments, one webhook event per deposit (0.1% failed, 0.1%
quarantined, 0.01% dead), approvals (a hundredth, the last day's pending), expected payments
(a tenth, matched, with the last week's unmatched), a drift item per thousand deposits, and a
month of balance snapshots and sync runs (the same at both sizes: they grow with time, not with
deposits). The money roll-up is rebuilt from those rows (rebuild_money_rollup), as for rows
written outside the apply rule. First --small deposits, measured; then the rest up to --rows,
VACUUM ANALYZE, measured again. Goal: the same query count, and a time within 1.5x.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(BASE_DIR))

MEMBER = "bench-dashboard"
MAKER = "bench-dashboard-maker"


def _member():
    """An approver with a verified device, and an operator whose payouts wait for them."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django_otp.plugins.otp_totp.models import TOTPDevice

    users = get_user_model()
    for name, role in ((MEMBER, "approver"), (MAKER, "operator")):
        user, made = users.objects.get_or_create(username=name, defaults={"email": f"{name}@x"})
        if made:
            user.set_unusable_password()
            user.save()
            user.groups.add(Group.objects.get(name=role))
            TOTPDevice.objects.create(user=user, name="bench", confirmed=True)
    return users.objects.get(username=MEMBER)


def signed_in_client():
    """A test client past sign-in and the one-time code, as tests/staff.py's sign_in does."""
    from django.conf import settings
    from django.test import Client
    from django_otp import DEVICE_ID_SESSION_KEY
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from backoffice import staff_sessions

    if "testserver" not in settings.ALLOWED_HOSTS:
        settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
    user = _member()
    client = Client()
    client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = TOTPDevice.objects.get(user=user).persistent_id
    session[staff_sessions.OTP_VERIFIED_AT] = time.time()
    session.save()
    return client


def measure_dashboard(repeat: int = 7) -> tuple[int, float]:
    """(SQL queries of one render of /, median seconds of `repeat` renders) for a signed-in
    approver, against the database Django is set up on."""
    from django.db import connection

    client = signed_in_client()
    response = client.get("/")  # warm-up: templates compiled, connections open
    if response.status_code != 200:
        raise RuntimeError(f"/ answered {response.status_code}")
    captured = []

    def count(execute, sql, params, many, context):
        captured.append(sql)
        return execute(sql, params, many, context)

    # An execute wrapper sees every query whatever DEBUG says (the queries log is DEBUG's, and
    # every request clears it).
    with connection.execute_wrapper(count):
        client.get("/")
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        client.get("/")
        times.append(time.perf_counter() - started)
    return len(captured), statistics.median(times)


# --- Filling a database of its own ------------------------------------------------------------

DEPOSITS = """
INSERT INTO payments_deposit (flashfx_id, external_id, raw, anomaly, created_at, updated_at,
    flashfx_status, currency, external_reference, sub_client_flashfx_id, flashfx_created_at,
    status_message, amount, total_fee, sender_account_name, sender_bank_name, sender_bsb,
    sender_account_no, refund_reason, rail, rail_service, review_state, third_party,
    refunded_at, refund_amount)
SELECT 'B' || lpad(g::text, 10, '0'), '', '{}', '', t + interval '3 s', now(), st, 'AUD',
    'REF ' || g, '', t, '', amt, 0.50, 'Payer ' || mod(g, 5000), '', '062000',
    (10000000 + g)::text, '', 'NPP', '',
    CASE WHEN st IN ('REFUNDED', 'CANCELLED') THEN 'rejected'
         WHEN t > now() - interval '3 days' THEN 'new'
         WHEN mod(g, 1000) = 7 THEN 'flagged' ELSE 'accepted' END,
    false,
    CASE WHEN st = 'REFUNDED' THEN t + interval '1 day' END,
    CASE WHEN st = 'REFUNDED' THEN amt END
FROM (SELECT row_number() OVER (ORDER BY t) + %(a)s - 1 AS g, t, amt, st FROM (
      SELECT g, now() - random() * interval '730 days' AS t,
             round((1 + random() * 5000)::numeric, 2) AS amt,
             CASE mod(g, 100) WHEN 0 THEN 'REFUNDED' WHEN 1 THEN 'CANCELLED' ELSE 'CONFIRMED' END AS st
      FROM generate_series(%(a)s, %(b)s) g)r ORDER BY t) s
"""
WITHDRAWALS = """
INSERT INTO payments_withdrawal (flashfx_id, external_id, raw, anomaly, created_at, updated_at,
    flashfx_status, currency, external_reference, sub_client_flashfx_id, flashfx_created_at,
    status_message, reject_code, amount, total_fee, recipient_flashfx_id, recipient_name,
    recipient_bsb, recipient_account_no, recipient_payid, refund_reason, rail, rail_service)
SELECT 'W' || lpad(g::text, 10, '0'), '', '{}', '', t, now(),
    CASE mod(g, 50) WHEN 0 THEN 'FAILED' ELSE 'CONFIRMED' END, 'AUD', 'PAY ' || g, '', t, '', '',
    round((1 + random() * 8000)::numeric, 2), 1.10, '', 'Recipient ' || mod(g, 300), '062000',
    '12345678', '', '', 'NPP', ''
FROM (SELECT g, now() - random() * interval '730 days' AS t
      FROM generate_series(%(a)s, %(b)s) g ORDER BY t) s
"""
PAYMENTS = """
INSERT INTO payments_payment (flashfx_id, external_id, raw, anomaly, created_at, updated_at,
    flashfx_status, external_reference, sub_client_flashfx_id, flashfx_created_at, currency,
    from_currency, to_currency, from_amount, to_amount, recipient_flashfx_id, recipient_name)
SELECT 'P' || lpad(g::text, 10, '0'), '', '{}', '', t, now(), 'CLOSED', 'FX ' || g, '', t, 'AUD',
    'AUD', 'USD', a, round(a * 0.65, 2), '', 'Supplier ' || mod(g, 50)
FROM (SELECT g, now() - random() * interval '730 days' AS t,
             round((10 + random() * 20000)::numeric, 2) AS a
      FROM generate_series(%(a)s, %(b)s) g) s
"""
EVENTS = """
INSERT INTO webhooks_inboundevent (accepted, request_id, status, reason, event, entity_id, body,
    body_sha256, body_size, headers, received_at, attempts, last_error, outcome)
SELECT st <> 'quarantined', 'req-' || g, st,
    CASE WHEN st = 'quarantined' THEN 'bad_signature' ELSE '' END, 'deposit_confirmed',
    'B' || g, ''::bytea, repeat('0', 64), 200, '{}', t, 1, '', ''
FROM (SELECT g, now() - random() * interval '730 days' AS t, CASE WHEN mod(g, 10000) = 3 THEN 'dead' WHEN mod(g, 1000) = 1 THEN 'failed'
                     WHEN mod(g, 1000) = 2 THEN 'quarantined' ELSE 'processed' END AS st
      FROM generate_series(%(a)s, %(b)s) g ORDER BY t) s
"""
APPROVALS = """
INSERT INTO payments_approval (code, action, permission, summary, payload, payload_hash, state,
    requested_by_id, requested_at, expires_at, decision_note, required)
SELECT md5(g::text)::uuid, 'payout.send', 'payments.approve_payout', 'Payout ' || g, '{}',
    repeat('0', 64), CASE WHEN t > now() - interval '1 day' THEN 'pending' ELSE 'approved' END,
    %(maker)s, t, t + interval '2 days', '', 1
FROM (SELECT g, now() - random() * interval '730 days' AS t
      FROM generate_series(%(a)s, %(b)s) g) s
"""
EXPECTED = """
INSERT INTO payments_expectedpayment (code, payer_name, amount, currency, reference, due_on,
    source, created_by_id, created_at, deposit_id)
SELECT md5('e' || d.id)::uuid, d.sender_account_name, d.amount, 'AUD', d.external_reference,
    (d.flashfx_created_at - interval '1 day')::date, 'form', %(maker)s, d.flashfx_created_at,
    CASE WHEN d.flashfx_created_at < now() - interval '7 days' THEN d.id END
FROM payments_deposit d
WHERE d.id BETWEEN %(a)s AND %(b)s AND d.id %% 10 = 0
"""


def fill(first: int, last: int, maker_id: int) -> None:
    """Deposits first..last and what comes with them (see the module's docstring)."""
    from django.db import connection

    with connection.cursor() as c:
        c.execute("SELECT coalesce(max(id), 0) FROM payments_deposit")
        before = c.fetchone()[0]
        c.execute(DEPOSITS, {"a": first, "b": last})
        c.execute(WITHDRAWALS, {"a": first // 10 + 1, "b": last // 10})
        c.execute(PAYMENTS, {"a": first // 100 + 1, "b": last // 100})
        c.execute(EVENTS, {"a": first, "b": last})
        c.execute(APPROVALS, {"a": first // 100 + 1, "b": last // 100, "maker": maker_id})
        c.execute(EXPECTED, {"a": before + 1, "b": before + last - first + 1, "maker": maker_id})
        c.execute(
            "INSERT INTO mirrors_driftreport (window_start, window_end, entities, compared,"
            " started_at, error) VALUES (now(), now(), '[]', 0, now(), '') RETURNING id"
        )
        report = c.fetchone()
        c.execute(
            "INSERT INTO mirrors_driftitem (report_id, entity, flashfx_id, kind, differences,"
            " resolution, note, settled, settled_note) SELECT %s, 'deposits', 'X' || g,"
            " 'missing_remotely', '{}', CASE WHEN g %% 4 = 0 THEN 'flagged' ELSE 'applied' END,"
            " '', '', ''"
            " FROM generate_series(%s, %s) g",
            [report[0], first // 1000 + 1, last // 1000],
        )


def fill_time_series() -> None:
    """A month of balance snapshots (every 15 min) and sync runs (every 5 min, six entities)."""
    from django.db import connection

    with connection.cursor() as c:
        c.execute(
            "INSERT INTO mirrors_balancesnapshot (currency, cleared, pending, taken_at)"
            " SELECT 'AUD', round((500000 + random() * 10000)::numeric, 2), 120.00, t"
            " FROM generate_series(now() - interval '30 days', now(), interval '15 min') t"
        )
        c.execute(
            "INSERT INTO mirrors_syncrun (entity, mode, until, status, windows, fetched, created,"
            " updated, unchanged, stale, refused, error, changed_ids, silent_ids, started_at,"
            " finished_at) SELECT e, 'incremental', t, 'succeeded', 1, 0, 0, 0, 0, 0, 0, '',"
            " '[]', '[]', t, t + interval '2 s'"
            " FROM generate_series(now() - interval '30 days', now(), interval '5 min') t,"
            " unnest(array['subclients','senders','recipients','deposits','withdrawals',"
            "'payments']) e"
        )


def rollup() -> None:
    """The money roll-up of rows written here outside the apply rule, as the migration and
    `manage.py rebuild_money_rollup` compute it (production keeps it change by change)."""
    from mirrors import rollup as money

    money.rebuild()


def vacuum() -> None:
    from django.db import connection

    with connection.cursor() as c:
        c.execute("VACUUM ANALYZE")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--small", type=int, default=1_000)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432")
    parser.add_argument("--keep", action="store_true", help="keep the database at the end")
    args = parser.parse_args()

    import psycopg

    database = f"bench_dashboard_{os.getpid()}"
    with psycopg.connect(f"{args.postgres}/postgres", autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{database}"')
    os.environ["DATABASE_URL"] = f"{args.postgres}/{database}"
    os.environ.setdefault("DEBUG", "true")  # the development secrets; DEBUG is off again below
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "backoffice.settings")
    try:
        import django

        django.setup()
        from django.conf import settings
        from django.core.management import call_command
        from django.db import connection

        settings.DEBUG = False  # DEBUG keeps every SQL statement in memory
        call_command("migrate", verbosity=0, interactive=False)
        _member()
        from django.contrib.auth import get_user_model

        maker_id = get_user_model().objects.get(username=MAKER).pk
        fill_time_series()
        started = time.perf_counter()
        fill(1, args.small, maker_id)
        rollup()
        vacuum()
        small = measure_dashboard(args.repeat)
        print(
            f"{args.small:>9,} deposits: {small[0]} queries, {small[1] * 1000:.1f} ms "
            f"(median of {args.repeat})",
            flush=True,
        )
        fill(args.small + 1, args.rows, maker_id)
        rollup()
        vacuum()
        filled = time.perf_counter() - started
        large = measure_dashboard(args.repeat)
        print(
            f"{args.rows:>9,} deposits: {large[0]} queries, {large[1] * 1000:.1f} ms "
            f"(median of {args.repeat}; filling took {filled:.0f} s)"
        )
        ratio = large[1] / small[1]
        same = "same" if large[0] == small[0] else "DIFFERENT"
        print(
            f"ratio: {ratio:.2f}x the time, {same} query count "
            f"(goal: same count, time within 1.5x: {'met' if same == 'same' and ratio <= 1.5 else 'NOT met'})"
        )
        connection.close()
    finally:
        if not args.keep:
            with psycopg.connect(f"{args.postgres}/postgres", autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        else:
            print(f"kept database {database}")


if __name__ == "__main__":
    main()
