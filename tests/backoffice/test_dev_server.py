"""`manage.py runserver`, as `make run` starts it, keeps static paths inside the static folders."""

from __future__ import annotations

import http.client
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from harness import wait_until

BASE_DIR = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(port: int, path: str) -> int:
    """GET `path` exactly as written (no client-side clean-up of ../)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", path)
        return conn.getresponse().status
    finally:
        conn.close()


@pytest.fixture
def dev_server(tmp_path):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env |= {"DEBUG": "true", "VAR_DIR": str(tmp_path)}
    log = tmp_path / "runserver.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "manage.py", "runserver", "--noreload", f"127.0.0.1:{port}"],
            cwd=BASE_DIR,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )

        def up() -> bool:
            assert process.poll() is None, log.read_text()
            try:
                return get(port, "/healthz") == 200
            except OSError:
                return False

        try:
            wait_until(up, timeout=60, interval=0.2, what="runserver to start")
            yield port, log
        finally:
            process.terminate()
            process.wait(timeout=20)


def test_a_path_climbing_out_of_static_is_not_found_and_logs_no_traceback(dev_server):
    port, log = dev_server
    assert get(port, "/static/../manage.py") == 404
    assert get(port, "/static/../../etc/passwd") == 404
    assert get(port, "/static/favicon.svg") == 200
    assert get(port, "/static/no-such-file.css") == 404
    assert "Traceback" not in log.read_text()
