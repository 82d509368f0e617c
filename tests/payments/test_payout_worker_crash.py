"""A real Celery worker SIGKILLed while its createWithdrawal call is at FlashFX: the sandbox
executes the call (it was already running there), our side never hears the answer, and
recovery finds the withdrawal by externalId instead of creating a second one.

Needs what CI's second run has: PostgreSQL (the worker, another process, reads the test
database) and Redis (the broker both processes share). The task goes to a queue of this test's
own, so no other test's messages reach this worker.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.db import connection
from django.utils import timezone
from harness import wait_until
from payout_support import (
    create_calls,
    fund,
    propose,
    recipient_at_flashfx,
    sender_at_flashfx,
    withdrawals_at_flashfx,
)
from refund_support import app_at, log_calls
from staff import make_staff

from payments import tasks
from payments.models import Payout, PayoutOutbox
from payments.services import payouts

BASE_DIR = Path(__file__).resolve().parents[2]
QUEUE = f"payouts-crash-test-{os.getpid()}"

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        connection.vendor != "postgresql" or not django_settings.REDIS_URL,
        reason="a real worker process: needs PostgreSQL and Redis (DATABASE_URL, REDIS_URL)",
    ),
]


@pytest.fixture
def app_sandbox(sandbox, settings):
    with app_at(sandbox, settings):
        yield sandbox


def database_url() -> str:
    s = connection.settings_dict
    auth = s["USER"] + (f":{s['PASSWORD']}" if s["PASSWORD"] else "")
    return f"postgres://{auth}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


@pytest.fixture
def worker(app_sandbox, tmp_path):
    """Start a worker on this test's queue; yields a function that starts one and returns it."""
    started: list[subprocess.Popen] = []

    def start() -> subprocess.Popen:
        env = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")}
        env |= {
            "DEBUG": "true",
            "DATABASE_URL": database_url(),
            "REDIS_URL": django_settings.REDIS_URL,
            "FLASHFX_API_URL": app_sandbox.url,
            "FLASHFX_TOKEN_KEY": f"flashfx:token:crash-{os.getpid()}",
        }
        log = (tmp_path / f"worker-{len(started)}.log").open("w")
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "backoffice",
                "worker",
                "-P",
                "solo",
                "-Q",
                QUEUE,
                "--without-heartbeat",
                "--without-mingle",
                "--without-gossip",
                "--loglevel=INFO",
            ],
            cwd=BASE_DIR,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=20)


def test_a_worker_killed_during_the_call_leaves_exactly_one_withdrawal(app_sandbox, worker, caplog):
    log_calls(caplog)
    fund(app_sandbox)
    maker, approver = make_staff("operator"), make_staff("approver")
    payout = propose(maker, recipient=recipient_at_flashfx(), sender=sender_at_flashfx())
    payouts.payout_approve(payout=payout, by=approver)
    outbox = PayoutOutbox.objects.get()
    # FlashFX takes 4 s over this one: long enough to kill the worker while it waits.
    app_sandbox.faults(slow=1, slow_seconds=4, operations=["createWithdrawal"], limit=1)

    process = worker()
    tasks.payout_submit.apply_async((outbox.pk,), queue=QUEUE)
    wait_until(
        lambda: PayoutOutbox.objects.get(pk=outbox.pk).state == "submitting",
        timeout=60,
        what="the worker to claim the payout",
    )
    wait_until(  # the slow fault is taken as the call arrives, before its 4 s wait
        lambda: app_sandbox.faults_left() == 0,
        timeout=60,
        what="the createWithdrawal call to reach FlashFX",
    )
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=20)

    # FlashFX finishes what it was doing; we never heard the answer.
    wait_until(
        lambda: len(withdrawals_at_flashfx(payout.code)) == 1,
        timeout=20,
        what="the sandbox to finish the call the dead worker made",
    )
    payout.refresh_from_db()
    assert payout.state == "submitting" and payout.withdrawal is None

    # Recovery (the sweep's task, in this process) looks it up before anything else.
    PayoutOutbox.objects.filter(pk=outbox.pk).update(
        claimed_at=timezone.now() - timedelta(minutes=5)
    )
    assert payouts.payout_recover(outbox.pk) == "submitted"
    assert create_calls(caplog) == []  # this process never called createWithdrawal
    assert len(withdrawals_at_flashfx(payout.code)) == 1
    payout = Payout.objects.get(pk=payout.pk)
    assert payout.state == "submitted" and payout.withdrawal is not None
    assert PayoutOutbox.objects.get(pk=outbox.pk).attempts == 1
