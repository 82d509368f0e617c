"""Payouts benchmark: 1,000 approved payouts through the real pipeline against 1,000 direct calls.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/wt_payouts_bench \\
    REDIS_URL=redis://127.0.0.1:6379/14 \\
        .venv/bin/python bench/payouts.py [--payouts 1000] [--workers 2]

PostgreSQL and Redis only: the pipeline is production's (Celery on Redis, row locks on
PostgreSQL). DATABASE_URL's database is dropped and created again, and REDIS_URL's database is
the workers' broker, its Celery keys deleted first: give both to the bench alone.

Starts its own sandbox (its own SQLite file, webhooks off, nothing moving by itself), then, in
one run:

- direct: --payouts `FlashFXClient.create_withdrawal` calls, each a payout's request
  (payments.services.payouts.withdrawal_input: its own externalId and idempotencyKey), made by
  --workers threads sharing one client: the floor any pipeline pays, at the same concurrency;
- pipeline: --payouts payouts created by an operator, then, round by round, approved by an
  approver through the services exactly as the Approve button does (the approving transaction
  writes the outbox row; payments.tasks.payout_enqueue publishes payout_submit after commit)
  and sent by --workers real `celery -A backoffice worker` processes (concurrency 1, prefetch
  1, the project's settings with DEBUG off), which claim, call and record them in groups of up
  to PAYOUT_SEND_GROUP. Timed from the publish until every payout of the round is recorded
  SUBMITTED and the workers are idle; the workers' start-up and the approvals are printed
  apart.

--workers defaults to 2: `make run`'s worker runs with concurrency 2 (Procfile). Rounds
alternate direct calls and the pipeline, so that a machine slowed by something else slows both
alike. Prints both times, their ratio (goal: pipeline <= 1.3x direct) and the sandbox's count
of withdrawals under the payouts' codes (exactly --payouts, one per code); exits 1 if either
goal is missed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlsplit

import httpx

BASE_DIR = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(BASE_DIR))
GOAL = 1.3
AMOUNT = Decimal("10.00")
RECIPIENT = {
    "accountIdType": "BSB",
    "currency": "AUD",
    "bsb": "062000",
    "accountNo": "12345678",
    "firstName": "Mia",
    "lastName": "Ng",
}
SENDER = {
    "companyName": "Demo Company Pty Ltd",
    "email": "accounts@demo.example",
    "address": {"street": "1 Martin Place", "suburb": "Sydney", "country": "AU"},
}
# What kombu's Redis transport and Celery's workers keep in their broker database.
BROKER_KEY_PATTERNS = ("celery*", "_kombu.*", "unacked*", "*.pidbox*", "celeryev*")


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
        "SANDBOX_STEP_DELAY": "86400",  # withdrawals stay where createWithdrawal put them
        "SANDBOX_LOGIN_INTERVAL": "0",
        "SANDBOX_LOG_LEVEL": "WARNING",
    }
    log = (workdir / "sandbox.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "flashfx.sandbox", "serve", "--port", str(port), "--no-seed"],
        cwd=BASE_DIR,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
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


def fresh_database(url: str) -> None:
    """DATABASE_URL's database, dropped and created again."""
    import psycopg

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    if not name or name == "postgres":
        raise SystemExit("DATABASE_URL must name a database of the bench's own")
    with psycopg.connect(
        host=parts.hostname or "127.0.0.1",
        port=parts.port or 5432,
        user=parts.username or "postgres",
        password=parts.password,
        dbname="postgres",
        autocommit=True,
    ) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')


def clear_broker(url: str) -> None:
    import redis

    with redis.Redis.from_url(url) as client:
        for pattern in BROKER_KEY_PATTERNS:
            for key in client.scan_iter(match=pattern):
                client.delete(key)


def bench_databases(script: str) -> tuple[str, str]:
    """DATABASE_URL and REDIS_URL, which must name a PostgreSQL and a Redis database."""
    database_url = os.environ.get("DATABASE_URL", "")
    redis_url = os.environ.get("REDIS_URL", "")
    if not database_url.startswith("postgres") or not redis_url:
        raise SystemExit(
            f"{script} needs DATABASE_URL=postgres://... and REDIS_URL=redis://..., "
            "each a database of the bench's own (see its docstring)"
        )
    return database_url, redis_url


def set_up(
    workdir: Path, url: str, token_key: str, database_url: str, redis_url: str, **env: str
) -> None:
    """Django set up against the sandbox at `url` (and `env`), on a fresh database (migrated,
    the roles made) and an empty broker; DEBUG off in this process from then on."""
    os.environ |= {
        "DEBUG": "true",
        "VAR_DIR": str(workdir / "var"),
        "DJANGO_SETTINGS_MODULE": "backoffice.settings",
        "FLASHFX_API_URL": url,
        "FLASHFX_TOKEN_KEY": token_key,
        "LOG_LEVEL": "WARNING",
        **env,
    }
    fresh_database(database_url)
    clear_broker(redis_url)
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    from backoffice.roles import ensure_roles

    call_command("migrate", verbosity=0)
    ensure_roles()
    settings.DEBUG = False  # DEBUG keeps every SQL statement in memory


def member(role: str, name: str = ""):
    """A staff member with this role (Django set up)."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    user = get_user_model().objects.create_user(f"bench-{name or role}", password=None)
    user.groups.add(Group.objects.get(name=role))
    return get_user_model().objects.get(pk=user.pk)  # permissions read afresh


def stop(
    workers: list[subprocess.Popen], sandbox: subprocess.Popen, redis_url: str, token_key: str
):
    """Whatever still runs killed, the sandbox stopped, the broker and the token cleared."""
    for w in workers:
        if w.poll() is None:
            os.killpg(w.pid, signal.SIGKILL)
            w.wait(timeout=10)
    sandbox.terminate()
    sandbox.wait(timeout=20)
    clear_broker(redis_url)
    drop_token(redis_url, token_key)


def fund(url: str, amount: Decimal) -> None:
    """Money on the sandbox's AUD balance: a deposit forced to CONFIRMED."""
    funding = httpx.post(
        url + "_sandbox/deposits",
        json={
            "amount": str(amount),
            "currency": "AUD",
            "externalReference": "bench funding",
            "sender": {"accountName": "Bench", "bsb": "062000", "accountNo": "11112222"},
        },
    )
    funding.raise_for_status()
    httpx.post(
        url + f"_sandbox/deposits/{funding.json()['id']}/advance", json={"to": "CONFIRMED"}
    ).raise_for_status()


def mirrored_parties(client):
    """RECIPIENT and SENDER made at the sandbox and mirrored here (Django set up)."""
    from django.utils import timezone

    from mirrors.registry import registry
    from parties.models import Recipient, Sender

    wire = client.recipient(client.create_recipient(RECIPIENT).id)
    registry.get("recipients").apply(wire, observed_at=timezone.now(), source="sync")
    recipient = Recipient.objects.get(flashfx_id=wire.id)
    wire = client.sender(client.create_sender(SENDER).id)
    registry.get("senders").apply(wire, observed_at=timezone.now(), source="sync")
    return recipient, Sender.objects.get(flashfx_id=wire.id)


def worker_env() -> dict[str, str]:
    """The workers run as in production: DEBUG off (so every variable it then requires is
    given, with this process's values), logging at INFO (Django set up)."""
    from django.conf import settings

    env = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")}
    env |= {
        "DEBUG": "false",
        "LOG_LEVEL": "INFO",
        "SECRET_KEY": settings.SECRET_KEY,
        "ALLOWED_HOSTS": "localhost",
        "FLASHFX_EMAIL": settings.FLASHFX_EMAIL,
        "FLASHFX_PASSWORD": settings.FLASHFX_PASSWORD,
        "FLASHFX_WEBHOOK_SECRET": settings.FLASHFX_WEBHOOK_SECRET,
        "AUDIT_HMAC_KEY": settings.AUDIT_HMAC_KEY,
    }
    return env


def start_worker(workdir: Path, env: dict[str, str], n: int) -> subprocess.Popen:
    log = (workdir / f"worker-{n}.log").open("w")
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "backoffice",
            "worker",
            "--pool=prefork",
            "--concurrency=1",
            "--prefetch-multiplier=1",
            "--loglevel=INFO",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "-n",
            f"bench-{n}@%h",
        ],
        cwd=BASE_DIR,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def wait_ready(workdir: Path, workers: list[subprocess.Popen]) -> None:
    deadline = time.monotonic() + 60
    for n, worker in enumerate(workers):
        log = workdir / f"worker-{n}.log"
        while " ready." not in log.read_text(errors="replace"):
            if worker.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"worker {n} did not start: see {log}")
            time.sleep(0.1)


def wait_submitted(model, pks: list[int], workers: list[subprocess.Popen], workdir: Path) -> None:
    deadline = time.monotonic() + 300
    while model.objects.filter(pk__in=pks, state="submitted").count() < len(pks):
        if time.monotonic() > deadline or any(w.poll() is not None for w in workers):
            states = Counter(model.objects.filter(pk__in=pks).values_list("state", flat=True))
            raise SystemExit(f"the pipeline did not finish: {dict(states)} (logs: {workdir})")
        time.sleep(0.02)


def wait_idle(broker, workers: list[subprocess.Popen], workdir: Path) -> None:
    """No task waiting in the queue and none taken but unacknowledged (late acks: running)."""
    deadline = time.monotonic() + 300
    while broker.llen("celery") or broker.hlen("unacked"):
        if time.monotonic() > deadline or any(w.poll() is not None for w in workers):
            raise SystemExit(f"the workers did not finish their tasks (logs: {workdir})")
        time.sleep(0.005)


def direct_calls(client, requests: list[dict], threads: int) -> float:
    """Each request once, from `threads` threads sharing the client; the seconds it took."""
    pending = list(reversed(requests))
    lock = threading.Lock()
    failures: list[BaseException] = []

    def run() -> None:
        while True:
            with lock:
                if not pending or failures:
                    return
                request = pending.pop()
            try:
                client.create_withdrawal(request)
            except BaseException as exc:
                failures.append(exc)
                return

    workers = [threading.Thread(target=run) for _ in range(threads)]
    started = time.perf_counter()
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    elapsed = time.perf_counter() - started
    if failures:
        raise failures[0]
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--payouts", type=int, default=1000)
    parser.add_argument(
        "--workers", type=int, default=2, help="worker processes, and threads of direct calls"
    )
    parser.add_argument("--rounds", type=int, default=10, help="direct and pipeline alternate")
    args = parser.parse_args()
    database_url, redis_url = bench_databases("bench/payouts.py")

    workdir = Path(tempfile.mkdtemp(prefix="bench-payouts-"))
    sandbox, url = start_sandbox(workdir)
    token_key = f"flashfx:token:bench-{os.getpid()}"
    workers: list[subprocess.Popen] = []
    try:
        set_up(workdir, url, token_key, database_url, redis_url)
        from django.utils import timezone

        from mirrors.client import flashfx_client
        from payments import tasks
        from payments.models import Payout
        from payments.services import payouts

        maker, checker = member("operator"), member("approver")

        fund(url, AMOUNT * args.payouts * 3)
        client = flashfx_client()
        recipient, sender = mirrored_parties(client)

        def propose(reference: str) -> Payout:
            return payouts.payout_create(
                by=maker,
                recipient=recipient,
                sender=sender,
                amount=AMOUNT,
                reference=reference,
                reason="SERVICES",
            )

        # Proposed by the operator now; approved by the approver through the services round by
        # round (the approving transaction writes each outbox row, as the Approve button's
        # does), so that no round's payouts wait approved while an earlier round is timed: a
        # worker sends whatever approved payouts it finds, in groups.
        started = time.perf_counter()
        proposed = [propose(f"PAYOUT {i}") for i in range(args.payouts)]
        approving = time.perf_counter() - started

        # Direct: the request a payout sends (unsaved payouts), each under a code of its own.
        requests = []
        for i in range(args.payouts):
            shape = Payout(
                code=f"DIRECT-{i:05d}",
                recipient=recipient,
                sender=sender,
                amount=AMOUNT,
                reference=f"DIRECT {i}",
                reason="SERVICES",
            )
            requests.append({**payouts.withdrawal_input(shape), "amount": AMOUNT})
        client.create_withdrawal({**requests[0], "externalId": "WARM", "idempotencyKey": "WARM"})

        env = worker_env()
        launched = time.perf_counter()
        workers = [start_worker(workdir, env, n) for n in range(args.workers)]
        wait_ready(workdir, workers)
        booting = time.perf_counter() - launched

        # Rounds: a slice of direct calls, then the same number of payouts through the
        # pipeline, so that a machine slowed by something else slows both alike.
        direct = pipeline = 0.0
        size = -(-args.payouts // args.rounds)
        import redis

        broker = redis.Redis.from_url(redis_url)
        approved: list[Payout] = []
        for first in range(0, args.payouts, size):
            started = time.perf_counter()
            batch = [
                payouts.payout_approve(payout=p, by=checker) for p in proposed[first : first + size]
            ]
            approving += time.perf_counter() - started
            approved += batch
            direct += direct_calls(client, requests[first : first + size], args.workers)
            since = timezone.now()
            for payout in batch:
                tasks.payout_enqueue(payout)  # the Approve button's publish, after its commit
            pks = [p.pk for p in batch]
            wait_submitted(Payout, pks, workers, workdir)
            # Until the workers are idle too: the round's remaining tasks, whose payouts went in
            # an earlier task's group, are work of this round (and must not send the next
            # round's payouts while its direct calls are timed).
            wait_idle(broker, workers, workdir)
            pipeline += (timezone.now() - since).total_seconds()
        for w in workers:  # a graceful stop: nothing is running any more
            w.send_signal(signal.SIGTERM)
        for w in workers:
            w.wait(timeout=60)

        # Where the time goes: the same service run in this process, no Celery, on a tenth as
        # many payouts approved together (so sent in groups of PAYOUT_SEND_GROUP), and a
        # payout sent alone.
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        sample = [
            payouts.payout_approve(payout=propose(f"IN PROCESS {i}"), by=checker)
            for i in range(max(1, args.payouts // 10))
        ]
        boxes = [p.outbox.get().pk for p in sample]
        started = time.perf_counter()
        with CaptureQueriesContext(connection) as grouped:
            for pk in boxes:
                payouts.payout_submit(pk)
        in_process = (time.perf_counter() - started) / len(boxes)
        alone = payouts.payout_approve(payout=propose("IN PROCESS ALONE"), by=checker)
        with CaptureQueriesContext(connection) as single:
            payouts.payout_submit(alone.outbox.get().pk)
        sample.append(alone)

        measured = {p.pk for p in approved}
        codes = set(Payout.objects.filter(pk__in=measured).values_list("code", flat=True))
        assert Payout.objects.filter(
            pk__in=[p.pk for p in sample], state="submitted"
        ).count() == len(sample)
        held = Counter(w.external_id for w in client.withdrawals() if w.external_id in codes)
        at_flashfx = sum(held.values())
        twice = [code for code, n in held.items() if n > 1]
        ratio = pipeline / direct
        print(
            f"{args.payouts} payouts in {-(-args.payouts // size)} rounds, {args.workers} worker "
            f"process(es) and as many threads of direct calls, PostgreSQL + Redis, sandbox on "
            "loopback"
        )
        print(
            f"  direct create_withdrawal     {direct:7.2f} s   ({args.payouts / direct:6.0f} calls/s)"
        )
        print(
            f"  pipeline publish..submitted  {pipeline:7.2f} s   ({args.payouts / pipeline:6.0f} payouts/s)"
        )
        print(f"  ratio pipeline / direct      {ratio:7.2f}x   (goal <= {GOAL}x)")
        print(
            f"  per payout and thread/worker: direct call "
            f"{direct / args.payouts * 1000 * args.workers:.0f} ms, "
            f"in this process (no Celery) {in_process * 1000:.0f} ms with "
            f"{len(grouped.captured_queries) / len(boxes):.1f} SQL statements, through a worker "
            f"{pipeline / args.payouts * 1000 * args.workers:.0f} ms; a payout sent alone: "
            f"{len(single.captured_queries)} SQL statements"
        )
        print(
            f"  (not timed: proposing and approving them {approving:.2f} s; "
            f"starting the workers {booting:.2f} s)"
        )
        print(
            f"  sandbox withdrawals under the payouts' codes: {at_flashfx} for {len(codes)} payouts"
            f" (expected exactly {args.payouts}, one each; {len(twice)} codes held twice)"
        )
        ok = ratio <= GOAL and at_flashfx == args.payouts == len(held) and not twice
        print("  OK" if ok else "  GOAL MISSED")
        client.logout()
        client.close()
        result = 0 if ok else 1
    finally:
        stop(workers, sandbox, redis_url, token_key)
    shutil.rmtree(workdir, ignore_errors=True)  # kept (with the logs) when something failed
    return result


def drop_token(redis_url: str, key: str) -> None:
    import redis

    with redis.Redis.from_url(redis_url) as client:
        client.delete(key, f"{key}:login-lock")


if __name__ == "__main__":
    sys.exit(main())
