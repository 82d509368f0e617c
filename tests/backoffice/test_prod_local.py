"""`make prod-local` end to end: the production processes (gunicorn over HTTPS, a Celery worker,
beat; DEBUG off) and the sandbox as FlashFX, started by backoffice/prodlocal.py against
PostgreSQL and Redis, then used from outside as a company would: ready, a first member made by
`create_staff`, sign-in with enrolment, a signed webhook from FlashFX mirrored, a payout proposed
by one member, approved by another and sent to FlashFX exactly once.
"""

from __future__ import annotations

import base64
import os
import re
import signal
import socket
import sqlite3
import ssl
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import psycopg
import pytest
import redis
from django.conf import settings
from django_otp.oath import TOTP
from harness import clear_redis_database, wait_until

from backoffice.prodlocal import read_env_file

BASE_DIR = Path(__file__).resolve().parents[2]
PASSWORD = "a-long-prod-local-password-7"

if not (settings.DATABASES["default"]["ENGINE"].endswith("postgresql") and settings.REDIS_URL):
    pytest.skip(
        "make prod-local runs on PostgreSQL and Redis: set DATABASE_URL and REDIS_URL",
        allow_module_level=True,
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def trusting(cert: Path) -> ssl.SSLContext:
    """Verifies the server against prod-local's self-signed certificate, and nothing else."""
    return ssl.create_default_context(cafile=str(cert))


class Member:
    """One person's browser session against the running back-office, over HTTPS."""

    def __init__(self, base: str, cert: Path) -> None:
        self.base = base
        self.http = httpx.Client(base_url=base, verify=trusting(cert), timeout=30)

    def csrf(self, html: str) -> str:
        return re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html).group(1)

    def get(self, path: str) -> httpx.Response:
        return self.http.get(path, follow_redirects=True)

    def post(self, path: str, data: dict[str, str]) -> httpx.Response:
        page = self.get(path).text
        return self.post_form(path, page, data)

    def post_form(self, path: str, page: str, data: dict[str, str]) -> httpx.Response:
        headers = {"Referer": self.base + path, "Origin": self.base}
        body = {"csrfmiddlewaretoken": self.csrf(page), **data}
        return self.http.post(path, data=body, headers=headers, follow_redirects=True)

    def sign_in_first_time(self, username: str) -> None:
        page = self.post("/accounts/login/", {"username": username, "password": PASSWORD})
        assert "/accounts/otp/setup/" in str(page.url), page.text[:500]
        secret = self.totp_secret = re.search(r'id="totp-secret">([A-Z2-7]+)<', page.text).group(1)
        key = base64.b32decode(secret + "=" * (-len(secret) % 8))
        if 30 - time.time() % 30 < 3:  # keep clear of a step's end
            time.sleep(3.1)
        code = f"{TOTP(key).token():06d}"
        done = self.post_form(str(page.url.raw_path.decode()), page.text, {"token": code})
        assert "/accounts/backup-codes/" in str(done.url), done.text[:500]


@pytest.fixture
def prod_local(tmp_path, claimed_redis_url):
    name = f"prod_local_test_{uuid.uuid4().hex[:8]}"
    web, sandbox = free_port(), free_port()
    env = {
        **{k: v for k, v in os.environ.items() if k not in ("DEBUG", "DJANGO_SETTINGS_MODULE")},
        "PROD_LOCAL_DIR": str(tmp_path),
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{name}",
        "REDIS_URL": claimed_redis_url,  # its broker: no other test process's worker reads it
        "PROD_LOCAL_WEB_PORT": str(web),
        "PROD_LOCAL_SANDBOX_PORT": str(sandbox),
        "FLASHFX_SYNC_INTERVAL_SECONDS": "5",
    }
    with redis.Redis.from_url(claimed_redis_url) as client:
        clear_redis_database(client)
    log = tmp_path / "prod-local.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "backoffice.prodlocal"],
            cwd=BASE_DIR,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    run = {
        "base": f"https://127.0.0.1:{web}",
        "sandbox": f"http://127.0.0.1:{sandbox}",
        "cert": tmp_path / "tls.crt",
        "dir": tmp_path,
        "env": env,
        "log": log,
    }
    try:
        yield run
    finally:
        os.killpg(process.pid, signal.SIGINT)  # Ctrl-C
        try:
            process.wait(timeout=90)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
        with redis.Redis.from_url(claimed_redis_url) as client:
            clear_redis_database(client)
        with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as c:
            c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def manage(run, *args: str, stdin: str = "") -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "backoffice.prodlocal", "manage", *args],
        cwd=BASE_DIR,
        env=run["env"],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_prod_local_serves_signs_in_mirrors_a_webhook_and_sends_a_payout_once(prod_local):
    run = prod_local
    base = run["base"]

    wait_until(run["cert"].exists, timeout=60, interval=0.5, what="the certificate")
    tls = trusting(run["cert"])

    def ready():
        try:
            answer = httpx.get(base + "/readyz", verify=tls, timeout=5)
        except httpx.TransportError:
            return None
        return answer.status_code == 200 and answer.json()

    checks = wait_until(ready, timeout=150, interval=1, what="/readyz 200")["checks"]
    assert set(checks) == {"database", "redis", "broker", "flashfx", "beat"}
    log_text = run["log"].read_text()
    assert "System check identified no issues" in log_text  # check --deploy, DEBUG off

    # Static files: hashed names, compressed, cached for long, from gunicorn itself.
    page = httpx.get(base + "/accounts/login/", verify=tls)
    assert "no-store" in page.headers["cache-control"]
    css = re.search(r'href="(/static/[^"]+\.[0-9a-f]{12}\.css)"', page.text).group(1)
    asset = httpx.get(base + css, verify=tls, headers={"Accept-Encoding": "gzip"})
    assert asset.status_code == 200 and asset.headers.get("content-encoding") == "gzip"
    assert "immutable" in asset.headers["cache-control"]

    # The first members, made as docs/operations.md says.
    for username, role in (("olivia", "operator"), ("amir", "approver")):
        made = manage(
            run, "create_staff", username, "--role", role, "--password-stdin", stdin=PASSWORD + "\n"
        )
        assert made.returncode == 0, made.stdout + made.stderr
    again = manage(
        run, "create_staff", "olivia", "--role", "admin", "--password-stdin", stdin=PASSWORD + "\n"
    )
    assert again.returncode != 0 and "exists already" in again.stderr

    operator, approver = Member(base, run["cert"]), Member(base, run["cert"])
    operator.sign_in_first_time("olivia")
    approver.sign_in_first_time("amir")

    # FlashFX (the sandbox) receives a deposit and tells us with a signed webhook over HTTPS.
    made = httpx.post(
        run["sandbox"] + "/_sandbox/deposits",
        json={
            "amount": "321.09",
            "currency": "AUD",
            "externalReference": "PRODLOCAL1",
            "sender": {"accountName": "Prod Local Payer", "bsb": "062000", "accountNo": "12345678"},
        },
    )
    assert made.status_code == 201, made.text
    deposit_id = made.json()["id"]
    wait_until(
        lambda: deposit_id in operator.get("/deposits/").text,
        timeout=60,
        interval=1,
        what="the deposit in the queue",
    )

    # A payout: proposed by the operator, approved by the approver, sent by the worker.
    form = operator.get("/payouts/new/").text
    recipient = re.search(r'<select name="recipient"[^>]*>.*?<option value="(\d+)"', form, re.S)
    assert recipient, "sync brought FlashFX's recipients"
    reason = re.search(r'<select name="reason"[^>]*>.*?<option value="([^"]+)"', form, re.S)
    sender = re.search(r'<select name="sender"[^>]*>.*?<option value="(\d+)"', form, re.S)
    proposed = operator.post_form(
        "/payouts/new/",
        form,
        {
            "recipient": recipient.group(1),
            "amount": "45.60",
            "currency": "AUD",
            "reference": "PRODLOCAL",
            "reason": reason.group(1),
            "sender": sender.group(1),
        },
    )
    errors = re.findall(r'class="error"[^>]*>(.*?)</', proposed.text, re.S)
    assert proposed.status_code == 200 and not errors, (proposed.status_code, errors)
    code = re.search(r"/payouts/([A-Za-z0-9-]+)/$", str(proposed.url)).group(1)
    assert "waits for approval" in proposed.text
    detail = approver.get(f"/payouts/{code}/").text
    approver.post_form(f"/payouts/{code}/approve/", detail, {})

    sandbox_db = run["dir"] / "sandbox.sqlite3"

    def withdrawals() -> int:
        with sqlite3.connect(sandbox_db) as db:
            (n,) = db.execute(
                "SELECT count(*) FROM sandbox_withdrawal WHERE external_id = ?", [code]
            ).fetchone()
        return n

    wait_until(withdrawals, timeout=60, interval=1, what="the withdrawal at FlashFX")
    time.sleep(3)  # a second send would come within this
    assert withdrawals() == 1

    # The whole run's logs of our processes (not the sandbox's: it plays FlashFX) hold none of
    # the secrets planted in it: the generated keys and passwords, the members' password and
    # second-factor keys, FlashFX's bearer tokens, the payer's full account number.
    ours = "\n".join(
        line for line in run["log"].read_text().splitlines() if " sandbox " not in line[:20]
    )
    assert "Traceback" not in ours, ours[-3000:]
    planted = read_env_file(run["dir"] / "env")
    secrets = {
        name: planted[name]
        for name in (
            "SECRET_KEY",
            "AUDIT_HMAC_KEY",
            "FLASHFX_PASSWORD",
            "FLASHFX_WEBHOOK_SECRET",
            "SANDBOX_JWT_SECRET",
        )
    }
    secrets |= {"members' password": PASSWORD, "account number": "12345678"}
    secrets |= {
        f"TOTP key {n}": member.totp_secret for n, member in enumerate((operator, approver))
    }
    leaked = [name for name, value in secrets.items() if value in ours]
    assert not leaked, leaked
    assert not re.search(r"eyJ[\w-]{10,}\.eyJ", ours), "a JWT (FlashFX token) in the logs"
