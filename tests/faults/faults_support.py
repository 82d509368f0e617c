"""Real Celery workers, killed for real, and the locks that stop them at a chosen line.

A plain module beside the fault tests (pytest puts this folder on sys.path):
`from faults_support import ...`. The fixtures that build these are in conftest.py here.

A worker is `celery -A backoffice worker` in a process group of its own, with the project's
settings (acks_late, reject_on_worker_lost, prefetch 1), concurrency 1, pointed through its
environment at the test's PostgreSQL database, the test's sandbox and a Redis database of its
own for its broker. Production code has no test hooks: a test stops a worker at a chosen line
by holding, from a connection of its own, a lock the worker needs next (a row lock taken with
SELECT ... FOR UPDATE, or the audit trail's advisory lock), sees in pg_stat_activity that the
worker waits on it, and SIGKILLs the worker's whole process group there.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import psycopg
import pytest
from harness import wait_until

BASE_DIR = Path(__file__).resolve().parents[2]
# How long a test waits for a worker to reach a point. Generous: CI runs these beside the chaos
# run and browser tests on 2 cores, where a fresh worker's first task once took over 20 s to be
# claimed. A wait ends as soon as the point is reached; only a failure waits this long.
WAIT_SECONDS = 60.0

needs_postgres_and_redis = pytest.mark.skipif(
    not (os.environ.get("DATABASE_URL", "").startswith("postgres") and os.environ.get("REDIS_URL")),
    reason=(
        "fault tests run a real Celery worker on PostgreSQL and Redis: set "
        "DATABASE_URL=postgres://... and REDIS_URL=redis://... (.ci/run does)"
    ),
)


def database_url(settings_dict: dict, *, application_name: str) -> str:
    """A DATABASE_URL for the database these Django settings point at (the test database),
    naming the connection so that pg_stat_activity tells whose it is."""
    user = quote(settings_dict.get("USER") or "", safe="")
    password = quote(settings_dict.get("PASSWORD") or "", safe="")
    auth = f"{user}:{password}@" if password else (f"{user}@" if user else "")
    host = settings_dict.get("HOST") or "127.0.0.1"
    port = settings_dict.get("PORT") or 5432
    return (
        f"postgres://{auth}{host}:{port}/{settings_dict['NAME']}"
        f"?application_name={application_name}"
    )


def conninfo(settings_dict: dict, *, application_name: str) -> str:
    return psycopg.conninfo.make_conninfo(
        dbname=settings_dict["NAME"],
        user=settings_dict.get("USER") or None,
        password=settings_dict.get("PASSWORD") or None,
        host=settings_dict.get("HOST") or "127.0.0.1",
        port=settings_dict.get("PORT") or 5432,
        application_name=application_name,
    )


@dataclass
class Worker:
    name: str  # also the application_name of its PostgreSQL connections
    process: subprocess.Popen
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    @property
    def alive(self) -> bool:
        return self.process.poll() is None


@dataclass
class Workers:
    """Starts workers, kills them, and reads what the database and their logs say of them."""

    env: dict[str, str]
    settings_dict: dict
    workdir: Path
    started: list[Worker] = field(default_factory=list)
    _admin: psycopg.Connection | None = None

    def admin(self) -> psycopg.Connection:
        """An autocommit connection of the test's own, for pg_stat_activity."""
        if self._admin is None or self._admin.closed:
            self._admin = psycopg.connect(
                conninfo(self.settings_dict, application_name="faults-observer"), autocommit=True
            )
        return self._admin

    def start(self, *, timeout: float = 30.0) -> Worker:
        """A fresh `celery -A backoffice worker`, returned once it is consuming."""
        name = f"faults-{uuid.uuid4().hex[:10]}"
        log_path = self.workdir / f"{name}.log"
        env = self.env | {
            "DATABASE_URL": database_url(self.settings_dict, application_name=name),
            "VAR_DIR": str(self.workdir / name),
        }
        with log_path.open("w") as log:
            process = subprocess.Popen(
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
                    f"{name}@%h",
                ],
                cwd=BASE_DIR,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: SIGKILL reaches every child
            )
        worker = Worker(name, process, log_path)
        self.started.append(worker)

        def ready() -> bool:
            if not worker.alive:
                pytest.fail(f"worker {name} exited with {process.returncode}:\n{worker.log()}")
            return " ready." in worker.log()

        wait_until(ready, timeout=timeout, interval=0.1, what=f"worker {name} to be ready")
        return worker

    def kill(self, worker: Worker) -> None:
        """SIGKILL the worker's whole process group (main process and pool child), then end
        its PostgreSQL backends.

        PostgreSQL notices a vanished client only when it next talks to it: a backend waiting
        on a lock would carry on once the lock is released and run the dead worker's statement
        to its end (an autocommit UPDATE would even commit). Ending those backends makes the
        kill mean "nothing of what the worker had not committed happens"."""
        if worker.alive:
            os.killpg(worker.process.pid, signal.SIGKILL)
        worker.process.wait(timeout=10)
        self.end_backends(worker)

    def end_backends(self, worker: Worker) -> None:
        db = self.admin()
        db.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s",
            [worker.name],
        )
        wait_until(
            lambda: (
                not db.execute(
                    "SELECT 1 FROM pg_stat_activity WHERE application_name = %s", [worker.name]
                ).fetchone()
            ),
            timeout=10,
            what=f"worker {worker.name}'s connections to end",
        )

    def stop_all(self) -> None:
        for worker in self.started:
            if worker.alive:
                os.killpg(worker.process.pid, signal.SIGKILL)
                worker.process.wait(timeout=10)
        for worker in self.started:
            self.end_backends(worker)
        if self._admin is not None:
            self._admin.close()

    def wait_blocked(self, worker: Worker, *fragments: str, timeout: float = WAIT_SECONDS) -> str:
        """Wait until the worker's connection waits on a lock in a statement that contains
        every fragment (e.g. 'UPDATE', '"payments_depositrefund"'); the statement's text."""

        def blocked() -> str | None:
            if not worker.alive:
                pytest.fail(f"worker {worker.name} died:\n{worker.log()}")
            row = (
                self.admin()
                .execute(
                    "SELECT query FROM pg_stat_activity WHERE application_name = %s"
                    " AND wait_event_type = 'Lock'",
                    [worker.name],
                )
                .fetchone()
            )
            return row[0] if row and all(f in row[0] for f in fragments) else None

        return wait_until(
            blocked,
            timeout=timeout,
            what=f"worker {worker.name} to wait on a lock in a statement with {fragments}",
        )

    def logs(self) -> str:
        return "\n".join(w.log() for w in self.started)

    def calls(self, operation: str) -> list[str]:
        """The calls of this FlashFX operation the workers' client finished (one log line each,
        flashfx/call_log.py): a call cut short by a kill is not among them."""
        marker = f" flashfx {operation} "  # call_log's line, in Celery's log format
        return [line for line in self.logs().splitlines() if marker in line]

    def finished(self, task: str) -> int:
        """How many runs of this task (e.g. 'payments.tasks.deposit_refund_send') the workers
        finished, as Celery logs them."""
        return sum(
            1
            for line in self.logs().splitlines()
            if f"Task {task}[" in line and (" succeeded in " in line or " raised " in line)
        )


@dataclass
class Locker:
    """Locks held from a connection of the test's own, in one open transaction."""

    settings_dict: dict
    connection: psycopg.Connection | None = None

    @contextmanager
    def holding(self, sql: str, params: list) -> Iterator[None]:
        self.connection = psycopg.connect(
            conninfo(self.settings_dict, application_name="faults-locker")
        )
        try:
            row = self.connection.execute(sql, params).fetchone()
            assert row is not None, f"nothing to lock: {sql} {params}"
            yield
        finally:
            self.connection.rollback()
            self.connection.close()

    def row(self, table: str, pk: int) -> AbstractContextManager[None]:
        """The row lock the worker's UPDATE of this row must wait for."""
        return self.holding(f'SELECT id FROM "{table}" WHERE id = %s FOR UPDATE', [pk])

    def advisory(self, key: int) -> AbstractContextManager[None]:
        """A transaction-level advisory lock (the audit trail's: backoffice/audit.py)."""
        return self.holding("SELECT pg_advisory_xact_lock(%s)", [key])


def wait_for_call_at_flashfx(sandbox, *, faults_left: int = 0, what: str = "") -> None:
    """Wait until the sandbox has taken calls under its fault mix until `faults_left` of its
    limit remain. A faulted call counts as it arrives, before a `slow` fault's wait: when this
    returns, the call is at FlashFX and still running there (a fixed pause guessed that, and
    on a loaded machine the worker had not sent it yet)."""
    wait_until(
        lambda: sandbox.faults_left() == faults_left,
        timeout=WAIT_SECONDS,
        what=what or f"the sandbox to take calls until {faults_left} faults remain",
    )


def pause(seconds: float) -> None:
    """A short, deliberate wait (never to wait for an outcome: wait_until does that)."""
    time.sleep(seconds)
