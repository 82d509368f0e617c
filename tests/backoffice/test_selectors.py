"""backoffice.selectors: the audit trail's reads, without a request."""

from __future__ import annotations

import pytest
from staff import make_staff

from backoffice import audit, selectors
from backoffice.models import AuditEvent

pytestmark = pytest.mark.django_db


def test_audit_events_come_newest_first_a_page_at_a_time_by_keyset():
    for _ in range(3):
        audit.record(audit.EXPORTED)
    ids = list(
        AuditEvent.objects.filter(action=audit.EXPORTED)
        .order_by("-pk")
        .values_list("pk", flat=True)
    )

    first = selectors.audit_event_list(action=audit.EXPORTED, size=2)
    assert [e.pk for e in first.events] == ids[:2]
    assert first.next_before == ids[1]

    last = selectors.audit_event_list(action=audit.EXPORTED, before=first.next_before, size=2)
    assert [e.pk for e in last.events] == ids[2:]
    assert last.next_before is None


def test_audit_events_filter_by_action_and_actor_together():
    ada = make_staff(None, username="ada")
    audit.record(audit.EXPORTED, actor=ada)
    audit.record(audit.SETTINGS_CHANGED, actor=ada)
    audit.record(audit.EXPORTED)

    page = selectors.audit_event_list(action=audit.EXPORTED, actor="ada", size=10)

    assert [(e.action, e.actor) for e in page.events] == [(audit.EXPORTED, "ada")]


def test_audit_actions_are_the_recorded_ones_sorted():
    audit.record(audit.SETTINGS_CHANGED)
    audit.record(audit.EXPORTED)
    assert {audit.EXPORTED, audit.SETTINGS_CHANGED} <= set(selectors.audit_action_list())
    assert selectors.audit_action_list() == sorted(selectors.audit_action_list())


def test_each_audit_action_is_offered_once_however_often_it_was_recorded():
    for _ in range(3):
        audit.record(audit.EXPORTED)
    actions = selectors.audit_action_list()
    assert actions.count(audit.EXPORTED) == 1
    assert len(actions) == len(set(actions))
