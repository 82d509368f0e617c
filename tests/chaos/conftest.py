"""What the chaos run needs that production has: a Redis server of its own (append-only file on,
as docker-compose.yml runs it) that the test may stop and start, the app served by gunicorn
(FlashFX's webhooks arrive over HTTP), and real Celery workers killed at random.

The workers are tests/faults' (faults_support.Workers: `celery -A backoffice worker` in a
process group of its own, SIGKILLed with its pool, its database connections ended).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import redis
from harness import WEBHOOK_SECRET, wait_until

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "faults"))
from faults_support import Workers, database_url  # noqa: E402

from backoffice.celery import app as celery_app  # noqa: E402
from mirrors.client import flashfx_client  # noqa: E402

BASE_DIR = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class RedisServer:
    port: int
    workdir: Path
    process: subprocess.Popen | None = None
    restarts: int = 0

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        log = (self.workdir / "redis.log").open("a")
        self.process = subprocess.Popen(
            [
                shutil.which("redis-server") or "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(self.workdir),
                "--appendonly",
                "yes",
                "--maxmemory-policy",
                "noeviction",
                "--save",
                "",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        client = redis.Redis.from_url(self.url)
        wait_until(lambda: self._pings(client), timeout=15, interval=0.1, what="redis to start")
        client.close()

    @staticmethod
    def _pings(client: redis.Redis) -> bool:
        try:
            return bool(client.ping())
        except redis.ConnectionError:
            return False

    def stop(self) -> None:
        """SHUTDOWN, as `docker compose restart redis` does (the append-only file is kept)."""
        if self.process and self.process.poll() is None:
            # It goes away while answering: ConnectionError is SHUTDOWN's usual answer.
            with contextlib.suppress(redis.ConnectionError):
                redis.Redis.from_url(self.url).shutdown(nosave=False)
            self.process.wait(timeout=15)

    def restart(self, *, down_seconds: float = 2.0) -> None:
        import time

        self.stop()
        time.sleep(down_seconds)
        self.start()
        self.restarts += 1


@pytest.fixture
def own_redis(tmp_path):
    if not shutil.which("redis-server"):
        pytest.skip("the chaos run starts and restarts a redis-server of its own")
    server = RedisServer(free_port(), tmp_path / "redis")
    server.workdir.mkdir()
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _reset_publisher() -> None:
    celery_app._after_fork()


@pytest.fixture
def app_env(transactional_db, settings, sandbox, own_redis):
    """The test process and every process it starts: the test database, the test's sandbox as
    FlashFX, the own Redis for the cache, the token, the webhook hand-off and the broker."""
    from django.db import connection

    settings.REDIS_URL = own_redis.url
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": own_redis.url,
        }
    }
    settings.CELERY_BROKER_URL = own_redis.url
    settings.FLASHFX_WEBHOOK_HANDOFF = "coalesced"
    settings.FLASHFX_API_URL = sandbox.url
    _reset_publisher()
    if flashfx_client.cache_info().currsize:
        flashfx_client().close()
    flashfx_client.cache_clear()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SANDBOX_", "DJANGO_"))}
    env |= {
        "DEBUG": "true",
        "REDIS_URL": own_redis.url,
        "CELERY_BROKER_URL": own_redis.url,
        "FLASHFX_API_URL": sandbox.url,
        "FLASHFX_TOKEN_KEY": settings.FLASHFX_TOKEN_KEY,
        "FLASHFX_WEBHOOK_SECRET": WEBHOOK_SECRET,
        # A slow FlashFX answer (the sandbox's `slow` fault) outlasts the read timeout.
        "FLASHFX_READ_TIMEOUT": "4",
        "FLASHFX_QUERY_RETRY_BUDGET_SECONDS": "6",
        "LOG_LEVEL": "INFO",
        "PYTHONUNBUFFERED": "1",
    }
    yield {"env": env, "settings_dict": dict(connection.settings_dict)}
    if flashfx_client.cache_info().currsize:
        flashfx_client().close()
    flashfx_client.cache_clear()
    _reset_publisher()


@pytest.fixture
def chaos_workers(app_env, tmp_path):
    pool = Workers(env=app_env["env"], settings_dict=app_env["settings_dict"], workdir=tmp_path)
    try:
        yield pool
    finally:
        pool.stop_all()


@pytest.fixture
def web(app_env, sandbox, tmp_path):
    """gunicorn serving the app (two processes), registered at the sandbox as the webhook URL."""
    port = free_port()
    env = app_env["env"] | {
        "DATABASE_URL": database_url(app_env["settings_dict"], application_name="chaos-web"),
        "VAR_DIR": str(tmp_path / "web"),
    }
    log_path = tmp_path / "web.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "backoffice.wsgi",
                "--config",
                "python:backoffice.gunicorn_conf",
                "--bind",
                f"127.0.0.1:{port}",
                "--workers",
                "2",
            ],
            cwd=BASE_DIR,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"

    def up() -> bool:
        if process.poll() is not None:
            pytest.fail(f"gunicorn exited:\n{log_path.read_text()}")
        try:
            return httpx.get(url + "/healthz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    wait_until(up, timeout=60, interval=0.2, what="gunicorn to answer")
    sandbox.configure(webhook_url=url + "/webhooks/flashfx/")
    try:
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)
