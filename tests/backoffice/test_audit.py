"""The audit trail: record() chains rows, verify_audit finds every kind of tampering, rows are
append-only in the ORM and in the database, appends join the caller's transaction and (on
PostgreSQL) are serialised, and no application code updates or deletes an audit row.

Rows written by signals (sign-in, roles, account changes) are in test_audit_signals.py.
"""

from __future__ import annotations

import ast
import importlib
import ipaddress
import os
import re
import threading
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from django.contrib.auth.models import AnonymousUser
from django.core.management import CommandError, call_command, execute_from_command_line
from django.db import DatabaseError, connection, connections, transaction
from django.test import RequestFactory
from staff import make_staff

from backoffice import audit
from backoffice.audit import GENESIS, Break, digest, record, verify_chain
from backoffice.models import AppendOnlyError, AuditEvent

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


REPO = Path(__file__).resolve().parents[2]
TABLE = AuditEvent._meta.db_table
EDITED = "hash does not match the row's contents (edited)"
RELINKED = "previous hash does not match the row before it (a row removed or inserted)"
on_postgresql = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="PostgreSQL only (advisory lock / DELETE trigger)"
)


def postgresql() -> bool:
    return connection.vendor == "postgresql"


def fresh(event: AuditEvent) -> AuditEvent:
    """The row as the database gives it back."""
    return AuditEvent.objects.get(pk=event.pk)


def chain(n: int, action: str = "test.event") -> list[AuditEvent]:
    return [record(action, details={"n": i}) for i in range(n)]


@contextmanager
def triggers_bypassed():
    """Switch the append-only trigger off for tampering (DDL is transactional on both
    databases: the test's rollback would restore it too; it is restored here anyway)."""
    migration = importlib.import_module("backoffice.migrations.0003_audit_append_only")
    with connection.cursor() as cursor:
        if postgresql():
            cursor.execute(f"ALTER TABLE {TABLE} DISABLE TRIGGER USER")
        else:
            cursor.execute("DROP TRIGGER backoffice_auditevent_no_update")
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            if postgresql():
                cursor.execute(f"ALTER TABLE {TABLE} ENABLE TRIGGER USER")
            else:
                cursor.execute(migration.SQLITE_CREATE)


def tamper(pk: int, **columns: str) -> None:
    """A raw UPDATE behind the application's and the database's back."""
    assignments = ", ".join(f"{name} = %s" for name in columns)
    with triggers_bypassed(), connection.cursor() as cursor:
        cursor.execute(f"UPDATE {TABLE} SET {assignments} WHERE id = %s", [*columns.values(), pk])


def remove(pk: int) -> None:
    with triggers_bypassed(), connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {TABLE} WHERE id = %s", [pk])


def leave_id_gap(size: int = 5) -> None:
    """Make the next automatic id skip `size` values (a gap a forger could fill)."""
    last = AuditEvent.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
    with connection.cursor() as cursor:
        if postgresql():
            cursor.execute(
                "SELECT setval(pg_get_serial_sequence(%s, 'id'), %s)", [TABLE, last + size]
            )
        else:
            cursor.execute(
                "UPDATE sqlite_sequence SET seq = %s WHERE name = %s", [last + size, TABLE]
            )


def forge(
    pk: int | None = None, *, prev_hash: str, hash_: str | None = None, **fields
) -> AuditEvent:
    """A row written straight to the table, with a hash computed as record() would."""
    event = AuditEvent(
        pk=pk,
        occurred_at=fields.pop("occurred_at", datetime.now(UTC)),
        action=fields.pop("action", "payments.payout_approved"),
        actor=fields.pop("actor", "mallory"),
        details=fields.pop("details", {}),
        prev_hash=prev_hash,
        **fields,
    )
    event.hash = hash_ or digest(prev_hash, event)
    event.save(force_insert=True)
    return event


# --- record() -------------------------------------------------------------------------------


def test_first_row_chains_to_genesis_and_each_next_row_to_the_one_before():
    assert not AuditEvent.objects.exists()
    events = chain(4)
    stored = list(AuditEvent.objects.order_by("pk"))
    assert [e.pk for e in stored] == [e.pk for e in events]
    assert stored[0].prev_hash == GENESIS
    for before, after in zip(stored, stored[1:], strict=False):
        assert after.prev_hash == before.hash
    for event in stored:
        assert len(event.hash) == 64 and event.hash != GENESIS
        assert digest(event.prev_hash, event) == event.hash  # recomputes from the stored row
    assert len({e.hash for e in stored}) == 4
    assert verify_chain() == (4, stored[-1].hash, [])


def test_record_returns_the_row_it_stored():
    user = make_staff(None, "alice")
    event = record("test.thing", actor=user, obj=user, details={"k": "v"})
    row = fresh(event)
    assert (row.action, row.actor, row.actor_id) == ("test.thing", "alice", user.pk)
    assert (row.object_type, row.object_id, row.object_repr) == ("auth.user", str(user.pk), "alice")
    assert row.details == {"k": "v"}
    assert (row.prev_hash, row.hash) == (event.prev_hash, event.hash)
    assert row.before is None and row.after is None


def test_the_hash_covers_every_field():
    event = fresh(record("test.thing", details={"k": "v"}, before={"a": 1}, after={"a": 2}))
    for name, value in {
        "action": "test.other",
        "actor": "someone",
        "actor_id": 99,
        "object_id": "7",
        "object_type": "auth.user",
        "object_repr": "x",
        "before": {"a": 0},
        "after": {"a": 3},
        "details": {"k": "w"},
        "remote_addr": "192.0.2.1",
        "user_agent": "curl",
        "occurred_at": event.occurred_at + timedelta(microseconds=1),
    }.items():
        changed = fresh(event)
        setattr(changed, name, value)
        assert digest(event.prev_hash, changed) != event.hash, name
    assert event.prev_hash == GENESIS
    assert digest("f" * 64, event) != event.hash  # the previous hash is covered too


def test_decimal_and_datetime_values_are_stored_as_json_and_still_verify():
    when = datetime(2025, 3, 4, 5, 6, 7, 891234, tzinfo=UTC)
    event = record(
        "test.amounts",
        before={"amount": Decimal("1234.50"), "at": when, "fee": Decimal("0.10")},
        after={"amount": Decimal("1300.00"), "on": date(2025, 3, 5), "rate": 1.25},
        details={
            "nested": [Decimal("0.000001"), {"when": when, "ok": True, "none": None}],
            "text": "Zürich — 東京",
            "big": 2**62,
        },
    )
    row = fresh(event)
    assert row.before == {"amount": "1234.50", "at": "2025-03-04T05:06:07.891Z", "fee": "0.10"}
    assert row.after == {
        "amount": "1300.00",
        "on": "2025-03-05",
        "rate": "1.25",
    }  # a float: kept as its text
    assert row.details == {
        "nested": ["0.000001", {"when": "2025-03-04T05:06:07.891Z", "ok": True, "none": None}],
        "text": "Zürich — 東京",
        "big": 2**62,
    }
    # The in-memory row is what was hashed and equals what comes back.
    assert (event.before, event.after, event.details) == (row.before, row.after, row.details)
    assert digest(row.prev_hash, row) == row.hash
    assert verify_chain()[2] == []


def test_actor_defaults_to_the_requests_user_and_an_explicit_actor_wins():
    alice, bob = make_staff(None, "alice"), make_staff(None, "bob")
    request = RequestFactory().get("/", HTTP_USER_AGENT="Browser/1.0")
    request.user = alice
    by_request = fresh(record("test.a", request=request))
    assert (by_request.actor, by_request.actor_id) == ("alice", alice.pk)
    assert by_request.user_agent == "Browser/1.0"

    explicit = fresh(record("test.b", request=request, actor=bob))
    assert (explicit.actor, explicit.actor_id) == ("bob", bob.pk)

    request.user = AnonymousUser()
    anonymous = fresh(record("test.c", request=request))
    assert (anonymous.actor, anonymous.actor_id) == ("", None)

    nobody = fresh(record("test.d"))  # no request at all: the system
    assert (nobody.actor, nobody.actor_id, nobody.remote_addr, nobody.user_agent) == (
        "",
        None,
        None,
        "",
    )
    assert verify_chain()[2] == []


def test_the_bound_request_is_used_when_none_is_passed():
    alice = make_staff(None, "alice")
    request = RequestFactory().get("/", REMOTE_ADDR="198.51.100.4")
    request.user = alice
    with audit.bind_request(request):
        assert audit.current_request() is request
        row = fresh(record("test.bound"))
    assert audit.current_request() is None
    assert (row.actor, row.remote_addr) == ("alice", "198.51.100.4")


def test_remote_addr_is_remote_addr_and_x_forwarded_for_is_ignored_without_proxies(settings):
    settings.STAFF_TRUSTED_PROXIES = 0
    request = RequestFactory().get(
        "/", REMOTE_ADDR="203.0.113.7", HTTP_X_FORWARDED_FOR="198.51.100.1"
    )
    request.user = AnonymousUser()
    assert fresh(record("test.ip", request=request)).remote_addr == "203.0.113.7"


def test_remote_addr_honours_trusted_proxies(settings):
    settings.STAFF_TRUSTED_PROXIES = 1
    factory = RequestFactory()
    # One proxy in front: the client is the last address it appended.
    request = factory.get(
        "/", REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="192.0.2.66, 198.51.100.23"
    )
    request.user = AnonymousUser()
    assert fresh(record("test.ip", request=request)).remote_addr == "198.51.100.23"

    # No header (a request that skipped the proxy): REMOTE_ADDR.
    request = factory.get("/", REMOTE_ADDR="10.0.0.2")
    request.user = AnonymousUser()
    assert fresh(record("test.ip", request=request)).remote_addr == "10.0.0.2"

    settings.STAFF_TRUSTED_PROXIES = 2
    request = factory.get(
        "/", REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="192.0.2.66, 198.51.100.23, 10.0.0.1"
    )
    request.user = AnonymousUser()
    assert fresh(record("test.ip", request=request)).remote_addr == "198.51.100.23"

    # Garbage in the header is not an address.
    settings.STAFF_TRUSTED_PROXIES = 1
    request = factory.get("/", REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="not-an-ip")
    request.user = AnonymousUser()
    assert fresh(record("test.ip", request=request)).remote_addr is None
    assert verify_chain()[2] == []


@pytest.mark.parametrize("value", [1.25, 0.1, 1.5e-10, 2.0, 10**20])
def test_plain_numbers_still_verify(value):
    """Integers stay numbers; floats are kept as the text they were written as (money is never
    a float, and PostgreSQL's jsonb would rewrite some of them)."""
    row = fresh(record("test.number", details={"v": value}))
    assert row.details == {"v": value if isinstance(value, int) else repr(value)}
    assert digest(row.prev_hash, row) == row.hash


@pytest.mark.parametrize("value", [1e16, -0.0])
def test_floats_jsonb_rewrites_still_verify(value):
    row = fresh(record("test.number", details={"v": value}))
    assert digest(row.prev_hash, row) == row.hash


@pytest.mark.parametrize("address", ["2001:db8::1", "2001:0DB8:0000:0000:0000:0000:0000:0002"])
def test_ipv6_remote_addr_still_verifies(address):
    request = RequestFactory().get("/", REMOTE_ADDR=address)
    request.user = AnonymousUser()
    row = fresh(record("test.ip6", request=request))
    assert row.remote_addr == str(ipaddress.ip_address(address))
    assert verify_chain()[2] == []


def test_ipv4_mapped_ipv6_remote_addr_still_verifies():
    # What a dual-stack listener ([::]) reports for an IPv4 client.
    request = RequestFactory().get("/", REMOTE_ADDR="::ffff:192.0.2.10")
    request.user = AnonymousUser()
    row = fresh(record("test.ip6", request=request))
    assert digest(row.prev_hash, row) == row.hash


# --- verify_audit ------------------------------------------------------------------------------


def test_verify_audit_reports_an_intact_chain(capsys):
    events = chain(3)
    call_command("verify_audit")
    out = capsys.readouterr().out
    assert "audit chain intact: 3 events" in out
    assert events[-1].hash in out  # the head, to be noted somewhere else


def test_verify_audit_on_an_empty_trail(capsys):
    call_command("verify_audit")
    assert f"audit chain intact: 0 events, head {GENESIS}" in capsys.readouterr().out


def test_an_edited_row_is_found_and_named(capsys):
    first, middle, last = chain(3)
    tamper(middle.pk, actor="someone else")
    assert fresh(middle).actor == "someone else"

    count, _, breaks = verify_chain()
    assert count == 3
    assert breaks == [Break(middle.pk, EDITED)]

    with pytest.raises(CommandError, match=rf"first at event {middle.pk}\)") as raised:
        call_command("verify_audit")
    assert "1 problem(s) in 3 events" in str(raised.value)
    assert f"audit event {middle.pk}: {EDITED}" in capsys.readouterr().err


def test_an_edited_json_value_is_found():
    first, middle, last = chain(3)
    tamper(middle.pk, details='{"n": 99}')
    assert fresh(middle).details == {"n": 99}
    assert verify_chain()[2] == [Break(middle.pk, EDITED)]


def test_an_edited_row_with_its_hash_recomputed_breaks_the_next_link():
    first, middle, last = chain(3)
    forged = fresh(middle)
    forged.action = "test.innocent"
    tamper(middle.pk, action="test.innocent", hash=digest(middle.prev_hash, forged))
    assert verify_chain()[2] == [Break(last.pk, RELINKED)]


def test_a_deleted_middle_row_is_found():
    first, middle, last = chain(3)
    remove(middle.pk)
    count, head, breaks = verify_chain()
    assert count == 2
    assert head == last.hash
    assert breaks == [Break(last.pk, RELINKED)]
    with pytest.raises(CommandError, match=rf"first at event {last.pk}\)"):
        call_command("verify_audit")


def test_a_deleted_first_row_is_found():
    first, second = chain(2)
    remove(first.pk)
    assert verify_chain()[2] == [Break(second.pk, RELINKED)]


def test_a_deleted_last_row_changes_the_reported_head():
    """Nothing after it to break: the head hash printed earlier is what shows it."""
    events = chain(3)
    _, head_before, _ = verify_chain()
    remove(events[-1].pk)
    _, head_after, breaks = verify_chain()
    assert breaks == []
    assert (head_before, head_after) == (events[-1].hash, events[-2].hash)


def test_a_forged_row_inserted_between_two_rows_is_found():
    before = record("test.before")
    leave_id_gap()
    after = record("test.after")
    assert after.pk > before.pk + 1
    forged = forge(
        before.pk + 1,
        prev_hash=before.hash,
        occurred_at=before.occurred_at + timedelta(microseconds=1),
    )
    count, _, breaks = verify_chain()
    assert count == 3
    assert breaks == [Break(after.pk, RELINKED)]
    assert forged.pk not in {b.event_id for b in breaks}  # a perfect forgery; the next link tells


def test_a_forged_row_appended_claiming_an_earlier_parent_is_found():
    first, second, third = chain(3)
    forged = forge(prev_hash=first.hash)
    assert verify_chain()[2] == [Break(forged.pk, RELINKED)]
    with pytest.raises(CommandError, match=rf"first at event {forged.pk}\)"):
        call_command("verify_audit")


def test_a_forged_row_with_a_made_up_hash_is_found():
    (last,) = chain(1)
    forged = forge(prev_hash=last.hash, hash_="a" * 64)
    assert verify_chain()[2] == [Break(forged.pk, EDITED)]


def test_a_later_record_chains_to_the_last_row_even_a_forged_one():
    """record() follows the table, so the chain shows where the forgery went in."""
    (first,) = chain(1)
    forged = forge(prev_hash=GENESIS)
    after = record("test.after")
    assert after.prev_hash == forged.hash
    assert verify_chain()[2] == [Break(forged.pk, RELINKED)]


def test_manage_py_exits_non_zero_on_a_break_and_zero_when_intact(capsys, monkeypatch):
    # run_from_argv closes every connection when done, which would end the test's transaction.
    monkeypatch.setattr(connections, "close_all", lambda: None)
    first, middle, last = chain(3)
    execute_from_command_line(["manage.py", "verify_audit"])  # no SystemExit: exit status 0
    assert "audit chain intact: 3 events" in capsys.readouterr().out

    tamper(middle.pk, action="test.rewritten")
    with pytest.raises(SystemExit) as exited:
        execute_from_command_line(["manage.py", "verify_audit"])
    assert exited.value.code not in (0, None)
    err = capsys.readouterr().err
    assert f"audit event {middle.pk}" in err
    assert "CommandError: audit chain broken" in err


def test_verify_chain_reads_in_chunks():
    events = chain(7)
    assert verify_chain(chunk_size=2) == (7, events[-1].hash, [])
    tamper(events[4].pk, actor="x")
    assert verify_chain(chunk_size=2)[2] == [Break(events[4].pk, EDITED)]


# --- append-only ------------------------------------------------------------------------------


def test_queryset_update_delete_and_bulk_update_are_refused():
    event = record("test.keep", details={"n": 1})
    with pytest.raises(AppendOnlyError):
        AuditEvent.objects.update(action="x")
    with pytest.raises(AppendOnlyError):
        AuditEvent.objects.filter(pk=event.pk).update(action="x")
    with pytest.raises(AppendOnlyError):
        AuditEvent.objects.all().delete()
    with pytest.raises(AppendOnlyError):
        AuditEvent.objects.filter(pk=event.pk).delete()
    row = fresh(event)
    row.action = "x"
    with pytest.raises(AppendOnlyError):
        AuditEvent.objects.bulk_update([row], ["action"])
    with pytest.raises(AppendOnlyError):
        AuditEvent.objects.filter(pk=event.pk).bulk_update([row], ["action"])
    assert fresh(event).action == "test.keep"
    assert verify_chain() == (1, event.hash, [])


def test_instance_save_and_delete_are_refused():
    event = record("test.keep")
    with pytest.raises(AppendOnlyError):
        event.save()  # the instance record() returned
    row = fresh(event)
    row.action = "x"
    with pytest.raises(AppendOnlyError):
        row.save()
    with pytest.raises(AppendOnlyError):
        row.save(update_fields=["action"])
    with pytest.raises(AppendOnlyError):
        row.delete()
    assert fresh(event).action == "test.keep"
    assert AuditEvent.objects.count() == 1


def test_raw_sql_update_is_refused_by_the_database():
    event = record("test.keep")
    with (
        pytest.raises(DatabaseError, match="append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(f"UPDATE {TABLE} SET action = %s WHERE id = %s", ["test.changed", event.pk])
    assert fresh(event).action == "test.keep"
    assert verify_chain()[2] == []


@on_postgresql
def test_raw_sql_delete_is_refused_by_the_database_on_postgresql():
    event = record("test.keep")
    with (
        pytest.raises(DatabaseError, match="append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(f"DELETE FROM {TABLE} WHERE id = %s", [event.pk])
    assert AuditEvent.objects.filter(pk=event.pk).exists()


def test_raw_sql_delete_on_sqlite_is_left_to_verify_audit():
    if connection.vendor != "sqlite":
        pytest.skip("SQLite only: its trigger refuses UPDATE, not DELETE (Django's test flush)")
    first, middle, last = chain(3)
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {TABLE} WHERE id = %s", [middle.pk])
    assert verify_chain()[2] == [Break(last.pk, RELINKED)]


def test_tampering_helpers_restore_the_trigger():
    event = record("test.keep")
    tamper(event.pk, action="test.changed")
    with (
        pytest.raises(DatabaseError, match="append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(f"UPDATE {TABLE} SET action = %s WHERE id = %s", ["again", event.pk])


# --- transactions -----------------------------------------------------------------------------


class Boom(Exception):
    pass


def test_a_rolled_back_transaction_leaves_no_row_and_the_chain_continues():
    committed = record("test.committed")
    with pytest.raises(Boom), transaction.atomic():
        record("test.rolled_back")
        record("test.rolled_back")
        raise Boom
    assert not AuditEvent.objects.filter(action="test.rolled_back").exists()
    following = record("test.following")
    assert following.prev_hash == committed.hash
    assert verify_chain() == (2, following.hash, [])


def test_the_audit_row_commits_only_with_the_action():
    user = make_staff(None, "alice")
    start = AuditEvent.objects.count()
    with pytest.raises(Boom), transaction.atomic():
        user.email = "changed@example.com"
        user.save()  # signal: an account_changed row, inside this transaction
        assert AuditEvent.objects.count() == start + 1
        raise Boom
    user.refresh_from_db()
    assert user.email == "alice@example.com"
    assert AuditEvent.objects.count() == start
    assert verify_chain()[2] == []


@on_postgresql
@pytest.mark.django_db(transaction=True)
def test_concurrent_appends_keep_one_chain_on_postgresql():
    """8 connections appending at once: without the advisory lock two of them would read the
    same last hash and fork the chain."""
    threads_n, per_thread = 8, 25
    start = AuditEvent.objects.count()
    barrier = threading.Barrier(threads_n)
    errors: list[BaseException] = []

    def append(n: int) -> None:
        try:
            barrier.wait(timeout=30)
            for i in range(per_thread):
                record("test.concurrent", details={"thread": n, "i": i})
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connection.close()

    workers = [threading.Thread(target=append, args=(n,)) for n in range(threads_n)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
    assert not any(w.is_alive() for w in workers)
    assert errors == []

    count, head, breaks = verify_chain()
    assert count == start + threads_n * per_thread
    assert breaks == []
    rows = list(AuditEvent.objects.filter(action="test.concurrent").order_by("pk"))
    assert len(rows) == threads_n * per_thread
    assert len({r.prev_hash for r in rows}) == len(rows)  # no two rows claim the same parent
    for n in range(threads_n):  # each thread's rows in its own order
        assert [r.details["i"] for r in rows if r.details["thread"] == n] == list(range(per_thread))
    assert head == rows[-1].hash


# --- no code path updates or deletes audit rows ----------------------------------------------

SKIPPED_DIRS = {"tests", "migrations", "node_modules", "__pycache__", "var", "build", "dist"}
WRITES = {"update", "delete", "bulk_update", "update_or_create", "_update", "_raw_delete"}
RAW_SQL = re.compile(
    r"\b(update\s+(only\s+)?|delete\s+from\s+(only\s+)?|truncate\s+(table\s+)?(only\s+)?"
    r"|alter\s+table\s+|drop\s+trigger\s+(if\s+exists\s+)?)[\"'`]?backoffice_auditevent",
    re.IGNORECASE,
)


def app_python_files() -> list[Path]:
    found = []
    for root, dirs, files in os.walk(REPO):
        dirs[:] = sorted(
            d
            for d in dirs
            if d not in SKIPPED_DIRS and not d.startswith(".") and not d.endswith(".egg-info")
        )
        found += [Path(root) / f for f in files if f.endswith(".py")]
    return found


def _names_in(node: ast.AST) -> set[str]:
    names = set()
    for sub in ast.walk(node):
        if isinstance(sub, ast.Name):
            names.add(sub.id)
        elif isinstance(sub, ast.Attribute):
            names.add(sub.attr)
        elif isinstance(sub, ast.Constant) and isinstance(sub.value, str):
            names.add(sub.value.rsplit(".", 1)[-1])
    return names


def _receiver(call: ast.Call) -> ast.AST | None:
    return call.func.value if isinstance(call.func, ast.Attribute) else None


def _bound_names(tree: ast.AST) -> set[str]:
    """AuditEvent and the names assigned from expressions naming it, transitively."""
    bound = {"AuditEvent"}
    changed = True
    while changed:
        changed = False
        for node in ast.walk(tree):
            targets = []
            if isinstance(node, ast.Assign):
                targets, value = node.targets, node.value
            elif isinstance(node, ast.AnnAssign | ast.NamedExpr) and node.value is not None:
                targets, value = [node.target], node.value
            elif isinstance(node, ast.For | ast.comprehension):
                targets, value = [node.target], node.iter
            elif isinstance(node, ast.withitem) and node.optional_vars is not None:
                targets, value = [node.optional_vars], node.context_expr
            if targets and _names_in(value) & bound:
                for target in targets:
                    for name in ast.walk(target):
                        if isinstance(name, ast.Name) and name.id not in bound:
                            bound.add(name.id)
                            changed = True
    return bound


def audit_writes(source: str, filename: str = "<source>") -> list[str]:
    """Every place this source updates or deletes audit rows (ORM calls on AuditEvent, or on a
    name bound to an AuditEvent expression, and raw SQL naming the table)."""
    tree = ast.parse(source, filename)
    bound = _bound_names(tree)
    found = []
    for node in ast.walk(tree):
        where = f"{filename}:{getattr(node, 'lineno', '?')}"
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            receiver = _receiver(node)
            if not (_names_in(receiver) & bound):
                continue
            method = node.func.attr
            force_insert = any(
                k.arg == "force_insert" and isinstance(k.value, ast.Constant) and k.value.value
                for k in node.keywords
            )
            if method in WRITES or (method == "save" and not force_insert):
                found.append(f"{where}: .{method}() on an audit row")
        elif (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and RAW_SQL.search(node.value)
        ):
            found.append(f"{where}: raw SQL {node.value.strip()[:60]!r}")
    return found


INSERTS = {"create", "bulk_create", "get_or_create", "update_or_create", "_insert"}
RAW_INSERT = re.compile(r"\binsert\s+(or\s+\w+\s+)?into\s+[\"'`]?backoffice_auditevent", re.I)


def audit_inserts(source: str, filename: str = "<source>") -> list[str]:
    """Every place this source makes an audit row itself (rather than through record())."""
    tree = ast.parse(source, filename)
    bound = _bound_names(tree)
    found = []
    for node in ast.walk(tree):
        where = f"{filename}:{getattr(node, 'lineno', '?')}"
        if isinstance(node, ast.Call):
            if isinstance(node.func, ast.Name) and node.func.id in bound:
                found.append(f"{where}: {node.func.id}(...)")
            elif (
                isinstance(node.func, ast.Attribute)
                and node.func.attr in INSERTS
                and _names_in(node.func.value) & bound
            ):
                found.append(f"{where}: .{node.func.attr}() of an audit row")
        elif (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and RAW_INSERT.search(node.value)
        ):
            found.append(f"{where}: raw SQL {node.value.strip()[:60]!r}")
    return found


def test_the_scanner_finds_each_kind_of_audit_write():
    sample = """
from django.db import connection
from backoffice.models import AuditEvent

AuditEvent.objects.filter(action="x").update(action="y")
AuditEvent.objects.all().delete()
AuditEvent.objects.bulk_update([], ["action"])
events = AuditEvent.objects.filter(pk__lt=10)
events.delete()
for event in AuditEvent.objects.all():
    event.action = "z"
    event.save()
Model = apps.get_model("backoffice", "AuditEvent")
Model.objects.update(actor="")
with connection.cursor() as cursor:
    cursor.execute("UPDATE backoffice_auditevent SET actor = ''")
    cursor.execute('DELETE FROM "backoffice_auditevent" WHERE id = 1')
    cursor.execute("truncate table backoffice_auditevent")
    cursor.execute("ALTER TABLE backoffice_auditevent DISABLE TRIGGER USER")
"""
    found = audit_writes(sample)
    assert len(found) == 10, found


def test_the_scanner_lets_the_one_insert_and_other_models_through():
    sample = """
from backoffice.models import AuditEvent, StaffSession

event = AuditEvent(action="x")
event.save(force_insert=True)
StaffSession.objects.filter(pk=1).update(ended_at=None)
AuditEvent.objects.filter(action="x").count()
"""
    assert audit_writes(sample) == []


def test_no_application_code_updates_or_deletes_audit_rows():
    files = app_python_files()
    relative = {f.relative_to(REPO).as_posix() for f in files}
    # The scan covers the application (and skips only tests and migrations).
    assert {"backoffice/audit.py", "backoffice/admin.py", "backoffice/signals.py"} <= relative
    assert not any(p.startswith(("tests/", ".venv/")) or "/migrations/" in p for p in relative)
    found = []
    for path in files:
        found += audit_writes(path.read_text(encoding="utf-8"), path.relative_to(REPO).as_posix())
    assert found == []


def test_the_insert_scanner_finds_rows_made_outside_record():
    sample = """
from backoffice.models import AuditEvent

AuditEvent(action="x").save()
AuditEvent.objects.create(action="x")
AuditEvent.objects.bulk_create([])
Model = apps.get_model("backoffice", "AuditEvent")
Model(action="y")
cursor.execute("INSERT INTO backoffice_auditevent (action) VALUES ('x')")
"""
    assert len(audit_inserts(sample)) == 5, audit_inserts(sample)
    assert audit_inserts("from backoffice import audit\naudit.record('x')\n") == []


def test_only_record_makes_audit_rows():
    found = []
    for path in app_python_files():
        relative = path.relative_to(REPO).as_posix()
        if relative != "backoffice/audit.py":
            found += audit_inserts(path.read_text(encoding="utf-8"), relative)
    assert found == []
    record_source = (REPO / "backoffice/audit.py").read_text(encoding="utf-8")
    # The one AuditEvent(...), in entry(), and the one INSERT, in append_many().
    assert [found.split(": ", 1)[1] for found in audit_inserts(record_source)] == [
        "AuditEvent(...)",
        ".bulk_create() of an audit row",
    ]
