"""The webhook event list (/webhooks/events/) and its selector: each filter selects what it
says, pages are keyset pages that new arrivals never shift, quarantined rows carry what their
address's minute dropped, and the page works with and without htmx."""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, date, datetime, timedelta

import pytest
from django.urls import reverse
from django.utils import timezone
from staff import make_staff, sign_in

from webhooks.forms import event_filters_from_query
from webhooks.models import InboundEvent, QuarantineTally
from webhooks.selectors import PAGE_SIZE, EventFilters, inbound_event_page, inbound_events_filtered

pytestmark = pytest.mark.django_db

Status = InboundEvent.Status
T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
_ids = iter(range(1, 10_000))


def event(*, at: datetime = T0, **fields) -> InboundEvent:
    n = next(_ids)
    body = f'{{"event":"deposit_cleared","id":"dep{n:05d}"}}'.encode()
    row = {
        "accepted": True,
        "status": Status.PROCESSED,
        "request_id": f"req-{n:05d}",
        "event": "deposit_cleared",
        "entity_id": f"dep{n:05d}",
        "body": body,
        "body_sha256": hashlib.sha256(body).hexdigest(),
        "body_size": len(body),
        "received_at": at,
    }
    return InboundEvent.objects.create(**(row | fields))


def ids(queryset) -> list[int]:
    return [e.pk for e in queryset]


# --- The selector: each filter ---------------------------------------------------------------


def test_no_filter_lists_every_event_newest_first_ties_by_id():
    older = event(at=T0 - timedelta(minutes=1))
    a, b = event(), event()  # same moment: the later id first
    assert ids(inbound_events_filtered(EventFilters())) == [b.pk, a.pk, older.pk]


def test_status_selects_only_that_outcome():
    dead, failed = event(status=Status.DEAD), event(status=Status.FAILED)
    event(status=Status.PROCESSED)
    assert ids(inbound_events_filtered(EventFilters(status="dead"))) == [dead.pk]
    assert ids(inbound_events_filtered(EventFilters(status="failed"))) == [failed.pk]


def test_event_type_and_entity_id_match_exactly():
    paid = event(event="withdrawal_completed", entity_id="wd-1")
    event(event="withdrawal_completed_late", entity_id="wd-10")
    assert ids(inbound_events_filtered(EventFilters(event="withdrawal_completed"))) == [paid.pk]
    assert ids(inbound_events_filtered(EventFilters(entity_id="wd-1"))) == [paid.pk]


def test_received_from_and_to_are_whole_days_in_the_members_zone():
    # Sydney is UTC+11 in December: its 1 December runs from 30 Nov 13:00 to 1 Dec 13:00 UTC.
    before = event(at=datetime(2026, 11, 30, 12, 59, tzinfo=UTC))
    first = event(at=datetime(2026, 11, 30, 13, 0, tzinfo=UTC))
    last = event(at=datetime(2026, 12, 1, 12, 59, tzinfo=UTC))
    after = event(at=datetime(2026, 12, 1, 13, 0, tzinfo=UTC))
    day = date(2026, 12, 1)
    with timezone.override("Australia/Sydney"):
        assert ids(inbound_events_filtered(EventFilters(received_from=day, received_to=day))) == [
            last.pk,
            first.pk,
        ]
        assert before.pk not in ids(inbound_events_filtered(EventFilters(received_from=day)))
        assert after.pk not in ids(inbound_events_filtered(EventFilters(received_to=day)))


def test_search_finds_part_of_a_request_id_or_an_entity_id():
    by_request = event(request_id="7f3a9c-retry-abc")
    by_entity = event(entity_id="64b0c9f3a9c2")
    event(request_id="other", entity_id="other")
    assert set(ids(inbound_events_filtered(EventFilters(q="f3a9c")))) == {
        by_request.pk,
        by_entity.pk,
    }
    assert ids(inbound_events_filtered(EventFilters(q="RETRY"))) == [by_request.pk]


def test_filters_combine():
    match = event(status=Status.DEAD, event="payment_failed", entity_id="pay-1")
    event(status=Status.DEAD, event="payment_failed", entity_id="pay-2")
    event(status=Status.PROCESSED, event="payment_failed", entity_id="pay-1")
    chosen = EventFilters(status="dead", event="payment_failed", entity_id="pay-1")
    assert ids(inbound_events_filtered(chosen)) == [match.pk]


def test_the_query_string_parses_into_the_filters_the_list_shows():
    from django.http import QueryDict

    query = QueryDict("status=quarantined&event=test&received_from=2026-12-01&q=abc&after=x")
    assert event_filters_from_query(query) == EventFilters(
        status="quarantined", event="test", received_from=date(2026, 12, 1), q="abc"
    )
    assert event_filters_from_query(QueryDict("")) == EventFilters()
    assert event_filters_from_query(QueryDict("status=nonsense")) is None
    assert (
        event_filters_from_query(QueryDict("received_from=2026-12-02&received_to=2026-12-01"))
        is None
    )


# --- The selector: pages ----------------------------------------------------------------------


def test_pages_are_stable_when_new_events_arrive_between_them():
    rows = [event(at=T0 + timedelta(seconds=i // 2)) for i in range(7)]  # pairs share a moment
    newest_first = [r.pk for r in reversed(rows)]

    first = inbound_event_page(EventFilters(), size=3)
    assert ids(first.events) == newest_first[:3]
    for i in range(4):  # arrive while the member reads page one, some at the same moment
        event(at=T0 + timedelta(seconds=3 + i))
    second = inbound_event_page(EventFilters(), after=first.next_cursor, size=3)
    third = inbound_event_page(EventFilters(), after=second.next_cursor, size=3)

    assert ids(second.events) == newest_first[3:6]
    assert ids(third.events) == newest_first[6:]
    assert third.next_cursor is None


def test_pages_keep_their_filters():
    dead = [event(status=Status.DEAD, at=T0 + timedelta(seconds=i)) for i in range(3)]
    event(status=Status.PROCESSED, at=T0 + timedelta(seconds=1, milliseconds=500))
    first = inbound_event_page(EventFilters(status="dead"), size=2)
    rest = inbound_event_page(EventFilters(status="dead"), after=first.next_cursor, size=2)
    assert ids(first.events) + ids(rest.events) == [d.pk for d in reversed(dead)]


@pytest.mark.parametrize("cursor", ["garbage", "W10", "WyIyMDI2LTEyLTAxIiwgMV0", "eyJhIjoxfQ"])
def test_a_cursor_we_did_not_write_starts_over_and_says_so(cursor):
    newest = [event(at=T0 + timedelta(seconds=2)), event(at=T0 + timedelta(seconds=1))]
    page = inbound_event_page(EventFilters(), after=cursor, size=1)
    assert ids(page.events) == [newest[0].pk] and page.cursor_valid is False


# --- The page ---------------------------------------------------------------------------------


def list_html(client, query: str = "", **headers) -> str:
    response = client.get(reverse("webhooks:events") + query, headers=headers)
    assert response.status_code == 200
    return response.content.decode()


def test_a_viewer_sees_each_events_outcome_type_entity_and_attempts(client):
    sign_in(client, make_staff("viewer"))
    dead = event(
        status=Status.DEAD, event="withdrawal_completed", entity_id="wd-dead-1", attempts=7
    )
    event(
        accepted=False,
        status=Status.QUARANTINED,
        reason=InboundEvent.Reason.BAD_SIGNATURE,
        event="",
        entity_id="",
    )
    html = list_html(client)
    assert "Dead" in html and "withdrawal_completed" in html and "wd-dead-1" in html
    assert '<td class="num">7</td>' in html
    assert "Quarantined" in html and "Bad Signature" in html
    assert reverse("webhooks:event", args=[dead.pk]) in html
    assert 'id="select-event-' not in html  # no selection to replay for a viewer
    assert "Dry run replay of selected" not in html


def test_received_times_are_shown_in_the_members_zone(client, settings):
    settings.TIME_ZONE = "Australia/Sydney"
    sign_in(client, make_staff("viewer"))
    event(at=datetime(2026, 11, 30, 13, 30, tzinfo=UTC))
    html = list_html(client)
    assert ">2026-12-01 00:30</time>" in html and 'title="2026-11-30 13:30:00 UTC"' in html


def test_the_dashboards_links_filter_by_status(client):
    sign_in(client, make_staff("viewer"))
    rows = {
        "failed": event(status=Status.FAILED, entity_id="failed-one"),
        "dead": event(status=Status.DEAD, entity_id="dead-one"),
        "quarantined": event(accepted=False, status=Status.QUARANTINED, entity_id="q-one"),
    }
    for status, row in rows.items():
        html = list_html(client, f"?status={status}")
        shown = {r.entity_id for r in rows.values() if r.entity_id in html}
        assert shown == {row.entity_id}, status


def test_every_filter_has_a_visible_label(client):
    sign_in(client, make_staff("viewer"))
    html = list_html(client)
    for field, label in (
        ("status", "Status"),
        ("event", "Event type"),
        ("entity_id", "Entity id"),
        ("received_from", "Received from"),
        ("received_to", "Received to"),
        ("q", "Search"),
    ):
        assert f'<label for="id_{field}">{label}</label>' in html


def test_an_htmx_request_gets_the_rows_alone_and_a_plain_one_the_page(client):
    sign_in(client, make_staff("viewer"))
    event(entity_id="only-row")
    fragment = list_html(client, "?status=processed", **{"HX-Request": "true"})
    assert (
        "only-row" in fragment and "<html" not in fragment and '<form method="get"' not in fragment
    )
    page = list_html(client, "?status=processed")
    assert "only-row" in page and "<html" in page and 'id="event-list"' in page


def test_the_next_page_link_keeps_the_filters_and_works_without_js(client):
    sign_in(client, make_staff("viewer"))
    rows = [event(status=Status.DEAD, at=T0 + timedelta(seconds=i)) for i in range(PAGE_SIZE + 1)]
    event(status=Status.PROCESSED, entity_id="not-dead", at=T0 - timedelta(days=1))
    html = list_html(client, "?status=dead")
    assert rows[0].entity_id not in html  # the oldest is on page two
    link = re.search(r'<a rel="next" href="([^"]+)"', html).group(1).replace("&amp;", "&")
    assert link.startswith("?status=dead&after=")
    second = list_html(client, link)
    assert rows[0].entity_id in second and rows[-1].entity_id not in second
    assert "not-dead" not in second


def test_invalid_filters_say_what_is_wrong_and_list_nothing(client):
    sign_in(client, make_staff("viewer"))
    event(entity_id="hidden-row")
    html = list_html(client, "?received_from=2026-12-02&received_to=2026-12-01")
    assert "The end date is before the start date." in html
    assert "hidden-row" not in html


def test_quarantined_rows_show_what_their_address_dropped_that_minute(client):
    sign_in(client, make_staff("viewer"))
    at = datetime(2026, 11, 30, 12, 0, 41, tzinfo=UTC)
    event(accepted=False, status=Status.QUARANTINED, remote_addr="198.51.100.7", at=at)
    QuarantineTally.objects.create(
        remote_addr="198.51.100.7", minute=at.replace(second=0), seen=90, kept=60
    )
    QuarantineTally.objects.create(  # another address: not this row's
        remote_addr="198.51.100.8", minute=at.replace(second=0), seen=5, kept=5
    )
    html = list_html(client)
    assert "from 198.51.100.7 that minute: 90 seen, 60 kept, 30 dropped" in html
    assert "198.51.100.8" not in html


def test_an_admin_may_select_only_failed_and_dead_events(client):
    sign_in(client, make_staff("admin"))
    failed, dead = event(status=Status.FAILED), event(status=Status.DEAD)
    done = event(status=Status.PROCESSED)
    html = list_html(client)
    assert f'value="{failed.pk}" id="select-event-{failed.pk}"' in html
    assert f'value="{dead.pk}" id="select-event-{dead.pk}"' in html
    assert f'id="select-event-{done.pk}"' not in html
    assert "Dry run replay of selected" in html


def test_a_member_without_the_permission_gets_403(client):
    sign_in(client, make_staff(None))
    assert client.get(reverse("webhooks:events")).status_code == 403
