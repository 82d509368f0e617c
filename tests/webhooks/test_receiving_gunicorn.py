"""POST /webhooks/flashfx/ under gunicorn, the production server, on this run's test database.

What Django's live server (wsgiref) cannot show: a body sent without Content-Length (chunked
transfer encoding), which gunicorn de-chunks and ends for the app (`wsgi.input_terminated`);
how gunicorn joins a header sent twice; and the real Celery enqueue, which goes to a kombu
filesystem queue in a temporary folder, so each message can be counted.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from django.db import connection
from harness import wait_until

from webhooks.models import InboundEvent

BASE_DIR = Path(__file__).resolve().parents[2]
GUNICORN = Path(sys.executable).with_name("gunicorn")
SECRET = "receiver-gunicorn-secret"
LIMIT = 4096

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not GUNICORN.exists(), reason="gunicorn is not installed in this venv"),
]


def sign(body: bytes, secret: str = SECRET) -> str:
    return base64.b64encode(
        hmac.new(secret.encode("utf-8"), body, hashlib.sha256).digest()
    ).decode()


def event_body(**fields: object) -> bytes:
    payload = {
        "event": "deposit_cleared",
        "eventScheduledAt": "2026-05-01T02:03:04.005Z",
        "id": "65f0c0ffee0000000000d001",
        "amount": 1000,
        "currency": "AUD",
        **fields,
    }
    return json.dumps(payload, separators=(",", ":")).encode()


def headers_for(body: bytes, request_id: str | None = None) -> dict[str, str]:
    return {
        "content-type": "application/json",
        "user-agent": "FlashFX",
        "flashfx-request-id": request_id or secrets.token_hex(12),
        "flashfx-signature": sign(body),
    }


def chunks(body: bytes, size: int = 1000) -> Iterator[bytes]:
    """An iterator: httpx sends it with Transfer-Encoding: chunked and no Content-Length."""
    for start in range(0, len(body), size):
        yield body[start : start + size]


def database_url() -> str:
    """This run's test database, as the app's settings read it from DATABASE_URL."""
    s = connection.settings_dict
    if connection.vendor == "sqlite":
        if connection.is_in_memory_db():
            pytest.skip("another process cannot open an in-memory SQLite database")
        return f"sqlite:///{Path(s['NAME']).resolve()}"
    if connection.vendor == "postgresql":
        credentials = quote(s["USER"] or "")
        if s["PASSWORD"]:
            credentials += ":" + quote(s["PASSWORD"])
        host = f"{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}"
        return f"postgres://{credentials}@{host}/{s['NAME']}"
    pytest.skip(f"no DATABASE_URL form for {connection.vendor}")


@pytest.fixture(scope="module")
def gunicorn(django_db_setup, django_db_blocker, tmp_path_factory):
    """gunicorn serving backoffice.wsgi on a free port; yields (url, the Celery queue folder)."""
    workdir = tmp_path_factory.mktemp("gunicorn")
    with django_db_blocker.unblock():
        url_of_database = database_url()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "FLASHFX_"))}
    env |= {
        "DEBUG": "true",
        "DATABASE_URL": url_of_database,
        "REDIS_URL": "",  # kombu's filesystem queue under VAR_DIR: messages are files to count
        "VAR_DIR": str(workdir / "var"),
        "ALLOWED_HOSTS": "127.0.0.1",
        "FLASHFX_WEBHOOK_SECRET": SECRET,
        "FLASHFX_WEBHOOK_MAX_BODY_BYTES": str(LIMIT),
    }
    log = (workdir / "gunicorn.log").open("w")
    process = subprocess.Popen(
        [
            str(GUNICORN),
            "backoffice.wsgi:application",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "2",
            "--graceful-timeout",
            "5",
        ],
        cwd=BASE_DIR,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"

    def up() -> bool:
        if process.poll() is not None:
            pytest.fail(f"gunicorn exited:\n{(workdir / 'gunicorn.log').read_text()}")
        try:
            return httpx.get(url + "/healthz", timeout=1).status_code < 500
        except httpx.HTTPError:
            return False

    try:
        wait_until(up, timeout=60, interval=0.2, what="gunicorn to start")
        yield url, workdir / "var" / "celery" / "queue"
    finally:
        process.terminate()  # before the test database is dropped: it holds connections
        process.wait(timeout=30)
        log.close()
    text = (workdir / "gunicorn.log").read_text()
    assert "Traceback" not in text, text[-5000:]


@pytest.fixture
def server(gunicorn):
    url, queue = gunicorn
    before = set(queue.iterdir())

    def messages() -> list[dict]:
        """The Celery messages published since the test began (kombu's JSON envelopes)."""
        return [json.loads(p.read_bytes()) for p in sorted(set(queue.iterdir()) - before)]

    return url + "/webhooks/flashfx/", messages


def enqueued_ids(messages: list[dict]) -> list[int]:
    ids = []
    for message in messages:
        assert message["headers"]["task"] == "webhooks.tasks.process_inbound_event"
        args, _kwargs, _embed = json.loads(base64.b64decode(message["body"]))
        ids.append(args[0])
    return ids


def test_a_chunked_event_is_read_whole_stored_and_enqueued_once(server):
    url, messages = server
    body = event_body(note="x" * 2500)  # three chunks
    headers = headers_for(body)

    response = httpx.post(url, content=chunks(body), headers=headers)
    again = httpx.post(url, content=chunks(body), headers=headers)

    assert (response.status_code, response.json()) == (200, {"status": "received"})
    assert (again.status_code, again.json()) == (200, {"status": "duplicate"})
    row = InboundEvent.objects.get()
    assert (row.accepted, bytes(row.body), row.body_size) == (True, body, len(body))
    assert "content-length" not in row.headers
    assert enqueued_ids(messages()) == [row.pk]


def test_a_chunked_body_over_the_limit_is_refused_413_after_limit_plus_one_bytes(server):
    url, messages = server
    body = event_body(note="x" * (3 * LIMIT))
    headers = headers_for(body)

    response = httpx.post(url, content=chunks(body), headers=headers)

    assert (response.status_code, response.json()) == (413, {"status": "too_large"})
    row = InboundEvent.objects.get()
    assert (row.accepted, row.reason, bytes(row.body)) == (False, "too_large", b"")
    assert row.body_size == LIMIT + 1  # read so far, then refused
    assert row.request_id == headers["flashfx-request-id"]
    assert messages() == []


def test_a_declared_body_over_the_limit_is_refused_413(server):
    url, messages = server
    body = event_body(note="x" * LIMIT)

    response = httpx.post(url, content=body, headers=headers_for(body))

    assert response.status_code == 413
    row = InboundEvent.objects.get()
    assert (row.reason, row.body_size, bytes(row.body)) == ("too_large", len(body), b"")
    assert messages() == []


def test_gunicorn_joins_a_header_sent_twice_and_the_request_is_refused(server):
    url, messages = server
    body = event_body()
    request_id = secrets.token_hex(12)
    headers = [
        ("flashfx-request-id", request_id),
        ("flashfx-request-id", request_id),
        ("flashfx-signature", sign(body)),
    ]

    response = httpx.post(url, content=body, headers=headers)

    assert (response.status_code, response.json()) == (400, {"status": "malformed_request_id"})
    assert InboundEvent.objects.get().request_id == f"{request_id},{request_id}"
    assert messages() == []


def test_an_event_under_gunicorn_is_enqueued_once_and_a_refusal_never(server):
    url, messages = server
    body = event_body()
    good = httpx.post(url, content=body, headers=headers_for(body))
    bad = httpx.post(url, content=body + b" ", headers=headers_for(body))

    assert (good.status_code, bad.status_code) == (200, 401)
    accepted = InboundEvent.objects.get(accepted=True)
    assert enqueued_ids(messages()) == [accepted.pk]
