"""What the client tells the outside about its calls: log lines and counters.

Every module of the client logs on the one `flashfx.client` logger, one INFO line per call:
operation, outcome, duration and attempts. Never a token, a password or a request body.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

log = logging.getLogger("flashfx.client")

# Called with (operation, seconds, attempts, outcome) after every call: the app's metrics
# (backoffice/metrics.py) listen here, so the client imports nothing of the app.
LISTENERS: list[Callable[[str, float, int, str], None]] = []


def log_call(name: str, started: float, attempts: int, outcome: str) -> None:
    """`started` is a time.monotonic(); `outcome` is "ok" or "<ErrorClass>:<code>"."""
    elapsed = time.monotonic() - started
    log.info("flashfx %s %s %.0f ms attempts=%d", name, outcome, elapsed * 1000, attempts)
    for listener in LISTENERS:
        try:
            listener(name, elapsed, attempts, outcome)
        except Exception:  # a listener's failure is never the call's
            log.exception("flashfx call listener %r failed", listener)


@dataclass
class ClientStats:
    """Counters for tests and health pages: how often the client logged in and retried."""

    logins: int = 0  # successful logins made by this client
    relogins: int = 0  # UNAUTHENTICATED answers that made us fetch a new token
    login_waits: int = 0  # 429s on login that we waited out (Retry-After)
    retries: int = 0  # query attempts after the first
    _lock: threading.Lock = field(
        default_factory=threading.Lock, init=False, repr=False, compare=False
    )

    def count(self, counter: Literal["logins", "relogins", "login_waits", "retries"]) -> None:
        """Add one; callers on several threads may count at once."""
        with self._lock:
            setattr(self, counter, getattr(self, counter) + 1)
