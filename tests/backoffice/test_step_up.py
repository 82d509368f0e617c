"""Step-up: a money action needs a code entered in the last STAFF_STEP_UP_MAX_AGE_SECONDS.

A test-only view decorated with step_up_required stands in for the money actions
(tests/backoffice/stepup_urls.py, mounted beside the app's own URLs).
"""

from __future__ import annotations

from importlib import import_module

import pytest
from django.conf import settings
from django.test import Client
from staff import PASSWORD, code, make_staff, sign_in
from stepup_urls import MONEY_MOVED

from backoffice import audit, otp
from backoffice.models import AuditEvent

pytestmark = [pytest.mark.django_db, pytest.mark.urls("stepup_urls")]

MONEY = "/test/money/"
STEP_UP = "/accounts/step-up/"
REFERER = "http://testserver/deposits/?page=2"


@pytest.fixture(autouse=True)
def no_throttling(settings):
    settings.OTP_TOTP_THROTTLE_FACTOR = 0
    settings.OTP_STATIC_THROTTLE_FACTOR = 0


def session_key(client) -> str:
    return client.cookies[settings.SESSION_COOKIE_NAME].value


def events(action, **details):
    rows = AuditEvent.objects.filter(action=action).order_by("pk")
    return [e for e in rows if all(e.details.get(k) == v for k, v in details.items())]


def wrong_code(device) -> str:
    valid = {code(device, steps_ahead=s) for s in (-1, 0, 1)}
    return next(c for c in ("000000", "111111", "222222", "333333") if c not in valid)


def move_money(client, **headers):
    return client.post(MONEY, headers={"Referer": REFERER, **headers})


def step_up(client, token, next_url="/deposits/?page=2"):
    return client.post(STEP_UP, {"token": token, "next": next_url})


@pytest.fixture
def operator():
    return make_staff("operator")


def test_the_default_max_age_is_five_minutes():
    assert settings.STAFF_STEP_UP_MAX_AGE_SECONDS == 300


def test_a_fresh_code_lets_the_action_through(client, operator):
    sign_in(client, operator, otp_age=0)
    response = move_money(client)
    assert response.status_code == 200
    assert response.content == MONEY_MOVED


def test_a_code_just_under_five_minutes_old_still_does(client, operator):
    sign_in(client, operator, otp_age=290)
    assert move_money(client).content == MONEY_MOVED


def test_an_older_code_sends_the_member_to_step_up_and_back_to_the_page(client, operator):
    sign_in(client, operator, otp_age=301)
    response = move_money(client)
    assert response.status_code == 302
    assert response.url == f"{STEP_UP}?next=/deposits/%3Fpage%3D2"
    assert MONEY_MOVED not in response.content


def test_an_htmx_action_gets_a_full_page_redirect_to_step_up(client, operator):
    sign_in(client, operator, otp_age=301)
    response = client.post(
        MONEY, headers={"HX-Request": "true", "HX-Current-URL": "http://testserver/payouts/"}
    )
    assert response["HX-Redirect"] == f"{STEP_UP}?next=/payouts/"
    assert MONEY_MOVED not in response.content


def test_a_referer_from_another_site_is_not_where_step_up_returns(client, operator):
    sign_in(client, operator, otp_age=301)
    response = client.post(MONEY, headers={"Referer": "https://evil.example/deposits/"})
    assert response.url == f"{STEP_UP}?next=/"


def test_a_get_returns_to_the_same_url(client, operator):
    sign_in(client, operator, otp_age=301)
    response = client.get(f"{MONEY}?id=7")
    assert response.url == f"{STEP_UP}?next=/test/money/%3Fid%3D7"


def test_a_right_code_at_step_up_rotates_the_session_and_lets_the_action_through(client, operator):
    device = sign_in(client, operator, otp_age=301)
    page = client.get(move_money(client).url)
    assert page.status_code == 200
    assert b'value="/deposits/?page=2"' in page.content
    before = session_key(client)

    response = step_up(client, code(device))

    assert response.status_code == 302
    assert response.url == "/deposits/?page=2"
    assert session_key(client) != before
    assert not import_module(settings.SESSION_ENGINE).SessionStore().exists(before)
    assert move_money(client).content == MONEY_MOVED
    stepped = events(audit.STEP_UP, next="/deposits/?page=2")
    assert [e.actor for e in stepped] == [operator.username]


def test_step_up_does_not_follow_next_off_site(client, operator):
    device = sign_in(client, operator, otp_age=301)
    response = step_up(client, code(device), next_url="https://evil.example/")
    assert response.url == "/"


def test_a_wrong_code_at_step_up_is_refused_and_audited(client, operator):
    device = sign_in(client, operator, otp_age=301)
    before = session_key(client)

    response = step_up(client, wrong_code(device))

    assert response.status_code == 400
    assert session_key(client) == before
    assert move_money(client).status_code == 302
    failed = events(audit.STEP_UP_FAILED, step="step-up")
    assert [e.actor for e in failed] == [operator.username]


def test_a_reused_code_is_refused_at_step_up(client, operator):
    device = sign_in(client, operator, otp_age=301)
    token = code(device)
    assert step_up(client, token).status_code == 302
    sign_in(client, operator, otp_age=301)
    assert step_up(client, token).status_code == 400


def test_wrong_step_up_codes_count_towards_the_lockout(operator):
    limit = settings.STAFF_SIGN_IN_FAILURE_LIMIT
    client = Client(REMOTE_ADDR="203.0.113.20")
    device = sign_in(client, operator, otp_age=301)

    answers = [step_up(client, wrong_code(device)).status_code for _ in range(limit)]

    assert answers == [400] * (limit - 1) + [429]
    assert step_up(client, code(device)).status_code == 429  # even the right code
    assert move_money(client).status_code == 302
    assert events(audit.LOCKED_OUT, username=operator.username, ip_address="203.0.113.20")
    # The password from the same address is locked too; from elsewhere it is not.
    data = {"username": operator.username, "password": PASSWORD}
    assert Client(REMOTE_ADDR="203.0.113.20").post("/accounts/login/", data).status_code == 429
    assert Client(REMOTE_ADDR="198.51.100.20").post("/accounts/login/", data).status_code == 302


def test_step_up_does_not_take_backup_codes(client, operator):
    sign_in(client, operator, otp_age=301)
    backup = otp.new_backup_codes(operator)[0]

    response = step_up(client, backup)

    assert response.status_code == 400
    assert move_money(client).status_code == 302
    # The refused backup code is still good for a sign-in.
    assert otp.check(operator, backup).ok


def test_step_up_is_not_a_way_around_the_sign_in_code(client, operator):
    device = sign_in(client, operator, verified=False)
    response = client.post(STEP_UP, {"token": code(device), "next": MONEY})
    assert response.status_code == 302
    assert response.url.startswith("/accounts/otp/")
    assert move_money(client).url.startswith("/accounts/otp/")


def test_new_backup_codes_need_a_step_up(client, operator):
    device = sign_in(client, operator, otp_age=301)
    old = otp.new_backup_codes(operator)

    response = client.post("/accounts/backup-codes/", headers={"Referer": REFERER})
    assert response.url.startswith(STEP_UP)
    assert otp.check(operator, old[0]).ok  # nothing changed yet

    step_up(client, code(device))
    response = client.post("/accounts/backup-codes/")
    assert response.status_code == 302
    shown = client.get(response.url)
    assert shown.content.count(b"<li><code>") == 10
    assert not otp.check(operator, old[1]).ok  # the earlier set stopped working
    assert events(audit.OTP_ENROLLED, device="backup codes", backup_codes=10)
