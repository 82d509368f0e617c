"""Where the FlashFX token lives, so that one login serves every thread and every process.

FlashFX allows at most one login per second (docs/flashfx.md §1.2) and a token lasts hours (§1.3), so
workers must share it rather than each log in. A `TokenStore` holds the current token and a
login lock; the client takes the lock, re-reads the store (another caller may have just logged
in) and only then logs in, holding the lock across the login HTTP call.

Implementations: `MemoryTokenStore` (one process: tests, scripts), `RedisTokenStore` (every
process that shares the Redis). The database one is Django code and lives in
mirrors/client.py. No Django here.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, suppress
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import redis


class TokenLockTimeout(Exception):
    """The login lock could not be taken in time (another caller is stuck logging in)."""


def jwt_claims(token: str) -> dict[str, Any]:
    """The payload of a JWT, read without checking the signature (we only need `iat`/`exp`).

    A JWT is three base64url segments; the middle one is the JSON payload (docs/flashfx.md §1.3).
    """
    try:
        payload = token.split(".")[1]
        padded = payload + "=" * (-len(payload) % 4)
        claims = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
    except (IndexError, ValueError, UnicodeError) as exc:
        raise ValueError("not a JWT") from exc
    if not isinstance(claims, dict):
        raise ValueError("not a JWT")
    return claims


@dataclass(frozen=True)
class StoredToken:
    """A FlashFX token and the times read from it (Unix seconds)."""

    token: str = field(repr=False)  # a bearer secret: never in a repr, a log line or an error
    expires_at: float
    issued_at: float

    @classmethod
    def from_jwt(cls, token: str, *, default_lifetime: float = 3600.0) -> StoredToken:
        """Read `exp`/`iat`; a token without them is assumed to live `default_lifetime`."""
        now = time.time()
        try:
            claims = jwt_claims(token)
        except ValueError:
            claims = {}
        issued_at = float(claims.get("iat") or now)
        expires_at = float(claims.get("exp") or issued_at + default_lifetime)
        return cls(token=token, expires_at=expires_at, issued_at=issued_at)

    @property
    def lifetime(self) -> float:
        return max(0.0, self.expires_at - self.issued_at)

    def refresh_at(self, *, max_margin: float = 300.0, fraction: float = 0.1) -> float:
        """When to log in again: ahead of `exp` by min(max_margin, fraction of the lifetime)."""
        return self.expires_at - min(max_margin, fraction * self.lifetime)


class TokenStore(Protocol):
    def get(self) -> StoredToken | None:
        """The current token, or None."""

    def put(self, token: StoredToken) -> None:
        """Make this the current token."""

    def discard(self, token: str) -> None:
        """Forget the token, but only if it is still the current one (compare-and-delete)."""

    def login_lock(self) -> AbstractContextManager[None]:
        """Held by the one caller that logs in; exclusive across threads and processes."""


class MemoryTokenStore:
    """One process: a variable and a threading.Lock. For tests and scripts."""

    def __init__(self) -> None:
        self._token: StoredToken | None = None
        self._state = threading.Lock()  # guards _token
        self._login = threading.Lock()

    def get(self) -> StoredToken | None:
        with self._state:
            return self._token

    def put(self, token: StoredToken) -> None:
        with self._state:
            self._token = token

    def discard(self, token: str) -> None:
        with self._state:
            if self._token is not None and self._token.token == token:
                self._token = None

    @contextmanager
    def login_lock(self) -> Iterator[None]:
        with self._login:
            yield


# Compare-and-delete in one step: only the holder of the current token may remove it.
_DISCARD_SCRIPT = """
local value = redis.call('GET', KEYS[1])
if value and cjson.decode(value)['token'] == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


class RedisTokenStore:
    """Every process sharing one Redis: the token under a key that expires with the token,
    and the login lock as a redis-py `Lock` whose own timeout frees it if its holder dies."""

    def __init__(
        self,
        client: redis.Redis,
        *,
        key: str = "flashfx:token",
        lock_timeout: float = 120.0,
        lock_wait: float = 150.0,
    ) -> None:
        # lock_timeout must exceed the longest login: an HTTP call plus a Retry-After wait.
        self.redis = client
        self.key = key
        self.lock_key = f"{key}:login-lock"
        self.lock_timeout = lock_timeout
        self.lock_wait = lock_wait
        self._discard = client.register_script(_DISCARD_SCRIPT)

    @classmethod
    def from_url(cls, url: str, **kwargs: Any) -> RedisTokenStore:
        import redis

        return cls(redis.Redis.from_url(url), **kwargs)

    def get(self) -> StoredToken | None:
        raw = self.redis.get(self.key)
        if raw is None:
            return None
        data = json.loads(raw)
        return StoredToken(data["token"], float(data["expires_at"]), float(data["issued_at"]))

    def put(self, token: StoredToken) -> None:
        value = json.dumps(
            {"token": token.token, "expires_at": token.expires_at, "issued_at": token.issued_at}
        )
        ttl_ms = int((token.expires_at - time.time()) * 1000)
        if ttl_ms <= 0:
            self.redis.delete(self.key)
            return
        self.redis.set(self.key, value, px=ttl_ms)

    def discard(self, token: str) -> None:
        self._discard(keys=[self.key], args=[token])

    @contextmanager
    def login_lock(self) -> Iterator[None]:
        from redis.exceptions import LockError

        lock = self.redis.lock(
            self.lock_key, timeout=self.lock_timeout, blocking_timeout=self.lock_wait
        )
        if not lock.acquire():
            raise TokenLockTimeout(f"waited {self.lock_wait}s for the FlashFX login lock")
        try:
            yield
        finally:
            # LockError: it expired while held; someone else may hold it now, not ours to free.
            with suppress(LockError):
                lock.release()
