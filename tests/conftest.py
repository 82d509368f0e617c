"""A real sandbox server for the tests, driven over HTTP only, and a webhook receiver beside it.

The sandbox runs as its own process with its own SQLite file, exactly as `make sandbox` starts
it; tests talk to it with httpx and read webhooks from a small HTTP server in this process.
Each test starts from an empty sandbox (POST /_sandbox/reset) and a fresh token.
"""

from __future__ import annotations

import json
import math
import os
import socket
import subprocess
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import simplejson
from harness import (
    API_EMAIL,
    API_PASSWORD,
    DEPOSIT_SENDER,
    WEBHOOK_SECRET,
    claimed_redis_database,
    loads,
    wait_until,
)

BASE_DIR = Path(__file__).resolve().parents[1]
RETRY_SCALE = 0.005  # FlashFX's 6/60/600 s become 0.03/0.3/3 s


def json_body(payload: Any) -> str:
    """A JSON request body with every Decimal written as the exact number it holds."""
    return simplejson.dumps(payload, use_decimal=True)


@dataclass
class Received:
    path: str
    headers: dict[str, str]  # lower-cased names; a repeated header keeps all values joined by ", "
    body: bytes
    at: float  # time.monotonic() on arrival

    @property
    def json(self) -> Any:
        return loads(self.body)


def _scheduled_ms(body: bytes) -> int | None:
    """A webhook's eventScheduledAt in whole milliseconds since the epoch (None: not a webhook)."""
    try:
        stamp = json.loads(body)["eventScheduledAt"]
        at = datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    except (ValueError, TypeError, KeyError):
        return None
    return round(at.timestamp() * 1000)


@dataclass
class WebhookReceiver:
    """Stands in for the back-office's /webhooks/flashfx/: records requests byte for byte.

    Left-overs of an earlier test are answered 200 but neither recorded nor given a status of
    `answer_with`: an attempt the sandbox's clock had started (claimed) just before the reset
    can reach us after it, under load (and with tests from any file following each other on a
    parallel worker) well into the next test. The sandbox stamps every event when it queues
    it (eventScheduledAt, the same on each retry), so an event queued before the reset that
    began this test is one of those.
    """

    server: ThreadingHTTPServer
    requests: list[Received] = field(default_factory=list)
    statuses: deque[int] = field(default_factory=deque)
    lock: threading.Lock = field(default_factory=threading.Lock)
    since_ms: int = 0  # events queued before this (ms since the epoch) are left-overs
    left_overs: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/webhooks/flashfx/"

    def answer_with(self, *statuses: int) -> None:
        """Answer the next requests with these statuses, then 200 again."""
        with self.lock:
            self.statuses.extend(statuses)

    def clear(self, *, since: float | None = None) -> None:
        """Forget every request; with `since` (a time.time() taken after the sandbox's reset
        returned), also ignore events the sandbox queued before then."""
        with self.lock:
            self.requests.clear()
            self.statuses.clear()
            if since is not None:
                # Events queued after `since` are stamped with at least its whole millisecond.
                self.since_ms = math.floor(since * 1000)

    def for_entity(self, entity_id: str) -> list[Received]:
        with self.lock:
            return [r for r in self.requests if r.json.get("id") == entity_id]

    def events_for(self, entity_id: str) -> list[str]:
        return [r.json["event"] for r in self.for_entity(entity_id)]

    def wait_for_events(
        self, entity_id: str, events: list[str], timeout: float = 15.0
    ) -> list[Received]:
        """Wait until exactly these events (in this order) arrived for the entity."""
        wait_until(
            lambda: len(self.for_entity(entity_id)) >= len(events),
            timeout=timeout,
            what=f"events {events} for {entity_id}, got {self.events_for(entity_id)}",
        )
        time.sleep(0.2)  # and nothing more shortly after
        assert self.events_for(entity_id) == events
        return self.for_entity(entity_id)

    def record(self, handler: BaseHTTPRequestHandler) -> int:
        length = int(handler.headers.get("content-length") or 0)
        body = handler.rfile.read(length)
        headers: dict[str, str] = {}
        for name, value in handler.headers.items():
            key = name.lower()
            headers[key] = f"{headers[key]}, {value}" if key in headers else value
        scheduled = _scheduled_ms(body)
        with self.lock:
            if scheduled is not None and scheduled < self.since_ms:
                self.left_overs += 1
                return 200
            self.requests.append(Received(handler.path, headers, body, time.monotonic()))
            return self.statuses.popleft() if self.statuses else 200


class _Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        status = self.server.receiver.record(self)  # type: ignore[attr-defined]
        self.send_response(status)
        self.send_header("content-length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args: Any) -> None:
        pass


# A fast hasher for the staff members that tests create by the hundred: Django's default
# (PBKDF2, 1,000,000 iterations) costs ~0.3 s of CPU per password set or checked. No test
# checks which hasher is used, only that the right password works and a wrong one does not.
TEST_PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(scope="session", autouse=True)
def _suite_settings():
    """Settings for the whole run (each xdist worker is a process of its own, with its own).

    FLASHFX_TOKEN_KEY: with REDIS_URL the back-office shares its FlashFX token through Redis.
    Each worker (and each concurrent run on this machine) talks to its own sandbox, so each
    keeps its token under a key of its own, removed again at the end.
    """
    from django.conf import settings
    from django.test import override_settings

    token_key = f"flashfx:token:test-{os.getpid()}"
    with override_settings(PASSWORD_HASHERS=TEST_PASSWORD_HASHERS, FLASHFX_TOKEN_KEY=token_key):
        yield
    if settings.REDIS_URL:
        import redis

        with redis.Redis.from_url(settings.REDIS_URL) as client:
            client.delete(token_key, f"{token_key}:login-lock")


@pytest.fixture(autouse=True)
def _celery_joins_allowed():
    """Celery keeps "a task is running here, joining a result would block" in one flag for the
    whole process: an eager apply_async raises it and puts back what it found. Two threads
    doing that at once can put it back raised (one restores what the other raised), and every
    later `.apply().get()` in this process then fails with "Never call result.get()
    within a task!" (seen once on CI). Each test starts with the flag as a fresh process has it."""
    from celery.result import _set_task_join_will_block

    _set_task_join_will_block(False)


@pytest.fixture(scope="session")
def claimed_redis_url():
    """A database of the machine's Redis that no other test process uses while this one runs
    (tests/harness.py claimed_redis_database); skipped without Redis."""
    with claimed_redis_database() as url:
        yield url


@pytest.fixture(scope="session")
def webhook_receiver():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    receiver = WebhookReceiver(server)
    server.receiver = receiver  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield receiver
    server.shutdown()
    server.server_close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def sandbox_url(tmp_path_factory, webhook_receiver):
    """Start `python -m flashfx.sandbox serve` on a free port with its own database."""
    workdir = tmp_path_factory.mktemp("sandbox")
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SANDBOX_", "DJANGO_"))}
    env |= {
        "SANDBOX_DB_PATH": str(workdir / "sandbox.sqlite3"),
        "SANDBOX_STEP_DELAY": "0",
        "SANDBOX_CLOCK_INTERVAL": "0.02",
        "SANDBOX_WEBHOOK_URL": webhook_receiver.url,
        "SANDBOX_WEBHOOK_RETRY_SCALE": str(RETRY_SCALE),
        "SANDBOX_WEBHOOK_TIMEOUT": "2",
        # Each test's reset and login check the API password: a cheap scrypt saves ~0.1 s of
        # CPU per test (no test is about the sandbox's hashing cost).
        "SANDBOX_PASSWORD_SCRYPT_N": "16",
        "FLASHFX_WEBHOOK_SECRET": WEBHOOK_SECRET,
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

    def up() -> bool:
        if process.poll() is not None:
            pytest.fail(
                f"the sandbox exited with {process.returncode}:\n{(workdir / 'sandbox.log').read_text()}"
            )
        try:
            return httpx.get(url + "_sandbox/health", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    wait_until(up, timeout=60, interval=0.2, what="the sandbox to start")
    yield url
    process.terminate()
    process.wait(timeout=20)
    log.close()
    # A traceback in the sandbox's log is a bug even when every assertion passed.
    text = (workdir / "sandbox.log").read_text()
    assert "Traceback" not in text, text[-5000:]


@dataclass
class Sandbox:
    url: str
    http: httpx.Client
    receiver: WebhookReceiver
    token: str | None = None

    # --- GraphQL ---
    def post(
        self,
        query: str,
        variables: dict | None = None,
        *,
        token: str | None | bool = True,
        headers: dict | None = None,
    ) -> httpx.Response:
        """POST a GraphQL request; token=True uses the session's token, None or False sends none.

        Decimal variables go on the wire as the exact numbers they hold.
        """
        sent = {"content-type": "application/json", **(headers or {})}
        bearer = self.token if token is True else token
        if bearer:
            sent["authorization"] = f"Bearer {bearer}"
        return self.http.post(
            self.url,
            content=json_body({"query": query, "variables": variables or {}}),
            headers=sent,
        )

    def gql(self, query: str, variables: dict | None = None, **kwargs: Any) -> dict:
        """The whole envelope, numbers as Decimals."""
        response = self.post(query, variables, **kwargs)
        return loads(response.content)

    def data(self, query: str, variables: dict | None = None, **kwargs: Any) -> dict:
        """The data of a request that must succeed without errors."""
        response = self.post(query, variables, **kwargs)
        assert response.status_code == 200, response.text
        envelope = loads(response.content)
        assert "errors" not in envelope, envelope["errors"]
        return envelope["data"]

    def login(self, email: str = API_EMAIL, password: str = API_PASSWORD) -> dict:
        reply = self.data(
            "mutation Login($input: LoginInput!) { login(input: $input) { success code message token } }",
            {"input": {"email": email, "password": password}},
            token=None,
        )
        return reply["login"]

    # --- Control endpoints ---
    def control(self, path: str, payload: dict | None = None) -> httpx.Response:
        if payload is None:
            return self.http.get(self.url + "_sandbox/" + path)
        return self.http.post(self.url + "_sandbox/" + path, json=payload)

    def configure(self, **changes: Any) -> dict:
        response = self.control("config", changes)
        assert response.status_code == 200, response.text
        return response.json()

    def faults(self, **mix: Any) -> dict:
        response = self.control("faults", mix)
        assert response.status_code == 200, response.text
        return response.json()

    def faults_left(self) -> int | None:
        """How many more calls the fault mix's limit lets it fault (None: no limit). A call
        counts as it arrives, before a `slow` fault's wait."""
        response = self.control("faults")
        assert response.status_code == 200, response.text
        return response.json()["limit"]

    def advance(self, kind: str, entity_id: str, to: str, **details: Any) -> httpx.Response:
        return self.control(f"{kind}/{entity_id}/advance", {"to": to, **details})

    def receive_deposit(self, amount: str = "1000.00", **fields: Any) -> dict:
        payload = {
            "amount": Decimal(amount),
            "currency": "AUD",
            "externalReference": "test deposit",
            "sender": DEPOSIT_SENDER,
        }
        response = self.http.post(
            self.url + "_sandbox/deposits",
            content=json_body(payload | fields),
            headers={"content-type": "application/json"},
        )
        assert response.status_code == 201, response.text
        return loads(response.content)

    def fund(self, amount: str = "10000.00") -> dict:
        """A deposit that has cleared: the way money gets into a FlashFX balance."""
        deposit = self.receive_deposit(amount)
        wait_until(
            lambda: self.deposit_status(deposit["id"]) == "CONFIRMED",
            what="the funding deposit to clear",
        )
        return deposit

    def deliveries(self, **query: str) -> list[dict]:
        response = self.http.get(self.url + "_sandbox/webhooks", params=query)
        assert response.status_code == 200, response.text
        return loads(response.content)

    # --- Reading state ---
    def balance(self, currency: str = "AUD") -> tuple[Decimal, Decimal]:
        rows = self.data(
            "query B($c: [CurrencyIso3]) { balances(currencies: $c) { currency cleared pending } }",
            {"c": [currency]},
        )["balances"]
        return (rows[0]["cleared"], rows[0]["pending"]) if rows else (Decimal(0), Decimal(0))

    def deposit_status(self, deposit_id: str) -> str:
        return self.data("query D($id: ID!) { deposit(id: $id) { status } }", {"id": deposit_id})[
            "deposit"
        ]["status"]

    def withdrawal(self, withdrawal_id: str) -> dict:
        return self.data(
            "query W($id: ID!) { withdrawal(id: $id) { id status statusMessage rejectCode amount totalFee currency"
            " clearedAt rejectedAt refundedAt refundAmount refundReason externalId externalReference rail } }",
            {"id": withdrawal_id},
        )["withdrawal"]

    def wait_for_status(
        self, kind: str, entity_id: str, status: str, timeout: float = 15.0
    ) -> dict:
        query = f"query S($id: ID!) {{ {kind}(id: $id) {{ id status }} }}"
        return wait_until(
            lambda: (
                (row := self.data(query, {"id": entity_id})[kind])
                and row["status"] == status
                and row
            ),
            timeout=timeout,
            what=f"{kind} {entity_id} to become {status}",
        )


@pytest.fixture
def sandbox(sandbox_url, webhook_receiver):
    """An empty sandbox (no data, default settings) with a logged-in token."""
    with httpx.Client(timeout=httpx.Timeout(10.0)) as http:
        response = http.post(sandbox_url + "_sandbox/reset", json={})
        assert response.status_code == 200, response.text
        webhook_receiver.clear(since=time.time())
        box = Sandbox(sandbox_url, http, webhook_receiver)
        box.token = box.login()["token"]
        yield box
        http.post(sandbox_url + "_sandbox/faults", json={})  # never leave a fault mix behind
