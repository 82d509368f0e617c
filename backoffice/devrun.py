"""`make run`'s process runner: the Procfile's processes in the foreground, stopped cleanly.

    python -m backoffice.devrun [Procfile]

A Procfile's commands may name environment variables ($PORT, ${VAR_DIR}), as with foreman.

Each process runs in a session of its own, its lines printed with its name in front. Ctrl-C
(or SIGTERM) stops them all, each the way it stops cleanly. First the Celery worker: SIGTERM
in its main process only, which is Celery's warm shutdown (running tasks finish, the pool's
processes are let go by the worker itself, beat saves its schedule), and that is waited for,
so that a task in flight still has the sandbox and the web server it talks to. Then the web
server and the sandbox: SIGTERM with everything they started (runserver's autoreloader has a
child). Signalling the
pool's processes too, as a process-group kill does (honcho, which `make run` used before), kills
them mid-task and makes the worker log each as an ERROR. Anything still running after
STOP_SECONDS is killed, and says so. Exits 0 after a requested stop, else with the status of
the first process that ended by itself.
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

STOP_SECONDS = float(os.environ.get("DEVRUN_STOP_SECONDS", "60"))
WARM_SHUTDOWN = {"worker"}  # Procfile names whose main process alone is signalled


def read_procfile(path: Path) -> list[tuple[str, str]]:
    entries = []
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, _, command = line.partition(":")
            entries.append((name.strip(), command.strip()))
    return entries


class Runner:
    def __init__(self, entries: list[tuple[str, str]]) -> None:
        self.entries = entries
        self.width = max(len(name) for name, _ in entries)
        self.processes: dict[str, subprocess.Popen] = {}
        self.lock = threading.Lock()
        self.stopping = threading.Event()

    def say(self, name: str, text: str) -> None:
        with self.lock:
            sys.stdout.write(f"{time.strftime('%H:%M:%S')} {name:<{self.width}} | {text}\n")
            sys.stdout.flush()

    def start(self) -> None:
        for name, command in self.entries:
            # The Procfile's own commands (ours, in the repository), $NAME from our environment.
            process = subprocess.Popen(  # noqa: S603
                shlex.split(os.path.expandvars(command)),
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # Ctrl-C reaches us alone; we decide who gets what
                text=True,
                errors="replace",
                bufsize=1,
            )
            self.processes[name] = process
            self.say("system", f"{name} started (pid {process.pid})")
            threading.Thread(target=self.pump, args=(name, process), daemon=True).start()

    def pump(self, name: str, process: subprocess.Popen) -> None:
        if process.stdout is None:  # started with stdout=PIPE: always there
            return
        for line in process.stdout:
            self.say(name, line.rstrip("\n"))

    def stop(self) -> None:
        """The worker first, and wait for it: its running tasks finish while the web server
        and the sandbox they talk to are still up. Then the rest."""
        deadline = time.monotonic() + STOP_SECONDS
        warm = [n for n in self.processes if n in WARM_SHUTDOWN]
        for names in (warm, [n for n in self.processes if n not in WARM_SHUTDOWN]):
            for name in names:
                if self.processes[name].poll() is None:
                    self.say("system", f"stopping {name}")
                    self.signal(name, self.processes[name], signal.SIGTERM)
            for name in names:
                process = self.processes[name]
                try:
                    process.wait(timeout=max(0.0, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    self.say("system", f"{name} still running after {STOP_SECONDS:g} s: killing it")
                    self.signal(name, process, signal.SIGKILL, group=True)
                    process.wait()
                self.say("system", f"{name} stopped")

    def signal(
        self, name: str, process: subprocess.Popen, signum: int, *, group: bool = False
    ) -> None:
        try:
            if name in WARM_SHUTDOWN and not group:
                os.kill(process.pid, signum)
            else:
                os.killpg(process.pid, signum)  # its session's id is its pid
        except ProcessLookupError:
            pass

    def run(self) -> int:
        def requested(signum: int, _frame: object) -> None:
            if not self.stopping.is_set():
                self.say("system", f"{signal.Signals(signum).name} received: stopping")
                self.stopping.set()

        signal.signal(signal.SIGINT, requested)
        signal.signal(signal.SIGTERM, requested)
        self.start()
        ended = None
        while not self.stopping.wait(0.2):
            ended = next((n for n, p in self.processes.items() if p.poll() is not None), None)
            if ended is not None:
                code = self.processes[ended].returncode
                self.say("system", f"{ended} ended by itself (status {code}): stopping the rest")
                break
        self.stop()
        return 0 if ended is None else (self.processes[ended].returncode or 1)


def main(argv: list[str]) -> int:
    procfile = Path(argv[1] if len(argv) > 1 else "Procfile")
    return Runner(read_procfile(procfile)).run()


if __name__ == "__main__":
    sys.exit(main(sys.argv))
