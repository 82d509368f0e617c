"""The process's FlashFX client, built from settings, and the database token store.

Services, tasks and commands call `flashfx_client()`; nothing else builds a FlashFXClient.
The token is shared through Redis when REDIS_URL is set, else through the database, so that
one login serves every web and worker process (docs/flashfx.md §1.2: at most one login per second).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import cache

from django.conf import settings
from django.db import transaction

from flashfx.client import FlashFXClient
from flashfx.errors import FlashFXError
from flashfx.tokens import RedisTokenStore, StoredToken, TokenStore

from .models import FlashFXToken

log = logging.getLogger(__name__)


def _aware(timestamp: float) -> datetime:
    return datetime.fromtimestamp(timestamp, tz=UTC)


class DatabaseTokenStore:
    """The token in the `FlashFXToken` row; the login lock is a row lock on it.

    `login_lock()` opens a transaction and locks the row with SELECT ... FOR UPDATE
    (PostgreSQL); on SQLite, FOR UPDATE is a no-op but our IMMEDIATE transaction mode takes the
    database write lock at BEGIN, which serialises the same way. The client holds the lock
    across the login HTTP call and writes the new token inside it. Called inside an outer
    atomic() block, the lock (and the new token's visibility) lasts until that block commits.
    """

    def get(self) -> StoredToken | None:
        row = FlashFXToken.objects.filter(pk=FlashFXToken.SINGLETON).exclude(token="").first()
        if row is None or row.expires_at is None:
            return None
        issued = row.issued_at or row.expires_at
        return StoredToken(row.token, row.expires_at.timestamp(), issued.timestamp())

    def put(self, token: StoredToken) -> None:
        FlashFXToken.objects.update_or_create(
            pk=FlashFXToken.SINGLETON,
            defaults={
                "token": token.token,
                "issued_at": _aware(token.issued_at),
                "expires_at": _aware(token.expires_at),
            },
        )

    def discard(self, token: str) -> None:
        FlashFXToken.objects.filter(pk=FlashFXToken.SINGLETON, token=token).update(
            token="", issued_at=None, expires_at=None
        )

    @contextmanager
    def login_lock(self) -> Iterator[None]:
        FlashFXToken.objects.get_or_create(pk=FlashFXToken.SINGLETON)  # the row to lock
        with transaction.atomic():
            FlashFXToken.objects.select_for_update().get(pk=FlashFXToken.SINGLETON)
            yield


def token_store() -> TokenStore:
    if settings.REDIS_URL:
        return RedisTokenStore.from_url(settings.REDIS_URL, key=settings.FLASHFX_TOKEN_KEY)
    return DatabaseTokenStore()


@cache
def flashfx_client() -> FlashFXClient:
    """One client per process (it is thread-safe and keeps its HTTP connections open)."""
    return FlashFXClient(
        settings.FLASHFX_API_URL,
        settings.FLASHFX_EMAIL,
        settings.FLASHFX_PASSWORD,
        token_store=token_store(),
        connect_timeout=settings.FLASHFX_CONNECT_TIMEOUT,
        read_timeout=settings.FLASHFX_READ_TIMEOUT,
        query_retry_budget_seconds=settings.FLASHFX_QUERY_RETRY_BUDGET_SECONDS,
    )


def logout_quietly(client: FlashFXClient) -> None:
    """Give the token back at the end of a long-running command, best effort.

    FlashFX being down is a common reason for a command to end, and then the logout fails too:
    that must not replace the command's own error. The token is forgotten either way and
    expires at FlashFX on its own.
    """
    try:
        client.logout()
    except FlashFXError as exc:
        log.warning(
            "flashfx logout failed (%s: %s); the token will expire", type(exc).__name__, exc
        )
