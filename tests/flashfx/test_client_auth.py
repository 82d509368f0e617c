from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from decimal import Decimal

import pytest
from harness import API_EMAIL, API_PASSWORD

from flashfx.client import DEFAULT_USER_AGENT, FlashFXClient
from flashfx.errors import FlashFXAuthError, FlashFXRejected, FlashFXUnavailable
from flashfx.tokens import MemoryTokenStore, RedisTokenStore, StoredToken, TokenStore, jwt_claims

# Logging in (docs/flashfx.md §1.2, §1.3), against the sandbox over HTTP: renew before `exp`, renew
# after a revocation, one login for many concurrent callers whatever the store, at most one
# login per second, and no secret in any log line.

LOGOUT = "mutation { logout { success code message } }"
RECIPIENT = {"accountIdType": "BSB", "currency": "AUD", "bsb": "062000", "accountNo": "12345678"}
RECIPIENT |= {"firstName": "Mia", "lastName": "Ng"}


class RecordingStore:
    """Wraps a store and records each token put into it, with what it replaced."""

    def __init__(self, inner: TokenStore) -> None:
        self.inner = inner
        self.puts: list[tuple[float, StoredToken, StoredToken | None]] = []
        self._lock = threading.Lock()

    def get(self) -> StoredToken | None:
        return self.inner.get()

    def put(self, token: StoredToken) -> None:
        with self._lock:
            self.puts.append((time.time(), token, self.inner.get()))
        self.inner.put(token)

    def discard(self, token: str) -> None:
        self.inner.discard(token)

    def login_lock(self):
        return self.inner.login_lock()


def make_client(url: str, store: TokenStore | None = None, **options) -> FlashFXClient:
    return FlashFXClient(
        url,
        API_EMAIL,
        options.pop("password", API_PASSWORD),
        token_store=store if store is not None else MemoryTokenStore(),
        connect_timeout=2,
        read_timeout=10,
        **options,
    )


@pytest.fixture
def fast_logins(sandbox):
    """No server-side login spacing: each test starts right after the fixture's own login."""
    sandbox.configure(login_interval_seconds=0.0)
    return sandbox


def revoke(sandbox, token: str) -> None:
    """Log a token out behind the client's back, as another process or FlashFX would."""
    reply = sandbox.data(LOGOUT, token=token)["logout"]
    assert reply["success"], reply


def test_the_token_is_renewed_before_it_expires(fast_logins):
    fast_logins.configure(token_ttl_seconds=3)
    store = RecordingStore(MemoryTokenStore())
    # Renew 0.9 s ahead (30% of 3 s; the default is 10%, at most 300 s): room for a slow call.
    with make_client(fast_logins.url, store, refresh_margin_fraction=0.3) as client:
        end = time.monotonic() + 8
        while time.monotonic() < end:
            assert client.balances() == []
            time.sleep(0.05)
        assert client.stats.relogins == 0  # FlashFX never had to refuse a token
    tokens = [token for _, token, _ in store.puts]
    assert len(tokens) >= 3 and len({t.token for t in tokens}) == len(tokens)
    assert all(t.expires_at - t.issued_at == 3 for t in tokens)  # read from the JWT's exp
    for put_at, _new, old in store.puts[1:]:
        assert old is not None and put_at < old.expires_at  # replaced while still valid


def test_a_revoked_token_is_replaced_by_one_new_login(fast_logins):
    store = RecordingStore(MemoryTokenStore())
    with make_client(fast_logins.url, store) as client:
        client.balances()
        first = store.get()
        revoke(fast_logins, first.token)

        assert client.balances() == []

        assert (client.stats.logins, client.stats.relogins) == (2, 1)
        assert [token.token for _, token, _ in store.puts] == [first.token, store.get().token]
        assert store.get().token != first.token


def test_a_mutation_refused_as_unauthenticated_runs_once_after_the_new_login(fast_logins):
    fast_logins.fund("100.00")
    with make_client(fast_logins.url) as client:
        client.login()
        revoke(fast_logins, client.login().token)

        created = client.create_withdrawal(
            {
                "amount": Decimal("5"),
                "currency": "AUD",
                "recipient": RECIPIENT,
                "externalId": "wd-1",
            }
        )

        assert client.stats.relogins == 1
        assert [w.id for w in client.withdrawals(externalId="wd-1")] == [created.id]


def test_a_logout_by_another_client_sharing_the_store_costs_one_login(fast_logins):
    store = RecordingStore(MemoryTokenStore())
    with make_client(fast_logins.url, store) as worker, make_client(fast_logins.url, store) as cmd:
        worker.balances()
        revoked = store.get().token
        cmd.logout()  # revokes at FlashFX and empties the shared store
        assert store.get() is None
        assert (
            fast_logins.gql("{ balances { currency } }", token=revoked)["errors"][0]["extensions"][
                "code"
            ]
            == "UNAUTHENTICATED"
        )

        assert worker.balances() == []

        assert (worker.stats.logins, worker.stats.relogins) == (2, 0)
        assert len(store.puts) == 2


def test_logout_without_a_token_does_nothing(fast_logins):
    with make_client(fast_logins.url) as client:
        client.logout()
        assert client.stats.logins == 0


def run_together(count: int, work) -> list:
    """Run work(i) in `count` threads released at the same moment; re-raise the first error."""
    barrier = threading.Barrier(count)
    results: list = [None] * count
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            barrier.wait()
            results[i] = work(i)
        except BaseException as exc:  # noqa: BLE001 (reported below)
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    if errors:
        raise errors[0]
    return results


def test_ten_threads_on_one_client_with_an_empty_store_log_in_once(sandbox):
    store = RecordingStore(MemoryTokenStore())
    with make_client(sandbox.url, store) as client:
        results = run_together(10, lambda _: client.balances())
        assert results == [[]] * 10
        assert client.stats.logins == 1
    assert len(store.puts) == 1


def test_ten_clients_sharing_a_store_log_in_once(sandbox):
    store = RecordingStore(MemoryTokenStore())
    clients = [make_client(sandbox.url, store) for _ in range(10)]
    try:
        run_together(10, lambda i: clients[i].balances())
    finally:
        for client in clients:
            client.close()
    assert sum(client.stats.logins for client in clients) == 1
    assert len(store.puts) == 1


@pytest.mark.django_db(transaction=True)
def test_the_database_store_gives_one_login_to_ten_workers(sandbox):
    from django.db import connection

    from mirrors.client import DatabaseTokenStore

    # One store and one client per thread, like separate worker processes sharing a database.
    clients = [make_client(sandbox.url, DatabaseTokenStore()) for _ in range(10)]

    def work(i: int) -> list:
        try:
            return clients[i].balances()
        finally:
            connection.close()  # each thread has its own connection

    try:
        assert run_together(10, work) == [[]] * 10
    finally:
        for client in clients:
            client.close()
    assert sum(client.stats.logins for client in clients) == 1
    stored = DatabaseTokenStore().get()
    assert stored is not None and jwt_claims(stored.token)["exp"] == int(stored.expires_at)

    # A refused token is discarded only while it is still the current one.
    DatabaseTokenStore().discard("not-the-current-token")
    assert DatabaseTokenStore().get() == stored
    DatabaseTokenStore().discard(stored.token)
    assert DatabaseTokenStore().get() is None


@pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="REDIS_URL is not set")
def test_the_redis_store_gives_one_login_to_ten_workers(sandbox):
    key = f"flashfx:test:{uuid.uuid4().hex}"
    stores = [RedisTokenStore.from_url(os.environ["REDIS_URL"], key=key) for _ in range(10)]
    clients = [make_client(sandbox.url, store) for store in stores]
    try:
        assert run_together(10, lambda i: clients[i].balances()) == [[]] * 10
        assert sum(client.stats.logins for client in clients) == 1
        stored = stores[0].get()
        assert stored is not None
        # The key expires with the token.
        ttl = stores[0].redis.pttl(key) / 1000
        assert 0 < ttl <= stored.expires_at - time.time() + 1
        stores[0].discard("not-the-current-token")
        assert stores[1].get() == stored
        stores[0].discard(stored.token)
        assert stores[1].get() is None
    finally:
        for client in clients:
            client.close()
        stores[0].redis.delete(key)


def test_a_wrong_password_is_an_auth_error(sandbox):
    with (
        make_client(sandbox.url, password="not-the-password") as client,
        pytest.raises(FlashFXAuthError) as raised,
    ):
        client.balances()
    assert raised.value.code == "INVALID_CREDENTIALS"
    assert "not-the-password" not in str(raised.value)


def test_logins_are_spaced_at_least_a_second_apart(sandbox):
    """The sandbox answers 429 to a second login within a second (docs/flashfx.md §1.2, §5.9): the client
    spaces its own logins, so apart from the fixture's login it never sees one."""
    store = RecordingStore(MemoryTokenStore())
    with make_client(sandbox.url, store) as client:
        client.login()
        waits_after_first = client.stats.login_waits  # the fixture logged in just before
        client.login(force=True)
        client.login(force=True)
        assert client.stats.login_waits == waits_after_first
        assert client.stats.logins == 3
    assert len({token.token for _, token, _ in store.puts}) == 3


def test_a_429_on_login_is_waited_out(sandbox):
    time.sleep(1.1)  # past the fixture's login
    sandbox.login()  # another process logs in: FlashFX will refuse ours for a second
    with make_client(sandbox.url) as client:
        assert client.balances() == []
        assert (client.stats.logins, client.stats.login_waits) == (1, 1)


def test_a_descriptive_user_agent_is_sent(sandbox):
    seen: list[str] = []
    hooks = {"request": [lambda request: seen.append(request.headers["user-agent"])]}
    with make_client(sandbox.url, http_options={"event_hooks": hooks}) as client:
        client.balances()
    assert seen and set(seen) == {DEFAULT_USER_AGENT}
    assert DEFAULT_USER_AGENT.startswith("flashfx-backoffice/")

    seen.clear()
    with make_client(
        sandbox.url, user_agent="acme-ops/2.0", http_options={"event_hooks": hooks}
    ) as client:
        client.login()
    assert seen and set(seen) == {"acme-ops/2.0"}


def test_calls_are_logged_without_secrets(fast_logins, caplog):
    caplog.set_level(logging.DEBUG)  # every logger, gql's and httpx's included
    fast_logins.fund("100.00")
    with make_client(fast_logins.url) as client:
        client.balances()
        client.create_withdrawal(
            {"amount": Decimal("1"), "currency": "AUD", "recipient": RECIPIENT}
        )
        token = client.login().token
        client.logout()
    lines = [r.getMessage() for r in caplog.records if r.name == "flashfx.client"]
    assert any(line.startswith("flashfx Login ok") for line in lines)
    assert any(line.startswith("flashfx Balances ok") and " ms" in line for line in lines)
    assert any(line.startswith("flashfx CreateWithdrawal ok") for line in lines)
    assert any(line.startswith("flashfx Logout ok") for line in lines)
    assert token not in caplog.text
    assert token.split(".")[2] not in caplog.text  # not even the signature
    assert API_PASSWORD not in caplog.text
    assert "12345678" not in caplog.text  # nor a request body


def test_errors_are_logged_with_their_class_and_code(sandbox, caplog):
    caplog.set_level(logging.INFO, logger="flashfx.client")
    payout = {"amount": Decimal("1"), "currency": "AUD", "recipient": RECIPIENT}
    with make_client(sandbox.url) as client:
        client.login()
        sandbox.faults(http_500=1.0, operations=["createWithdrawal"])
        with pytest.raises(FlashFXUnavailable):
            client.create_withdrawal(payout)
        sandbox.faults()
        with pytest.raises(FlashFXRejected):
            client.create_withdrawal(payout)  # nothing funded
    lines = [r.getMessage() for r in caplog.records if r.name == "flashfx.client"]
    assert any(
        line.startswith("flashfx CreateWithdrawal FlashFXUnavailable:HTTP_500") for line in lines
    )
    assert any(
        line.startswith("flashfx CreateWithdrawal FlashFXRejected:INSUFFICIENT_FUNDS")
        for line in lines
    )


def test_the_token_expiry_is_read_from_the_jwt(fast_logins):
    fast_logins.configure(token_ttl_seconds=1234)
    with make_client(fast_logins.url) as client:
        token = client.login()
    assert token.expires_at - token.issued_at == 1234
    assert token.token not in repr(token)
