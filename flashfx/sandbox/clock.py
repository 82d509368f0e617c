"""The sandbox's own clock: background threads that apply due state changes and send webhooks."""

from __future__ import annotations

import logging
import threading

from django.db import close_old_connections, connection

from . import machines, webhooks

log = logging.getLogger(__name__)


def tick() -> dict[str, int]:
    """Everything that is due, once: state changes first, so their webhooks go out in this tick."""
    steps = machines.run_due_steps()
    attempts = webhooks.deliver_due()
    return {"steps": steps, "webhookAttempts": attempts}


class Clock:
    """Two loops, so that a slow webhook receiver never holds back state changes."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self.stopping = threading.Event()
        self.threads = [
            threading.Thread(
                target=self._loop, args=(machines.run_due_steps,), name="clock-steps", daemon=True
            ),
            threading.Thread(
                target=self._loop, args=(webhooks.deliver_due,), name="clock-webhooks", daemon=True
            ),
        ]

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def stop(self) -> None:
        self.stopping.set()
        for thread in self.threads:
            thread.join(timeout=15)

    def _loop(self, work) -> None:
        while not self.stopping.wait(self.interval):
            try:
                while work():  # keep going while there is a backlog
                    if self.stopping.is_set():
                        break
            except Exception:
                # Logged with its traceback and retried on the next beat; the loop must not die.
                log.exception("clock: %s failed", work.__qualname__)
                close_old_connections()
        connection.close()
