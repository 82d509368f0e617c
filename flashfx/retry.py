"""When to try a call again: queries within a time budget, mutations never.

A query that failed with FlashFXUnavailable is repeated after an exponential backoff with full
jitter (a Retry-After is honoured as a minimum) while the next attempt would still start within
the budget. A mutation that failed may not be repeated by us: the caller decides, with the same
idempotencyKey (flashfx/errors.py). UNAUTHENTICATED is the session's business (nothing was
executed), not a retry. Each call ends with its one log line, whatever the outcome.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from .call_log import ClientStats, log, log_call
from .errors import FlashFXError, FlashFXUnavailable
from .operations import Operation

T = TypeVar("T")


@dataclass(frozen=True)
class QueryRetries:
    budget: float  # seconds from the first attempt within which a retry may start
    backoff_base: float  # the first retry waits up to this long; each next one twice as long
    backoff_cap: float  # ... but never more than this

    def run(self, operation: Operation, attempt: Callable[[], T], stats: ClientStats) -> T:
        """`attempt()` until it returns, a non-retryable error, or the budget runs out."""
        name = operation.name
        started = time.monotonic()
        deadline = started + self.budget
        attempts = 0
        while True:
            attempts += 1
            try:
                result = attempt()
            except FlashFXUnavailable as exc:
                delay = self.backoff(attempts, exc.retry_after)
                if operation.is_mutation or time.monotonic() + delay > deadline:
                    log_call(name, started, attempts, f"{type(exc).__name__}:{exc.code}")
                    raise
                log.info(
                    "flashfx %s attempt %d failed (%s); retrying in %.2f s",
                    name,
                    attempts,
                    exc.code,
                    delay,
                )
                stats.count("retries")
                time.sleep(delay)
            except FlashFXError as exc:
                log_call(name, started, attempts, f"{type(exc).__name__}:{exc.code}")
                raise
            else:
                log_call(name, started, attempts, "ok")
                return result

    def backoff(self, attempt: int, retry_after: float | None) -> float:
        """Exponential backoff with full jitter; a Retry-After is honoured as a minimum."""
        cap = min(self.backoff_cap, self.backoff_base * 2 ** (attempt - 1))
        jitter = random.uniform(0, cap)  # noqa: S311 (spreads retries; no secret)
        return max(retry_after or 0.0, jitter)
