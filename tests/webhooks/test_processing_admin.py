"""The InboundEvent admin: read-only list and detail of every request kept, and replay.

The admin is for verified members with the admin role (which may replay: change_inboundevent);
looking at events is not replaying them.
"""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, Permission
from django.contrib.messages import get_messages
from harness import close_app_client
from processing_support import (
    app_pointed_at_sandbox,
    assert_mirror_matches,
    dead_while_flashfx_was_down,
    store_body,
)
from staff import make_staff, sign_in

from backoffice import roles
from payments.models import Withdrawal
from webhooks.models import InboundEvent

pytestmark = pytest.mark.django_db

Status = InboundEvent.Status
CHANGELIST = "/admin/webhooks/inboundevent/"


@pytest.fixture
def admin_client(client):
    """A member with the admin role, signed in and past the code."""
    sign_in(client, make_staff(roles.ADMIN, username="boss"))
    return client


@pytest.fixture
def dead(sandbox, settings):
    final, events = dead_while_flashfx_was_down(sandbox, settings)
    close_app_client()
    with app_pointed_at_sandbox(sandbox, settings):
        yield final, events


def detail(pk: int) -> str:
    return f"{CHANGELIST}{pk}/change/"


def messages_of(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def act(client, action: str, events) -> list[str]:
    response = client.post(
        CHANGELIST,
        {"action": action, "_selected_action": [e.pk for e in events]},
        follow=True,
    )
    assert response.status_code == 200
    return messages_of(response)


# --- Looking ------------------------------------------------------------------------------------


def test_the_list_shows_every_request_with_filters_and_search(admin_client):
    accepted = store_body(
        b'{"event":"deposit_cleared","id":"65f0c0ffee0000000000d001"}', request_id="aaa111"
    )
    InboundEvent.objects.create(
        accepted=False,
        status=Status.QUARANTINED,
        reason="not_json",
        request_id="bbb222",
        body=b"not json",
        body_sha256="0" * 64,
        body_size=8,
    )

    page = admin_client.get(CHANGELIST)
    assert page.status_code == 200
    text = page.content.decode()
    for value in ("aaa111", "bbb222", "deposit_cleared", "65f0c0ffee0000000000d001", "not_json"):
        assert value in text
    assert '<option value="replay_dry_run">Replay (dry run)</option>' in text
    assert '<option value="replay_apply">Replay</option>' in text

    def listed(query: str) -> set[str]:
        response = admin_client.get(CHANGELIST + query)
        assert response.status_code == 200, query
        return {r for r in ("aaa111", "bbb222") if r in response.content.decode()}

    assert listed("?status__exact=quarantined") == {"bbb222"}
    assert listed("?reason__exact=not_json") == {"bbb222"}
    assert listed("?event__exact=deposit_cleared") == {"aaa111"}
    assert listed("?accepted__exact=1") == {"aaa111"}
    assert listed(f"?received_at__year={accepted.received_at.year}") == {"aaa111", "bbb222"}
    assert listed("?q=bbb222") == {"bbb222"}  # by request id
    assert listed("?q=65f0c0ffee0000000000d001") == {"aaa111"}  # by entity id


def test_the_detail_shows_the_raw_request_and_what_processing_did(admin_client):
    event = store_body(
        b'{"event":"withdrawal_pending","id":"65f0c0ffee0000000000a001","note":"<b>x</b>"}',
        request_id="ccc333",
        headers={"flashfx-request-id": "ccc333", "user-agent": "FlashFX"},
        status=Status.DEAD,
        attempts=7,
        last_error='Traceback (most recent call last):\n  File "x"\nLookupError: <gone>',
        outcome="",
    )
    page = admin_client.get(detail(event.pk))
    assert page.status_code == 200
    html = page.content.decode()
    assert "withdrawal_pending" in html and "65f0c0ffee0000000000a001" in html
    assert "&lt;b&gt;x&lt;/b&gt;" in html  # the untrusted body, escaped
    assert "<pre>Traceback (most recent call last):" in html
    assert "LookupError: &lt;gone&gt;" in html
    assert "&quot;user-agent&quot;: &quot;FlashFX&quot;" in html  # the headers
    assert ">7<" in html  # attempts


def test_a_body_that_is_not_utf8_is_shown_as_bytes(admin_client):
    event = InboundEvent.objects.create(
        accepted=False,
        status=Status.QUARANTINED,
        reason="not_utf8",
        request_id="ddd444",
        body=b'{"event":"\xff\xfe"}',
        body_sha256="0" * 64,
        body_size=14,
    )
    html = admin_client.get(detail(event.pk)).content.decode()
    assert "b&#x27;{&quot;event&quot;:&quot;\\xff\\xfe&quot;}&#x27;" in html


def test_nothing_can_be_added_changed_or_deleted(admin_client):
    event = store_body(b'{"event":"test","id":"1"}', request_id="eee555")
    assert admin_client.get(CHANGELIST + "add/").status_code == 403
    assert admin_client.get(f"{CHANGELIST}{event.pk}/delete/").status_code == 403
    response = admin_client.post(detail(event.pk), {"status": "processed"})
    assert response.status_code == 403
    assert InboundEvent.objects.get(pk=event.pk).status == Status.RECEIVED


def test_staff_who_may_only_look_cannot_replay(client, dead):
    """An admin whose role lost change_inboundevent still sees the events, but no replay."""
    _, events = dead
    Group.objects.get(name=roles.ADMIN).permissions.remove(
        Permission.objects.get(codename="change_inboundevent")
    )
    looker = make_staff(roles.ADMIN, username="looker")
    assert looker.has_perm("webhooks.view_inboundevent")
    assert not looker.has_perm("webhooks.change_inboundevent")
    sign_in(client, looker)
    page = client.get(CHANGELIST)
    assert page.status_code == 200
    assert "replay_apply" not in page.content.decode()
    assert "replay_dry_run" not in page.content.decode()
    client.post(CHANGELIST, {"action": "replay_apply", "_selected_action": [events[0].pk]})
    assert InboundEvent.objects.get(pk=events[0].pk).status == Status.DEAD


def test_a_viewer_who_may_read_events_is_kept_out_of_the_admin(client, dead):
    """Viewers read events on the staff pages; the admin (and its replay) is refused outright."""
    _, events = dead
    viewer = make_staff(roles.VIEWER)
    assert viewer.has_perm("webhooks.view_inboundevent")
    sign_in(client, viewer)
    assert client.get(CHANGELIST).status_code == 403
    response = client.post(
        CHANGELIST, {"action": "replay_apply", "_selected_action": [events[0].pk]}
    )
    assert response.status_code == 403
    assert InboundEvent.objects.get(pk=events[0].pk).status == Status.DEAD


# --- Replay -------------------------------------------------------------------------------------


def test_the_dry_run_action_reports_and_changes_nothing(admin_client, dead):
    final, events = dead
    before = list(InboundEvent.objects.values_list("id", "status", "attempts", "last_error"))

    reported = act(admin_client, "replay_dry_run", events)

    assert len(reported) == 3
    for message, event in zip(reported, events, strict=True):
        assert message.startswith(f"#{event.pk} {event.event}: would be: fetched from FlashFX")
    assert not Withdrawal.objects.exists()
    assert list(InboundEvent.objects.values_list("id", "status", "attempts", "last_error")) == (
        before
    )


def test_the_replay_action_applies_and_reports(admin_client, dead):
    final, events = dead

    reported = act(admin_client, "replay_apply", events)

    assert [m.split(":")[0] for m in reported] == [f"#{e.pk} {e.event}" for e in events]
    assert f"fetched from FlashFX first; Withdrawal {final.id}" in reported[0]
    assert_mirror_matches("withdrawal", final)
    assert set(InboundEvent.objects.values_list("status", flat=True)) == {Status.PROCESSED}
    # Again: each is applied once; a second replay finds nothing new.
    state = Withdrawal.objects.values().get()
    again = act(admin_client, "replay_apply", events)
    assert all(m.endswith(("unchanged", "stale")) for m in again), again
    assert Withdrawal.objects.values().get() == state
