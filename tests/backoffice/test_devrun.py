"""make run's runner (backoffice/devrun.py): Ctrl-C stops every process the way it stops
cleanly, and the Celery worker gets its warm shutdown with no ERROR line."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import httpx
from harness import wait_until

BASE_DIR = Path(__file__).resolve().parents[2]

# A "worker" like Celery's prefork one: a main process that stops warmly on SIGTERM (after a
# while, as a task finishes) and a child of it that says so if it is signalled itself.
WORKER = textwrap.dedent(
    """
    import os, signal, subprocess, sys, time
    child = subprocess.Popen([sys.executable, "-c", '''
    import signal, sys, time
    signal.signal(signal.SIGTERM, lambda *a: (print("ERROR child got SIGTERM", flush=True), sys.exit(1)))
    print("child ready", flush=True)
    time.sleep(600)
    '''])
    def warm(*_):
        time.sleep(1.5)
        child.kill(); child.wait()
        print("warm shutdown done", flush=True)
        sys.exit(0)
    signal.signal(signal.SIGTERM, warm)
    print("worker ready", flush=True)
    while True:
        time.sleep(1)
    """
)


def start(procfile: Path, log: Path, **env: str) -> subprocess.Popen:
    with log.open("w") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "backoffice.devrun", str(procfile)],
            cwd=BASE_DIR,
            env={**os.environ, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own group, as a terminal's foreground job
        )


def ctrl_c(process: subprocess.Popen) -> int:
    """What a terminal does on Ctrl-C: SIGINT to the foreground process group."""
    os.killpg(process.pid, signal.SIGINT)
    return process.wait(timeout=90)


def test_ctrl_c_gives_the_worker_a_warm_shutdown_and_leaves_its_children_to_it(tmp_path):
    (tmp_path / "worker.py").write_text(WORKER)
    procfile = tmp_path / "Procfile"
    procfile.write_text(
        f"# comment lines are skipped\n"
        f"web: {sys.executable} -c 'import time; print(\"web ready\", flush=True); time.sleep(600)'\n"
        f"worker: {sys.executable} {tmp_path / 'worker.py'}\n"
    )
    log = tmp_path / "run.log"
    runner = start(procfile, log)
    wait_until(lambda: "child ready" in log.read_text() and "web ready" in log.read_text())
    assert ctrl_c(runner) == 0
    text = log.read_text()
    assert "SIGINT received: stopping" in text
    assert "warm shutdown done" in text  # the 1.5 s it needed, not cut short
    assert "ERROR" not in text and "killing" not in text
    assert re.search(r"system +\| worker stopped", text)


def test_a_process_ending_by_itself_stops_the_others_with_its_status(tmp_path):
    procfile = tmp_path / "Procfile"
    procfile.write_text(
        f"web: {sys.executable} -c 'import time; time.sleep(600)'\n"
        f"sandbox: {sys.executable} -c 'import sys; sys.exit(3)'\n"
    )
    log = tmp_path / "run.log"
    assert start(procfile, log).wait(timeout=60) == 3
    assert "sandbox ended by itself (status 3)" in log.read_text()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_the_real_procfile_stops_on_ctrl_c_without_an_error_line(tmp_path):
    """make run's own processes (web, sandbox, worker with beat) on free ports and an
    embedded database of their own."""
    web, sandbox = free_port(), free_port()
    procfile = tmp_path / "Procfile"
    text = (BASE_DIR / "Procfile").read_text().replace(".venv/bin/python", sys.executable)
    text = text.replace(".venv/bin/celery", str(Path(sys.executable).with_name("celery")))
    procfile.write_text(text.replace(":8000", f":{web}").replace("8001", str(sandbox)))
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")} | {
        "DEBUG": "true",
        "VAR_DIR": str(tmp_path / "var"),
        "FLASHFX_API_URL": f"http://127.0.0.1:{sandbox}/",
        "SANDBOX_DB_PATH": str(tmp_path / "sandbox.sqlite3"),
        "SANDBOX_WEBHOOK_URL": f"http://127.0.0.1:{web}/webhooks/flashfx/",
    }
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput"],
        cwd=BASE_DIR,
        env=env,
        check=True,
        capture_output=True,
    )
    log = tmp_path / "run.log"
    with log.open("w") as out:
        runner = subprocess.Popen(
            [sys.executable, "-m", "backoffice.devrun", str(procfile)],
            cwd=BASE_DIR,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def serving() -> bool:
        try:
            return httpx.get(f"http://127.0.0.1:{web}/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    wait_until(serving, timeout=90, interval=0.5, what="make run's web server")
    wait_until(
        lambda: "ready." in log.read_text(), timeout=90, what="the worker"
    )  # celery@... ready.
    time.sleep(1)
    assert ctrl_c(runner) == 0
    text = log.read_text()
    assert "Warm shutdown" in text
    assert not re.search(r"ERROR|Traceback|killing", text), text[-4000:]
