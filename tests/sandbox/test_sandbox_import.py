"""POST /_sandbox/deposits/import: account history in bulk, for sync tests and benchmarks."""

from __future__ import annotations

from decimal import Decimal


def test_imported_deposits_are_confirmed_spread_over_the_range_and_fund_the_balance(sandbox):
    response = sandbox.control(
        "deposits/import",
        {
            "count": 5,
            "amount": "2.50",
            "createdFrom": "2026-01-01T00:00:00Z",
            "createdTo": "2026-01-05T00:00:00Z",
        },
    )
    assert response.status_code == 201, response.text
    rows = sandbox.data("{ deposits { status amount createdAt clearedAt } }")["deposits"]
    assert [r["createdAt"] for r in rows] == [
        f"2026-01-0{d}T00:00:00.000Z" for d in (5, 4, 3, 2, 1)
    ]
    assert {(r["status"], r["amount"]) for r in rows} == {("CONFIRMED", Decimal("2.5"))}
    assert sandbox.balance() == (Decimal("12.50"), Decimal("0.00"))
    window = sandbox.data(
        '{ deposits(input: {minCreatedAt: "2026-01-02T00:00:00Z", maxCreatedAt: "2026-01-03T00:00:00Z"}) { id } }'
    )
    assert len(window["deposits"]) == 2
    assert sandbox.deliveries() == []  # history: nobody was listening


def test_a_bad_import_is_refused_and_stores_nothing(sandbox):
    response = sandbox.control(
        "deposits/import",
        {"count": 0, "createdFrom": "2026-01-01T00:00:00Z", "createdTo": "2026-01-02T00:00:00Z"},
    )
    assert response.status_code == 400 and response.json()["field"] == "count"
    response = sandbox.control(
        "deposits/import",
        {"count": 3, "createdFrom": "2026-01-02T00:00:00Z", "createdTo": "2026-01-01T00:00:00Z"},
    )
    assert response.status_code == 400 and response.json()["field"] == "createdTo"
    assert sandbox.data("{ deposits { id } }")["deposits"] == []
