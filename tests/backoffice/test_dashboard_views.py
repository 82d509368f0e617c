"""The dashboard page (/): tiles by permission, each tile alone as an htmx fragment, charts as
SVG with titles and the figures as text, and a bounded number of queries whatever the data."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from dashboard_support import (
    approval,
    deposit,
    drift_item,
    event,
    expected,
    payment,
    snapshot,
    sync_run,
    withdrawal,
)
from django.contrib.auth.models import Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from staff import make_staff, sign_in

from backoffice import roles
from mirrors.models import DriftItem, SyncRun
from payments.models import Deposit
from webhooks.models import InboundEvent

pytestmark = pytest.mark.django_db

HX = {"HX-Request": "true"}
TILE_IDS = ("tile-balances", "tile-money", "tile-work", "tile-health")


def tiles_in(html: str) -> set[str]:
    return {t for t in TILE_IDS if f'id="{t}"' in html}


@pytest.mark.parametrize(
    "role", [roles.VIEWER, roles.OPERATOR, roles.APPROVER, roles.COMPLIANCE, roles.ADMIN]
)
def test_every_role_that_reads_money_sees_all_four_tiles(client, role):
    sign_in(client, make_staff(role))
    html = client.get("/").content.decode()
    assert tiles_in(html) == set(TILE_IDS)
    assert 'id="pages-heading"' in html  # the pages stay, as a short navigation


def test_a_member_without_a_role_sees_no_tile_and_is_told_why(client):
    sign_in(client, make_staff(None))
    response = client.get("/")
    html = response.content.decode()
    assert response.status_code == 200
    assert tiles_in(html) == set()
    assert "your role gives you no pages" in html
    assert client.get("/?tile=money", headers=HX).status_code == 403


def test_a_member_who_reads_deposits_only_sees_their_tiles_and_rows(client):
    member = make_staff(None, "depositreader")
    member.user_permissions.add(Permission.objects.get(codename="view_deposit"))
    sign_in(client, member)
    withdrawal(timezone.now() - timedelta(minutes=5), "77.00")
    html = client.get("/").content.decode()
    assert tiles_in(html) == {"tile-money", "tile-work"}
    assert "Deposits in" in html and "Payouts out" not in html
    assert "New deposits to review" in html
    assert "approve" not in html.lower()  # no approvals row without view_approval
    assert "Overdue expected" not in html
    assert client.get("/?tile=balances", headers=HX).status_code == 403


def test_each_tile_answers_alone_as_a_fragment_that_polls_itself(client):
    sign_in(client, make_staff(roles.VIEWER))
    for name in ("balances", "money", "work", "health"):
        response = client.get(f"/?tile={name}", headers=HX)
        html = response.content.decode()
        assert response.status_code == 200
        assert html.lstrip().startswith(f'<section id="tile-{name}"')
        assert f'hx-get="/?tile={name}"' in html and 'hx-swap="outerHTML"' in html
        assert "<html" not in html and tiles_in(html) == {f"tile-{name}"}
        assert response["Vary"] and "HX-Request" in response["Vary"]


def test_an_unknown_tile_is_not_found(client):
    sign_in(client, make_staff(roles.VIEWER))
    assert client.get("/?tile=secrets", headers=HX).status_code == 404


def test_without_htmx_a_tile_link_is_the_whole_page(client):
    sign_in(client, make_staff(roles.VIEWER))
    html = client.get("/?tile=money").content.decode()
    assert "<html" in html and tiles_in(html) == set(TILE_IDS)


def test_the_money_chart_is_svg_with_titles_and_the_figures_as_text(client):
    sign_in(client, make_staff(roles.VIEWER))
    now = timezone.now()
    deposit(now - timedelta(minutes=1), "1234.56")
    withdrawal(now - timedelta(minutes=1), "200.00", total_fee=Decimal("1.10"))
    html = client.get("/?tile=money", headers=HX).content.decode()
    assert '<svg viewBox="0 0 720 240" role="img"' in html
    assert '<title id="money-AUD-title">Money in and out, AUD, last 30 days</title>' in html
    assert re.search(
        r"<rect class=\"bar-deposits\"[^>]*><title>[^<]*Deposits in, AUD 1,234.56</title>", html
    )
    assert re.search(
        r"<rect class=\"bar-payouts\"[^>]*><title>[^<]*Payouts out, AUD 200.00</title>", html
    )
    assert '<th scope="row">Deposits in</th><td class="num">1,234.56</td>' in html
    assert '<th scope="row">Fees out</th><td class="num">1.10</td>' in html
    assert "style=" not in html  # the CSP allows no inline style


def test_balances_show_cleared_pending_when_read_and_a_line_over_time(client):
    sign_in(client, make_staff(roles.VIEWER))
    now = timezone.now()
    snapshot(now - timedelta(days=2), "1000.00")
    snapshot(now - timedelta(minutes=10), "98765.43", "250.00")
    html = client.get("/?tile=balances", headers=HX).content.decode()
    assert "98,765.43" in html and "250.00" in html
    assert '<time datetime="' in html  # when it was read
    assert '<polyline class="spark-line"' in html
    assert "Cleared AUD balance at the end of each day" in html


def test_the_balance_tile_says_when_nothing_was_read_yet(client):
    sign_in(client, make_staff(roles.VIEWER))
    html = client.get("/?tile=balances", headers=HX).content.decode()
    assert "No balance read from FlashFX yet" in html


def test_rendering_the_dashboard_never_calls_flashfx(client, settings):
    settings.FLASHFX_API_URL = "http://127.0.0.1:1/"  # nothing listens: a call would fail
    sign_in(client, make_staff(roles.VIEWER))
    assert client.get("/").status_code == 200


def test_health_links_each_figure_to_the_filtered_list(client):
    sign_in(client, make_staff(roles.VIEWER))
    event(InboundEvent.Status.FAILED, timezone.now() - timedelta(hours=1))
    drift_item(DriftItem.Resolution.FLAGGED)
    html = client.get("/?tile=health", headers=HX).content.decode()
    for href in (
        "/webhooks/events/?status=failed",
        "/webhooks/events/?status=quarantined",
        "/webhooks/events/?status=dead",
        "/reconciliation/",
    ):
        assert f'href="{href}"' in html
    assert re.search(
        r'Failed webhooks \(24 h\)</a></th><td class="num"><span class="badge bad">1</span>', html
    )
    assert "Worker queue" in html
    assert "/admin/" not in html  # the sync runs' list is the admin's, and a viewer is not one


def test_work_links_to_the_lists_behind_each_count(client):
    approver = make_staff(roles.APPROVER, "approver1")
    maker = make_staff(roles.OPERATOR, "maker1")
    sign_in(client, approver)
    now = timezone.now()
    deposit(now - timedelta(hours=2), review_state=Deposit.Review.NEW)
    approval(maker, at=now - timedelta(hours=1))
    expected(maker, due_on=(now - timedelta(days=3)).date())
    html = client.get("/?tile=work", headers=HX).content.decode()
    assert 'href="/deposits/?review=new&amp;sort=oldest">New deposits to review' in html
    assert 'href="/payouts/waiting/">For you to approve: Payouts' in html
    assert 'href="/deposits/expected/">Overdue expected deposits' in html


def fill(n: int, *, me, maker) -> None:
    """n rows of every kind the dashboard reads, spread over the last 30 days."""
    now = timezone.now()
    for i in range(n):
        at = now - timedelta(hours=i % 700)
        deposit(at, "10.00", total_fee=Decimal("0.10"))
        deposit(at, review_state=Deposit.Review.NEW if i % 2 else Deposit.Review.FLAGGED)
        deposit(at - timedelta(days=40), flashfx_status="REFUNDED", refunded_at=at)
        withdrawal(at)
        payment(at)
        approval(maker, at=at)
        approval(me, at=at)
        approval(maker, action="deposit.refund", permission="payments.approve_refund", at=at)
        expected(maker, due_on=(at - timedelta(days=2)).date())
        event(InboundEvent.Status.PROCESSED, at)
        event(InboundEvent.Status.FAILED, at)
        event(InboundEvent.Status.QUARANTINED, at)
        event(InboundEvent.Status.DEAD, at)
        sync_run("deposits", SyncRun.Status.SUCCEEDED, at)
        sync_run("payments", SyncRun.Status.FAILED, at)
        drift_item(DriftItem.Resolution.FLAGGED)
        snapshot(at, f"{1000 + i}.00")


def queries_of(client, path: str, **kwargs) -> int:
    with CaptureQueriesContext(connection) as captured:
        assert client.get(path, **kwargs).status_code == 200
    return len(captured)


def test_the_page_costs_the_same_queries_with_1_and_with_200_rows_of_each_kind(client):
    me = make_staff(roles.APPROVER, "me")
    maker = make_staff(roles.OPERATOR, "maker")
    sign_in(client, me)
    fill(1, me=me, maker=maker)
    one = queries_of(client, "/")
    fragments_one = {
        t: queries_of(client, f"/?tile={t}", headers=HX)
        for t in ("balances", "money", "work", "health")
    }
    fill(199, me=me, maker=maker)
    assert queries_of(client, "/") == one
    assert {
        t: queries_of(client, f"/?tile={t}", headers=HX) for t in fragments_one
    } == fragments_one
    assert one <= 25, one  # and few: sign-in checks, then one or two per figure
