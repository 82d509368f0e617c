"""EXPLAIN on PostgreSQL: every filter and sort of the queue reads an index, not the table.

The table is small in a test, so sequential scans are switched off: the question asked is
"is there an index this query can use", which is what a million rows need. The bench
(bench/deposit_queue.py) measures the speed.
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.db import connection
from queue_support import T0, make_deposit
from staff import make_staff

from parties.models import SubClient
from payments.models import Deposit
from payments.selectors import deposits as sel
from payments.selectors.deposits import QueueFilters

pytestmark = pytest.mark.django_db

if connection.vendor != "postgresql":
    pytest.skip(
        "EXPLAIN checks need PostgreSQL (set DATABASE_URL); SQLite plans differ",
        allow_module_level=True,
    )


def plan_of(filters: QueueFilters, *, cursor: str = "") -> str:
    """The plan of the page query, as the selector builds it."""
    sort = filters.sort
    key_field, descending = sel.SORTS[sort]
    qs = sel.deposit_queue_filtered(filters)
    if cursor:
        key, pk, direction = sel.decode_cursor(cursor, sort=sort)
        qs = qs.filter(sel._after(key_field, key, pk, descending=descending))
    order = [f"-{key_field}", "-id"] if descending else [key_field, "id"]
    with connection.cursor() as c:
        c.execute("SET LOCAL enable_seqscan = off")
        plan = qs.order_by(*order)[:51].explain()
    return plan


HISTORY = 3000


@pytest.fixture
def deposits():
    member = make_staff("operator", "olivia")
    sub = SubClient.objects.create(flashfx_id="SC1", full_name="Acacia Pty")
    # A history before the 40 rows the cases look at: with 40 rows alone, a whole read of another
    # index plus a sort cost the planner about as much as the right index's range read, and it
    # chose between them by noise in the statistics (once, deposit_assignee_received for the
    # received range). With the history, only an index that serves the filter is cheap.
    Deposit.objects.bulk_create(
        Deposit(
            flashfx_id=f"OLD{i:05d}",
            flashfx_status="CLOSED",
            currency="AUD",
            amount=Decimal(1000 + i),
            sender_account_name=f"Archive {i}",
            flashfx_created_at=T0 - timedelta(days=400) + timedelta(hours=i),
        )
        for i in range(HISTORY)
    )
    for i in range(40):
        make_deposit(
            amount=Decimal(i),
            flashfx_created_at=T0 + timedelta(hours=i),
            assignee=member if i % 3 == 0 else None,
            sub_client=sub if i % 2 else None,
            review_state="flagged" if i % 5 == 0 else "new",
        )
    with connection.cursor() as c:
        c.execute("ANALYZE payments_deposit")
    return member, sub


CASES = {
    "newest": ("deposit_received", {}),
    "oldest": ("deposit_received", {"sort": "oldest"}),
    "largest": ("deposit_amount", {"sort": "largest"}),
    "smallest": ("deposit_amount", {"sort": "smallest"}),
    "status": ("deposit_status_received", {"status": "REVIEWING"}),
    "review": ("deposit_review_received", {"review": "flagged"}),
    "received range": ("deposit_received", {"received_from": date(2026, 11, 2)}),
    "amount range": ("deposit_amount", {"amount_min": Decimal("5"), "sort": "smallest"}),
}


@pytest.mark.parametrize("case", CASES)
def test_every_filter_and_sort_reads_an_index(deposits, case):
    member, _ = deposits
    index, kw = CASES[case]
    plan = plan_of(QueueFilters(user_id=member.pk, **kw))
    assert index in plan, plan


# The foreign keys' own indexes (Django makes one per ForeignKey) serve these filters as well as
# ours do on a small table; either is an index read.
def test_sub_client_filter_reads_an_index(deposits):
    _, sub = deposits
    plan = plan_of(QueueFilters(sub_client_id=sub.pk))
    assert "deposit_subclient_received" in plan or "sub_client_id_" in plan, plan
    assert "Seq Scan" not in plan


def test_assignee_filter_reads_an_index(deposits):
    member, _ = deposits
    plan = plan_of(QueueFilters(assignee="me", user_id=member.pk))
    assert "deposit_assignee_received" in plan or "assignee_id_" in plan, plan
    assert "Seq Scan" not in plan


def test_search_can_read_the_trigram_index(deposits):
    """Unsorted (the capped count's query), the search reads the trigram index; sorted, the
    planner picks between it and the received index by how many rows it expects to match."""
    qs = sel.deposit_queue_filtered(QueueFilters(q="payer 1")).order_by()
    with connection.cursor() as c:
        c.execute("SET LOCAL enable_seqscan = off")
        plan = qs[:101].explain()
    assert "deposit_search_trgm" in plan, plan


def test_a_deep_page_starts_the_index_scan_at_the_cursor(deposits):
    cursor = sel.encode_cursor(sort="newest", key=T0 + timedelta(hours=20), pk=21, direction="next")
    plan = plan_of(QueueFilters(), cursor=cursor)
    assert "deposit_received" in plan and "Index Cond" in plan, plan


def test_new_count_reads_an_index_on_id(deposits):
    qs = sel.deposit_queue_filtered(QueueFilters()).filter(pk__gt=30).order_by()
    with connection.cursor() as c:
        c.execute("SET LOCAL enable_seqscan = off")
        plan = qs[:100].explain()
    assert "Index Cond: (id > 30)" in plan and "Seq Scan" not in plan, plan
