"""Fixtures of the fault tests: a Redis database for the workers' broker, workers, locks.

The workers' broker is the Redis database this test process claimed for the whole run
(tests/conftest.py claimed_redis_url): a worker must never take a message some other run, or
another test process of this run, left in a shared queue (an id there names a row of another
database). For each test the test process publishes to that database too
(CELERY_BROKER_URL, which the Celery app reads from Django's settings live), so what the code
under test enqueues (delay_on_commit) reaches the worker exactly as in production.
"""

from __future__ import annotations

import os

import pytest
import redis
from django.utils import timezone
from faults_support import Locker, Workers
from harness import clear_redis_database, close_app_client

from backoffice.celery import app as celery_app
from mirrors.client import flashfx_client
from mirrors.registry import registry
from parties.models import Recipient, Sender


def _reset_publisher() -> None:
    """Drop the Celery app's broker connections: the next publish connects to the URL the
    settings name now (what Celery itself does after a fork)."""
    celery_app._after_fork()


WORKER_LOG_LINES = 200  # per worker, in a failed test's report


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    """A failed fault test's report ends with what its workers logged (their last lines): a
    wait that timed out on CI says nothing of why without them."""
    outcome = yield
    report = outcome.get_result()
    pool = getattr(item, "funcargs", {}).get("workers")
    if report.failed and isinstance(pool, Workers):
        for worker in pool.started:
            tail = worker.log().splitlines()[-WORKER_LOG_LINES:]
            state = "alive" if worker.alive else f"exited {worker.process.returncode}"
            report.sections.append((f"worker {worker.name} ({state})", "\n".join(tail)))


@pytest.fixture
def workers(transactional_db, settings, sandbox, claimed_redis_url, tmp_path):
    """Start real workers with `workers.start()`; each is SIGKILLed at the end if still up.

    Their settings come from the environment, as in production: the test database (the one
    pytest-django made for this process), the test's sandbox (FLASHFX_API_URL), the Redis of
    the test for the cache and the shared FlashFX token (the test's own FLASHFX_TOKEN_KEY), and
    the claimed database as their broker (CELERY_BROKER_URL, which Celery reads before any
    setting)."""
    from django.db import connection

    broker_url = claimed_redis_url
    with redis.Redis.from_url(broker_url) as client:
        clear_redis_database(client)  # what an earlier test's workers left queued
    publishing_to = settings.CELERY_BROKER_URL
    settings.CELERY_BROKER_URL = broker_url
    _reset_publisher()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SANDBOX_", "DJANGO_"))}
    env |= {
        "DEBUG": "true",
        "REDIS_URL": settings.REDIS_URL,
        "CELERY_BROKER_URL": broker_url,
        "FLASHFX_API_URL": sandbox.url,
        "FLASHFX_TOKEN_KEY": settings.FLASHFX_TOKEN_KEY,
        "LOG_LEVEL": "INFO",
        "PYTHONUNBUFFERED": "1",
    }
    pool = Workers(env=env, settings_dict=dict(connection.settings_dict), workdir=tmp_path)
    try:
        yield pool
    finally:
        pool.stop_all()
        settings.CELERY_BROKER_URL = publishing_to
        _reset_publisher()


@pytest.fixture
def locker(transactional_db):
    from django.db import connection

    return Locker(dict(connection.settings_dict))


@pytest.fixture
def app_sandbox(sandbox, settings):
    """The sandbox, with nothing moving by itself (forced transitions only) and logins without
    a pause; the test process's own client (setup, read-backs) points at it too."""
    sandbox.configure(step_delay_seconds=3600, login_interval_seconds=0)
    close_app_client()
    settings.FLASHFX_API_URL = sandbox.url
    yield sandbox
    close_app_client()


# What the payout fault tests pay and send from (tests/faults/test_payout*_faults.py).
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


@pytest.fixture
def parties(app_sandbox) -> tuple[Recipient, Sender]:
    """A funded balance, and a recipient and a sender at FlashFX, mirrored here."""
    funding = app_sandbox.receive_deposit("100000.00")
    assert app_sandbox.advance("deposits", funding["id"], "CONFIRMED").status_code == 200
    client = flashfx_client()
    recipient = client.recipient(client.create_recipient(RECIPIENT).id)
    registry.get("recipients").apply(recipient, observed_at=timezone.now(), source="sync")
    sender = client.sender(client.create_sender(SENDER).id)
    registry.get("senders").apply(sender, observed_at=timezone.now(), source="sync")
    return (
        Recipient.objects.get(flashfx_id=recipient.id),
        Sender.objects.get(flashfx_id=sender.id),
    )
