"""Webhook benchmark: POST /webhooks/flashfx/ under gunicorn, against a durable floor and a bare
view on the same server.

    .venv/bin/python bench/webhooks.py [--rounds 3] [--duration 10] [--workers 4] [--connections 16]

Needs wrk (Debian/Ubuntu: `apt-get install -y wrk`; macOS: `brew install wrk`), PostgreSQL at
--postgres (default postgresql://postgres@127.0.0.1:5432, trust auth) and Redis at --redis.

Creates its own database (bench_webhooks_<pid>), migrates it, and starts the app under gunicorn
(sync workers) on a free loopback port with DEBUG=true in the environment, for the development
secrets only: bench/webhook_settings.py turns DEBUG off again, as in production, and routes
bench/webhook_urls.py, which is the app's URLconf plus a bare view, /bench/bare/, that answers
200, and the durable floor, /bench/floor/, that stores the body by one raw INSERT into a table
of its own (bench_floor, made here) and commits before answering 200. Celery runs as in
production: REDIS_URL points at a spare Redis database (the highest empty one unless
--redis-db). With the production hand-off (--handoff coalesced, the default with
Redis) each new event costs one Redis SET NX and the first one publishes a drain task; with
--handoff per-event each new event publishes its own task. No worker runs; the queue only grows,
and the Redis database is flushed at the end.

Then interleaved rounds of --duration seconds each, after a short warm-up, all with the same
request size and signing (HMAC-SHA256 with the dev secret "sandbox-webhook-secret"):

- bare: the signed request to the bare view (what any POST pays on this server);
- floor: the same request stored by the durable floor (what any durable receipt pays);
- new events: distinct request ids, each validly signed (pre-generated, one per request, cycled
  by a wrk Lua script that refuses to reuse one);
- duplicates: one request id and body already received, repeated.

Each round is checked against the database and the queue (a new event stored and enqueued once,
a duplicate or a bare request storing nothing). Prints per kind the median requests/s and p99
latency, and the ratios, with the goals: new events >= 0.8x the floor's throughput with a p99
<= 1.5x (issue 14), >= 0.5x the bare view's with a p99 <= 2x, and duplicates no slower than
new events. gunicorn is stopped, the database dropped
and the Redis database flushed at the end, also on error or Ctrl-C.

Also printed, per round, the CPU time each part spent per request (from /proc: the gunicorn
processes, every PostgreSQL and Redis process on the machine, wrk) and how busy the machine was.
Loopback load on a small machine is CPU-bound, so throughput ratios follow the CPU-per-request
ratios; those hold when other work shares the machine, the requests/s do not.

Workers: 2 per core (4 on 2 cores). A sync worker waits on every PostgreSQL and Redis round trip
and on the commit's WAL flush, so one per core leaves the cores idle; more than 2 per core only
adds switching on cores that wrk, PostgreSQL and Redis share. On 2 cores, 2 workers gave the bare
view its best figure but the webhook its worst (0.07x), 8 did worse than 4 for both.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import json
import os
import resource
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import gunicorn
import httpx
import psycopg
import redis

BASE_DIR = Path(__file__).resolve().parents[1]
SECRET = "sandbox-webhook-secret"  # FLASHFX_WEBHOOK_SECRET's development default
WEBHOOK_PATH = "/webhooks/flashfx/"
BARE_PATH = "/bench/bare/"
FLOOR_PATH = "/bench/floor/"
WSGI_APP = "backoffice.wsgi:application"  # what production serves
KINDS = ("bare", "floor", "new", "duplicate")
ROLES = ("app", "postgres", "redis", "wrk")  # where the CPU goes, per request
LABELS = {
    "bare": "bare view",
    "floor": "floor",
    "new": "new events",
    "duplicate": "duplicates",
}
# Settings the app reads that could change what is measured: the run sets its own.
ENV_DROPPED = (
    "DJANGO_",
    "FLASHFX_",
    "DATABASE_URL",
    "REDIS_URL",
    "ALLOWED_HOSTS",
    "SECRET_KEY",
    "SECURE_",
    "TRUSTED_PROXY",
    "VAR_DIR",
    "LOG_LEVEL",
    "DEBUG",
)

# wrk script: args are a file of requests (one per line: request id, signature, body, tab
# separated), a mode and the number of wrk threads. Each thread formats its own share of the
# lines once, in init, then sends them in turn. Mode "unique" never sends a line twice: a
# thread that has sent its share counts it as `exhausted` (the run is then void); mode "cycle"
# repeats them.
WRK_LUA = r"""
local threads, created = {}, 0

function setup(thread)
  thread:set("tid", created)
  created = created + 1
  table.insert(threads, thread)
end

function init(args)
  local file, mode, nthreads = args[1], args[2], tonumber(args[3])
  unique = mode == "unique"
  queue, index, exhausted = {}, 0, 0
  local line_number = 0
  for line in io.lines(file) do
    if line_number % nthreads == tid then
      local id, signature, body = line:match("^([^\t]*)\t([^\t]*)\t(.*)$")
      queue[#queue + 1] = wrk.format("POST", nil, {
        ["Content-Type"] = "application/json",
        ["User-Agent"] = "FlashFX",
        ["flashfx-request-id"] = id,
        ["flashfx-signature"] = signature,
      }, body)
    end
    line_number = line_number + 1
  end
end

function request()
  index = index + 1
  if index > #queue then
    index = 1
    if unique then exhausted = exhausted + 1 end
  end
  return queue[index]
end

function done(summary, latency, requests)
  local exhausted = 0
  for _, thread in ipairs(threads) do exhausted = exhausted + thread:get("exhausted") end
  local e = summary.errors
  io.write(string.format(
    "RESULT requests=%d duration_us=%d p50_us=%d p99_us=%d max_us=%d connect=%d read=%d write=%d status=%d timeout=%d exhausted=%d\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    latency.max, e.connect, e.read, e.write, e.status, e.timeout, exhausted))
end
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def sign(body: bytes) -> str:
    """FlashFX's signature (docs/flashfx.md §4.4): base64 HMAC-SHA256 of the raw body."""
    return base64.b64encode(hmac.new(SECRET.encode(), body, hashlib.sha256).digest()).decode()


def event_body(entity_id: str) -> bytes:
    """A deposit_cleared event shaped like the sandbox's (flat JSON, §4.6): about 600 bytes."""
    now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    payload = {
        "event": "deposit_cleared",
        "eventScheduledAt": now,
        "id": entity_id,
        "amount": "1250.00",
        "totalFee": "0.00",
        "currency": "AUD",
        "externalReference": f"INV-{entity_id[:8].upper()}",
        "clearedAt": now,
        "statusMessage": "Cleared",
        "recipient": {
            "id": secrets.token_hex(12),
            "accountName": "Acme Trading Pty Ltd",
            "accountNumber": "123456789",
            "bsb": "062000",
        },
        "sender": {
            "id": None,
            "accountName": "Jane Citizen",
            "accountNumber": "987654321",
            "bsb": "033000",
            "reference": "April invoice",
        },
    }
    return json.dumps(payload, separators=(",", ":")).encode()


def request_line(request_id: str, body: bytes) -> str:
    return f"{request_id}\t{sign(body)}\t{body.decode()}\n"


def new_request() -> tuple[str, bytes]:
    return secrets.token_hex(12), event_body(secrets.token_hex(12))


def write_requests(path: Path, requests: list[tuple[str, bytes]]) -> Path:
    path.write_text("".join(request_line(rid, body) for rid, body in requests))
    return path


def cpu_busy_ticks() -> tuple[int, int]:
    """(busy, total) jiffies of the whole machine, from /proc/stat (0, 0 elsewhere)."""
    try:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except OSError:
        return 0, 0
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return sum(fields) - idle, sum(fields)


def cpu_by_role(server_pid: int) -> dict[int, tuple[str, int]]:
    """pid -> (role, CPU jiffies so far) for the server's processes, PostgreSQL and Redis."""
    found: dict[int, tuple[str, int]] = {}
    for entry in Path("/proc").iterdir() if Path("/proc/self/stat").exists() else ():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        comm = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2 :].split()  # fields[0] is the state, field 3
        pid, ppid, ticks = int(entry.name), int(fields[1]), int(fields[11]) + int(fields[12])
        if server_pid in (pid, ppid):
            found[pid] = ("app", ticks)
        elif comm == "postgres" or comm.startswith("redis-server"):
            found[pid] = (comm.split("-")[0], ticks)
    return found


def run_wrk(
    args: argparse.Namespace,
    workdir: Path,
    server_pid: int,
    url: str,
    requests: Path,
    mode: str,
    seconds: int,
) -> dict[str, float]:
    """One wrk run: its figures, the CPU each role spent per request, and the machine's load."""
    lua = workdir / "requests.lua"
    if not lua.exists():
        lua.write_text(WRK_LUA)
    command = ["wrk", "-t", str(args.threads), "-c", str(args.connections)]
    command += ["-d", f"{seconds}s", "--timeout", "5s", "-s", str(lua), url]
    command += ["--", str(requests), mode, str(args.threads)]
    children0 = resource.getrusage(resource.RUSAGE_CHILDREN)  # wrk is gone before we can look
    roles0, (busy0, total0) = cpu_by_role(server_pid), cpu_busy_ticks()
    output = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60)
    roles1, (busy1, total1) = cpu_by_role(server_pid), cpu_busy_ticks()
    children1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    lines = [line for line in output.stdout.splitlines() if line.startswith("RESULT ")]
    if output.returncode != 0 or not lines:
        raise SystemExit(f"wrk failed ({output.returncode}):\n{output.stdout}\n{output.stderr}")
    result = {k: float(v) for k, v in (item.split("=") for item in lines[-1].split()[1:])}
    count = max(result["requests"], 1)
    spent = dict.fromkeys(ROLES[:3], 0.0)  # CPU seconds in the run
    for pid, (role, ticks) in roles1.items():
        earlier = roles0.get(pid, (role, 0))[1]  # a process started during the run: all of it
        spent[role] += (ticks - earlier) / os.sysconf("SC_CLK_TCK")
    spent["wrk"] = (children1.ru_utime + children1.ru_stime) - (
        children0.ru_utime + children0.ru_stime
    )
    result |= {f"cpu_ms_{role}": 1000 * seconds / count for role, seconds in spent.items()}
    result |= {
        "rate": result["requests"] / (result["duration_us"] / 1e6),
        "machine_busy": (busy1 - busy0) / max(total1 - total0, 1),
    }
    return result


class Server:
    """gunicorn serving the app (bench settings) on a free loopback port."""

    def __init__(self, args: argparse.Namespace, env: dict[str, str], workdir: Path) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = workdir / "gunicorn.log"
        command = [sys.executable, "-m", "gunicorn", WSGI_APP]
        command += ["--bind", f"127.0.0.1:{self.port}", "--workers", str(args.workers)]
        command += ["--worker-class", "sync", "--chdir", str(BASE_DIR)]
        command += ["--log-level", "warning", "--error-logfile", str(self.log)]
        self.process = subprocess.Popen(
            command, cwd=BASE_DIR, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )

    def wait_ready(self) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            try:
                if httpx.post(self.base + BARE_PATH, timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise SystemExit(f"gunicorn did not start; its log:\n{self.log_tail()}")

    def log_tail(self) -> str:
        try:
            return "\n".join(self.log.read_text().splitlines()[-40:])
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()  # the master stops its workers
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def post(base: str, path: str, request_id: str, body: bytes) -> httpx.Response:
    headers = {
        "content-type": "application/json",
        "user-agent": "FlashFX",
        "flashfx-request-id": request_id,
        "flashfx-signature": sign(body),
    }
    return httpx.post(base + path, content=body, headers=headers, timeout=10)


def settled(read, interval: float = 0.2):
    """read() once two readings `interval` apart agree."""
    last = read()
    while True:
        time.sleep(interval)
        current = read()
        if current == last:
            return current
        last = current


def pick_redis_db(url: str, wanted: int | None) -> int:
    """--redis-db, or the highest-numbered empty database (it must be empty either way)."""
    databases = int(redis.Redis.from_url(url).config_get("databases").get("databases", 16))
    candidates = [wanted] if wanted is not None else range(databases - 1, 0, -1)
    for number in candidates:
        if redis.Redis.from_url(url, db=number).dbsize() == 0:
            return number
    raise SystemExit(f"no empty Redis database to use at {url} (tried {list(candidates)})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=10, help="seconds per kind per round")
    parser.add_argument("--warmup", type=int, default=2, help="seconds per kind, not counted")
    parser.add_argument(
        "--workers",
        type=int,
        default=2 * (os.cpu_count() or 1),
        help="gunicorn sync workers (default 2 per core)",
    )
    parser.add_argument("--connections", type=int, default=16, help="wrk connections")
    parser.add_argument("--threads", type=int, default=1, help="wrk threads")
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379")
    parser.add_argument("--redis-db", type=int, default=None)
    parser.add_argument(
        "--handoff",
        choices=("coalesced", "per-event"),
        default="coalesced",
        help="FLASHFX_WEBHOOK_HANDOFF for the app (coalesced: production's default with Redis)",
    )
    args = parser.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit(
            "wrk is needed: `apt-get install -y wrk` (Debian/Ubuntu) or `brew install wrk` (macOS)"
        )
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the clean-up below

    busy0, total0 = cpu_busy_ticks()
    time.sleep(2)
    busy1, total1 = cpu_busy_ticks()
    background = (busy1 - busy0) / max(total1 - total0, 1)  # others' load, shown with the figures
    redis_db = pick_redis_db(args.redis, args.redis_db)
    queue = redis.Redis.from_url(args.redis, db=redis_db)
    database = f"bench_webhooks_{os.getpid()}"
    admin_dsn = f"{args.postgres}/postgres"
    with psycopg.connect(admin_dsn, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{database}"')
        pg_version = admin.execute("SHOW server_version").fetchone()[0]
    workdir = Path(tempfile.mkdtemp(prefix="bench-webhooks-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(ENV_DROPPED)}
    env |= {
        "DEBUG": "true",  # dev secrets only; bench/webhook_settings.py turns DEBUG off
        "LOG_LEVEL": "WARNING",
        "DJANGO_SETTINGS_MODULE": "bench.webhook_settings",
        "DATABASE_URL": f"{args.postgres}/{database}",
        "REDIS_URL": f"{args.redis}/{redis_db}",
        "FLASHFX_WEBHOOK_HANDOFF": args.handoff,
        "VAR_DIR": str(workdir / "var"),
    }
    server = None
    try:
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "--noinput", "--verbosity", "0"],
            cwd=BASE_DIR,
            env=env,
            check=True,
        )
        with psycopg.connect(f"{args.postgres}/{database}", autocommit=True) as setup:
            setup.execute(
                "CREATE TABLE bench_floor (id bigserial PRIMARY KEY, body bytea NOT NULL, "
                "received_at timestamptz NOT NULL)"
            )
        server = Server(args, env, workdir)
        server.wait_ready()
        db = psycopg.connect(f"{args.postgres}/{database}", autocommit=True)

        def floor_rows() -> int:
            return db.execute("SELECT count(*) FROM bench_floor").fetchone()[0]

        def counts() -> tuple[int, int, int]:
            """(all rows, accepted rows, messages waiting on the Celery queue)."""
            rows, accepted = db.execute(
                "SELECT count(*), count(*) FILTER (WHERE accepted) FROM webhooks_inboundevent"
            ).fetchone()
            return rows, accepted, queue.llen("celery")

        # The three kinds answer what they should before anything is timed.
        duplicate_id, duplicate_body = new_request()
        bare_id, bare_body = new_request()
        checks = [
            (post(server.base, BARE_PATH, bare_id, bare_body), "ok"),
            (post(server.base, FLOOR_PATH, bare_id, bare_body), "ok"),
            (post(server.base, WEBHOOK_PATH, *new_request()), "received"),
            (post(server.base, WEBHOOK_PATH, duplicate_id, duplicate_body), "received"),
            (post(server.base, WEBHOOK_PATH, duplicate_id, duplicate_body), "duplicate"),
        ]
        for response, status in checks:
            if response.status_code != 200 or response.json().get("status") != status:
                raise SystemExit(
                    f"expected 200 {status!r}, got {response.status_code} {response.text}\n"
                    f"{server.log_tail()}"
                )
        # Coalesced: the first new event queues one drain, the next finds it queued (no worker).
        if counts() != (2, 2, 1 if args.handoff == "coalesced" else 2):
            raise SystemExit(
                f"after 2 new events and a duplicate: rows, accepted, queue {counts()}"
            )
        if floor_rows() != 1:
            raise SystemExit(f"the floor stored {floor_rows()} rows for one request")
        files = {
            "bare": write_requests(workdir / "bare.txt", [(bare_id, bare_body)]),
            "floor": write_requests(workdir / "floor.txt", [(bare_id, bare_body)]),
            "duplicate": write_requests(
                workdir / "duplicate.txt", [(duplicate_id, duplicate_body)]
            ),
        }
        urls = {"bare": server.base + BARE_PATH, "floor": server.base + FLOOR_PATH}
        urls["new"] = urls["duplicate"] = server.base + WEBHOOK_PATH
        best_rate = 2000.0  # requests/s, raised as rounds are measured

        def measure(kind: str, seconds: int) -> dict[str, float]:
            nonlocal best_rate
            if kind == "new":  # enough distinct requests for twice the best rate seen so far
                n = int(max(best_rate, 1000) * seconds * 2) + 1000
                files["new"] = write_requests(
                    workdir / "new.txt", [new_request() for _ in range(n)]
                )
            before, floor_before = counts(), floor_rows()
            mode = "unique" if kind == "new" else "cycle"
            result = run_wrk(
                args, workdir, server.process.pid, urls[kind], files[kind], mode, seconds
            )
            after = settled(counts)  # requests in flight when wrk stopped finish first
            rows, accepted, enqueued = (a - b for a, b in zip(after, before, strict=True))
            problems = []
            if result["status"] or result["timeout"]:
                problems.append(f"{result['status']:.0f} non-2xx, {result['timeout']:.0f} timeouts")
            if result["exhausted"]:
                problems.append("ran out of distinct requests (raise the estimate)")
            if kind == "new":
                # Requests still in flight when wrk stops are stored but not counted by wrk.
                if not result["requests"] <= accepted <= result["requests"] + args.connections:
                    problems.append(f"{result['requests']:.0f} answered, {accepted} stored")
                # Coalesced: a drain is published again only when the flag expires (10 s).
                coalesced = (0, seconds // 10 + 1)
                expected = coalesced if args.handoff == "coalesced" else (accepted, accepted)
                if rows != accepted or not expected[0] <= enqueued <= expected[1]:
                    problems.append(f"{accepted} stored, {rows} rows, {enqueued} enqueued")
            elif kind == "floor":
                stored = settled(floor_rows) - floor_before
                if not result["requests"] <= stored <= result["requests"] + args.connections:
                    problems.append(f"{result['requests']:.0f} answered, {stored} stored")
                if rows or enqueued:
                    problems.append(f"{rows} webhook rows and {enqueued} tasks, expected none")
            elif rows or enqueued:
                problems.append(f"{rows} rows stored and {enqueued} tasks enqueued, expected none")
            if problems:
                raise SystemExit(f"{kind} run invalid: {'; '.join(problems)}\n{server.log_tail()}")
            best_rate = max(best_rate, result["rate"])
            return result

        for kind in KINDS:
            measure(kind, args.warmup)

        print(
            f"Webhook receiver vs a bare view on the same server: gunicorn {gunicorn.__version__}, "
            f"hand-off {args.handoff}, "
            f"{args.workers} sync workers, {os.cpu_count()} cores"
        )
        print(
            f"PostgreSQL {pg_version}, Celery broker Redis db {redis_db} (as in production); "
            f"wrk {args.threads} thread(s), {args.connections} connections, loopback"
        )
        print(
            f"{args.rounds} rounds x {len(KINDS)} kinds x {args.duration} s; the machine was "
            f"{background:.0%} busy before the run (other processes)"
        )
        cpu_header = f"  CPU ms per request: {'app':>5}{'postgres':>9}{'redis':>6}{'wrk':>6}"
        print(f"{'':21}{'req/s':>7}{'p50 ms':>8}{'p99 ms':>8}{cpu_header}  machine busy")
        results: dict[str, list[dict[str, float]]] = {kind: [] for kind in KINDS}
        for number in range(1, args.rounds + 1):
            for kind in KINDS:
                r = measure(kind, args.duration)
                r["cpu_ms"] = sum(r[f"cpu_ms_{role}"] for role in ROLES)
                results[kind].append(r)
                errors = r["connect"] + r["read"] + r["write"]
                print(
                    f"  round {number}  {LABELS[kind]:<10}{r['rate']:7.0f}"
                    f"{r['p50_us'] / 1000:8.1f}{r['p99_us'] / 1000:8.1f}{'':22}"
                    + "".join(
                        f"{r[f'cpu_ms_{role}']:{width}.2f}"
                        for role, width in zip(ROLES, (5, 9, 6, 6), strict=True)
                    )
                    + f"  {r['machine_busy']:6.0%}"
                    + (f"   {errors:.0f} socket errors" if errors else ""),
                    flush=True,
                )

        def median(kind: str, key: str) -> float:
            return statistics.median(r[key] for r in results[kind])

        def ratio(a: str, b: str, key: str) -> float:
            """Median of the per-round ratios: each round's kinds ran minutes apart at most."""
            return statistics.median(
                x[key] / y[key] for x, y in zip(results[a], results[b], strict=True)
            )

        print(f"median of {args.rounds} rounds:")
        for kind in KINDS:
            print(
                f"  {LABELS[kind]:<10} {median(kind, 'rate'):7.0f} req/s   "
                f"p99 {median(kind, 'p99_us') / 1000:6.1f} ms   "
                f"CPU {median(kind, 'cpu_ms'):5.2f} ms/request (all processes)"
            )
        goals = [
            ("new events / floor     ", "new", "floor", 0.8, 1.5),
            ("new events / bare view ", "new", "bare", 0.5, 2.0),
            ("duplicates / new events", "duplicate", "new", 1.0, 1.0),
        ]
        for label, a, b, min_rate, max_p99 in goals:
            rate, p99 = ratio(a, b, "rate"), ratio(a, b, "p99_us")
            print(
                f"  {label}  throughput {rate:5.2f}x (goal >= {min_rate:g}x: "
                f"{'met' if rate >= min_rate else 'MISSED'})   p99 {p99:5.2f}x (goal <= "
                f"{max_p99:g}x: {'met' if p99 <= max_p99 else 'MISSED'})   "
                f"CPU/request {ratio(a, b, 'cpu_ms'):5.2f}x"
            )
        db.close()
    finally:
        if server is not None:
            server.stop()
        with psycopg.connect(admin_dsn, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        queue.flushdb()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
