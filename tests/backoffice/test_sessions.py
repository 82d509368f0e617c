"""Staff sessions end: when idle, at their absolute lifetime, on sign-out (here or everywhere),
and at once when an admin ends them or the account is deactivated."""

from __future__ import annotations

import time
from importlib import import_module

import pytest
from django.conf import settings
from django.test import Client
from staff import PASSWORD, code, enrol, make_staff, sign_in

from backoffice import audit, otp, staff_sessions
from backoffice.models import AuditEvent, StaffSession

pytestmark = pytest.mark.django_db

LOGIN = "/accounts/login/"


def session_key(client) -> str:
    return client.cookies[settings.SESSION_COOKIE_NAME].value


def in_store(key: str) -> bool:
    return import_module(settings.SESSION_ENGINE).SessionStore().exists(key)


def signed_in(client) -> bool:
    """A staff page answers (not a redirect to sign-in)."""
    return client.get("/deposits/").status_code == 200


def sent_to_sign_in(response, path="/deposits/") -> bool:
    return response.status_code == 302 and response.url == f"{LOGIN}?next={path}"


def set_clock(client, **seconds_ago: float) -> None:
    session = client.session
    now = time.time()
    for name, ago in seconds_ago.items():
        session[getattr(staff_sessions, name)] = now - ago
    session.save()


def events(action, **details):
    rows = AuditEvent.objects.filter(action=action).order_by("pk")
    return [e for e in rows if all(e.details.get(k) == v for k, v in details.items())]


@pytest.fixture
def viewer(client):
    user = make_staff("viewer")
    sign_in(client, user)
    assert signed_in(client)
    return user


# --- Timeouts -------------------------------------------------------------------------------


def test_the_timeouts_are_15_minutes_idle_and_10_hours_in_all():
    assert settings.STAFF_IDLE_TIMEOUT_SECONDS == 900
    assert settings.STAFF_SESSION_LIFETIME_SECONDS == 36000


def test_a_session_idle_for_more_than_15_minutes_is_signed_out(client, viewer):
    key = session_key(client)
    set_clock(client, LAST_SEEN_AT=901)

    response = client.get("/deposits/")

    assert sent_to_sign_in(response)
    assert not in_store(key)
    assert sent_to_sign_in(client.get("/deposits/"))
    expired = events(audit.SESSION_EXPIRED, reason="idle")
    assert [e.actor for e in expired] == [viewer.username]
    row = StaffSession.objects.get(user=viewer)
    assert row.ended_at is not None
    assert row.end_reason == "idle"


def test_a_session_idle_for_less_than_15_minutes_goes_on(client, viewer):
    set_clock(client, LAST_SEEN_AT=880)
    assert signed_in(client)
    # ...and that request counts as activity: the idle clock starts again.
    assert time.time() - client.session[staff_sessions.LAST_SEEN_AT] < 60
    assert not events(audit.SESSION_EXPIRED)


def test_an_htmx_request_in_an_idle_session_gets_a_full_page_redirect(client, viewer):
    set_clock(client, LAST_SEEN_AT=901)
    response = client.get("/deposits/", headers={"HX-Request": "true"})
    assert response["HX-Redirect"] == f"{LOGIN}?next=/deposits/"
    assert sent_to_sign_in(client.get("/deposits/"))


def test_a_session_ends_after_10_hours_even_when_active(client, viewer):
    set_clock(client, STARTED_AT=36001, LAST_SEEN_AT=5)

    response = client.get("/deposits/")

    assert sent_to_sign_in(response)
    assert sent_to_sign_in(client.get("/deposits/"))
    assert [e.actor for e in events(audit.SESSION_EXPIRED, reason="lifetime")] == [viewer.username]
    assert StaffSession.objects.get(user=viewer).end_reason == "lifetime"


def test_a_session_younger_than_10_hours_goes_on(client, viewer):
    set_clock(client, STARTED_AT=35900, LAST_SEEN_AT=5)
    assert signed_in(client)


# --- Signing out ----------------------------------------------------------------------------


def test_signing_out_ends_the_session(client, viewer):
    key = session_key(client)

    response = client.post("/accounts/logout/")

    assert response.status_code == 302
    assert response.url == LOGIN
    assert not in_store(key)
    assert sent_to_sign_in(client.get("/deposits/"))
    assert [e.actor for e in events(audit.SIGN_OUT)] == [viewer.username]
    row = StaffSession.objects.get(user=viewer)
    assert (row.ended_at is not None, row.end_reason) == (True, "signed out")


def test_a_get_of_the_sign_out_page_only_shows_the_form(client, viewer):
    response = client.get("/accounts/logout/")

    assert response.status_code == 200
    assert b'<form method="post" action="/accounts/logout/">' in response.content
    assert signed_in(client)
    assert not events(audit.SIGN_OUT)
    assert StaffSession.objects.get(user=viewer).ended_at is None


def test_sign_out_everywhere_ends_my_other_sessions_and_not_anyone_elses(client, viewer):
    laptop = Client()
    sign_in(laptop, viewer)
    colleague = Client()
    sign_in(colleague, make_staff("viewer", "colleague"))
    keys = [session_key(client), session_key(laptop)]

    response = client.post("/accounts/logout/everywhere/")

    assert response.status_code == 302
    assert response.url == LOGIN
    assert not any(in_store(k) for k in keys)
    assert sent_to_sign_in(client.get("/deposits/"))
    assert sent_to_sign_in(laptop.get("/deposits/"))
    assert signed_in(colleague)
    assert events(audit.SIGN_OUT_EVERYWHERE, other_sessions=1)[0].actor == viewer.username
    assert not StaffSession.objects.filter(user=viewer, ended_at=None).exists()
    assert StaffSession.objects.filter(user__username="colleague", ended_at=None).count() == 1


def test_sign_out_everywhere_needs_a_post(client, viewer):
    assert client.get("/accounts/logout/everywhere/").status_code == 405
    assert signed_in(client)


def test_the_sessions_page_lists_my_open_sessions(client, viewer):
    other = Client(REMOTE_ADDR="198.51.100.9")
    sign_in(other, viewer)
    response = client.get("/accounts/sessions/")
    assert response.status_code == 200
    assert response.content.count(b"<tr>") == 3  # the header row and two sessions
    assert b"this one" in response.content


# --- An admin ends someone's sessions -------------------------------------------------------


@pytest.fixture
def admin_client():
    admin = make_staff("admin", "boss", is_staff=True)
    client = Client()
    sign_in(client, admin)
    return client


def run_action(admin_client, action, *users):
    return admin_client.post(
        "/admin/auth/user/",
        {"action": action, "_selected_action": [u.pk for u in users], "index": 0},
    )


def test_an_admin_ends_all_sessions_of_a_member_at_once(admin_client, client, viewer):
    laptop = Client()
    sign_in(laptop, viewer)
    bystander = Client()
    sign_in(bystander, make_staff("viewer", "bystander"))

    response = run_action(admin_client, "end_sessions", viewer)

    assert response.status_code == 302
    assert sent_to_sign_in(client.get("/deposits/"))
    assert sent_to_sign_in(laptop.get("/deposits/"))
    assert signed_in(bystander)
    assert signed_in(admin_client)
    viewer.refresh_from_db()
    assert viewer.is_active  # ended, not deactivated: they may sign in again
    ended = events(audit.SESSIONS_ENDED, reason="ended by an admin", sessions=2)
    assert [(e.actor, e.object_id) for e in ended] == [("boss", str(viewer.pk))]
    assert set(StaffSession.objects.filter(user=viewer).values_list("end_reason", flat=True)) == {
        "ended by an admin"
    }


def test_an_admin_deactivating_a_member_ends_their_sessions_at_once(admin_client, client, viewer):
    key = session_key(client)

    response = run_action(admin_client, "deactivate", viewer)

    assert response.status_code == 302
    viewer.refresh_from_db()
    assert not viewer.is_active
    assert not in_store(key)  # gone from the store, not merely refused as inactive
    assert sent_to_sign_in(client.get("/deposits/"))
    assert signed_in(admin_client)
    assert events(audit.SESSIONS_ENDED, reason="deactivated", sessions=1)
    assert StaffSession.objects.get(user=viewer).end_reason == "deactivated"


def test_an_admin_cannot_deactivate_themselves_by_the_action(admin_client):
    boss = StaffSession.objects.get(user__username="boss").user
    run_action(admin_client, "deactivate", boss)
    boss.refresh_from_db()
    assert boss.is_active
    assert signed_in(admin_client)


def test_an_admin_resetting_an_authenticator_ends_sessions_and_asks_for_enrolment(
    admin_client, client, viewer
):
    run_action(admin_client, "reset_otp", viewer)

    assert sent_to_sign_in(client.get("/deposits/"))
    assert not otp.is_enrolled(viewer)
    again = Client()
    again.post(LOGIN, {"username": viewer.username, "password": PASSWORD})
    assert again.get("/accounts/otp/").url == "/accounts/otp/setup/?next=/"
    assert events(audit.OTP_RESET, sessions_ended=1)[0].object_id == str(viewer.pk)


def test_deactivating_an_account_by_any_save_ends_its_sessions(client, viewer):
    key = session_key(client)

    viewer.is_active = False
    viewer.save()

    assert not in_store(key)
    assert sent_to_sign_in(client.get("/deposits/"))
    assert StaffSession.objects.get(user=viewer).end_reason == "deactivated"
    changed = events(audit.ACCOUNT_CHANGED, change="updated")
    assert changed[-1].after == {"is_active": False}


def test_other_saves_leave_sessions_alone(client, viewer):
    viewer.first_name = "Vera"
    viewer.save()
    assert signed_in(client)
    assert not events(audit.SESSIONS_ENDED)


# --- StaffSession rows ----------------------------------------------------------------------


def test_a_password_sign_in_is_recorded_and_follows_the_session_id(settings):
    settings.OTP_TOTP_THROTTLE_FACTOR = 0
    user = make_staff("viewer")
    device = enrol(user)
    client = Client(REMOTE_ADDR="192.0.2.44", HTTP_USER_AGENT="Firefox test")
    client.post(LOGIN, {"username": user.username, "password": PASSWORD})

    row = StaffSession.objects.get(user=user)
    assert row.method == StaffSession.Method.PASSWORD
    assert (row.remote_addr, row.user_agent) == ("192.0.2.44", "Firefox test")
    assert row.session_key == session_key(client)
    assert row.ended_at is None

    client.post("/accounts/otp/", {"token": code(device)})
    row.refresh_from_db()
    assert row.session_key == session_key(client)  # rotated at the code step, same row
    assert signed_in(client)

    client.post("/accounts/logout/")
    row.refresh_from_db()
    assert row.ended_at is not None
    assert row.end_reason == "signed out"
    assert StaffSession.objects.filter(user=user).count() == 1
