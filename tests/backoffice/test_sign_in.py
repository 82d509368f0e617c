"""Staff sign-in: password, then always a TOTP code (or a backup code), then the page asked for.

Driven through the real pages (the login form, /accounts/otp/, /accounts/otp/setup/) so that the
middleware, django-axes and django-otp all take part.
"""

from __future__ import annotations

import base64
import re
import time
from importlib import import_module

import pytest
from django.conf import settings
from django.contrib.sessions.backends.base import SessionBase
from django.test import Client
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice
from staff import PASSWORD, code, enrol, make_staff, sign_in

from backoffice import accounts, audit, otp
from backoffice.models import AuditEvent

pytestmark = pytest.mark.django_db

LOGIN = "/accounts/login/"
OTP = "/accounts/otp/"
SETUP = "/accounts/otp/setup/"
BACKUP_CODES = "/accounts/backup-codes/"


@pytest.fixture(autouse=True)
def no_throttling(settings):
    """django-otp's growing delay after a wrong code is not what these tests are about."""
    settings.OTP_TOTP_THROTTLE_FACTOR = 0
    settings.OTP_STATIC_THROTTLE_FACTOR = 0


def password_step(client, username, password=PASSWORD, next_url=None):
    data = {"username": username, "password": password}
    if next_url is not None:
        data["next"] = next_url
    return client.post(LOGIN, data)


def enter_code(client, token, next_url="/deposits/", path=OTP):
    return client.post(path, {"token": token, "next": next_url})


def wrong_code(device) -> str:
    """A six-digit code that is not the device's for the previous, this or the next time step."""
    valid = {code(device, steps_ahead=s) for s in (-1, 0, 1)}
    return next(c for c in ("000000", "111111", "222222", "333333") if c not in valid)


def session_store() -> SessionBase:
    return import_module(settings.SESSION_ENGINE).SessionStore()


def session_cookie(client) -> str:
    return client.cookies[settings.SESSION_COOKIE_NAME].value


def events(action, **details):
    rows = AuditEvent.objects.filter(action=action).order_by("pk")
    return [e for e in rows if all(e.details.get(k) == v for k, v in details.items())]


def otp_redirect(path):
    return f"{OTP}?next={path}"


# --- Before any sign-in ---------------------------------------------------------------------


def test_an_anonymous_request_for_a_staff_page_is_sent_to_sign_in_with_next(client):
    response = client.get("/deposits/")
    assert response.status_code == 302
    assert response.url == f"{LOGIN}?next=/deposits/"


def test_an_anonymous_htmx_request_gets_a_full_page_redirect_to_sign_in(client):
    response = client.get("/deposits/", headers={"HX-Request": "true"})
    assert response.status_code != 302
    assert response["HX-Redirect"] == f"{LOGIN}?next=/deposits/"
    assert b"<table" not in response.content


def test_the_sign_in_page_itself_is_public(client):
    response = client.get(LOGIN)
    assert response.status_code == 200
    assert b'name="password"' in response.content


# --- The password step ----------------------------------------------------------------------


def test_the_password_leads_to_the_code_step_keeping_next(client):
    user = make_staff("viewer")
    enrol(user)
    response = password_step(client, user.username, next_url="/deposits/")
    assert response.status_code == 302
    assert response.url == otp_redirect("/deposits/")
    assert events(audit.SIGN_IN)[-1].actor == user.username


@pytest.mark.parametrize("path", ["/", "/deposits/", "/admin/", "/audit/", "/accounts/sessions/"])
def test_no_staff_page_is_reachable_between_the_password_and_the_code(client, path):
    user = make_staff("admin", is_staff=True, is_superuser=True)
    enrol(user)
    password_step(client, user.username)
    response = client.get(path)
    assert response.status_code == 302
    assert response.url == otp_redirect(path)


def test_a_wrong_password_is_refused_and_audited(client):
    user = make_staff("viewer")
    response = password_step(client, user.username, password="not the password")
    assert response.status_code == 200
    assert b'role="alert"' in response.content
    assert "_auth_user_id" not in client.session
    assert client.get("/deposits/").url.startswith(LOGIN)
    failed = events(audit.SIGN_IN_FAILED, username=user.username, method="password")
    assert len(failed) == 1
    assert failed[0].remote_addr == "127.0.0.1"


# --- The code step --------------------------------------------------------------------------


def test_a_right_code_gives_a_new_session_id_and_reaches_next(client):
    user = make_staff("viewer")
    device = enrol(user)
    password_step(client, user.username, next_url="/deposits/")
    before = session_cookie(client)

    response = enter_code(client, code(device), next_url="/deposits/")

    assert response.status_code == 302
    assert response.url == "/deposits/"
    assert session_cookie(client) != before
    assert not session_store().exists(before)  # the pre-code session id is dead
    assert client.get("/deposits/").status_code == 200
    assert events(audit.OTP_VERIFIED, device="authenticator")[-1].actor == user.username


def test_a_wrong_code_is_refused_and_audited(client):
    user = make_staff("viewer")
    device = enrol(user)
    password_step(client, user.username)

    response = enter_code(client, wrong_code(device))

    assert response.status_code == 400
    assert b"not right" in response.content
    assert client.get("/deposits/").url == otp_redirect("/deposits/")
    failed = events(audit.OTP_FAILED, step="sign-in")
    assert [e.actor for e in failed] == [user.username]


def test_a_code_from_an_already_used_time_step_is_refused(client, settings):
    settings.OTP_TOTP_THROTTLE_FACTOR = 0  # about reuse, not the wait after a wrong code
    user = make_staff("viewer")
    device = enrol(user)
    token = code(device)
    password_step(client, user.username)
    assert enter_code(client, token).status_code == 302

    other = Client()
    password_step(other, user.username)
    response = enter_code(other, token)

    assert response.status_code == 400
    assert other.get("/deposits/").url == otp_redirect("/deposits/")
    # The next time step's code is still good.
    assert enter_code(other, code(device, steps_ahead=1)).status_code == 302


# --- Lockout: passwords and codes count together, per username and address ------------------


def test_failures_from_one_address_lock_that_username_there_only():
    limit = settings.STAFF_SIGN_IN_FAILURE_LIMIT
    assert limit == 5
    alice, bob = make_staff("viewer", "alice"), make_staff("viewer", "bob")
    device = enrol(alice)
    enrol(bob)
    attacker = Client(REMOTE_ADDR="203.0.113.7")

    for _ in range(limit - 2):
        assert password_step(attacker, "alice", password="guess").status_code == 200
    assert password_step(attacker, "alice").status_code == 302  # the password is right...
    assert enter_code(attacker, wrong_code(device)).status_code == 400
    assert enter_code(attacker, wrong_code(device)).status_code == 429  # ...the 5th failure

    # Locked from this address: the right code and the right password are both refused.
    assert enter_code(attacker, code(device)).status_code == 429
    locked = password_step(Client(REMOTE_ADDR="203.0.113.7"), "alice")
    assert locked.status_code == 429
    assert b"Too many attempts" in locked.content
    assert events(audit.LOCKED_OUT, username="alice")

    # Alice from her own address, and Bob from the attacker's, still sign in.
    assert password_step(Client(REMOTE_ADDR="198.51.100.2"), "alice").status_code == 302
    assert password_step(Client(REMOTE_ADDR="203.0.113.7"), "bob").status_code == 302


def test_wrong_passwords_alone_lock_out_at_the_limit():
    make_staff("viewer", "carol")
    attacker = Client(REMOTE_ADDR="203.0.113.8")
    answers = [
        password_step(attacker, "carol", password=f"guess {i}").status_code for i in range(5)
    ]
    assert answers == [200, 200, 200, 200, 429]
    assert len(events(audit.SIGN_IN_FAILED, username="carol")) == 5
    assert events(audit.LOCKED_OUT, username="carol", ip_address="203.0.113.8")
    assert password_step(attacker, "carol").status_code == 429  # the right one, too


def test_a_right_code_clears_earlier_failures(client):
    user = make_staff("viewer")
    device = enrol(user)
    for _ in range(4):
        password_step(client, user.username, password="guess")
    password_step(client, user.username)
    assert enter_code(client, code(device)).status_code == 302
    client.post("/accounts/logout/")
    # Four more failures would have locked the account without the reset.
    for _ in range(4):
        assert password_step(client, user.username, password="guess").status_code == 200
    assert password_step(client, user.username).status_code == 302


# --- First sign-in: enrolment ---------------------------------------------------------------


def _totp_now(secret: str) -> str:
    key = base64.b32decode(secret + "=" * (-len(secret) % 8))
    totp = TOTP(key, step=30, t0=0, digits=6)
    totp.time = time.time()
    return f"{totp.token():06d}"


def test_a_member_without_a_device_enrols_and_sees_backup_codes_once(client):
    user = make_staff("viewer")
    response = password_step(client, user.username, next_url="/deposits/")
    response = client.get(response.url)
    assert response.status_code == 302
    assert response.url == f"{SETUP}?next=/deposits/"

    page = client.get(response.url)
    assert page.status_code == 200
    assert re.search(rb"<svg[^>]*>.*</svg>", page.content, re.S)
    assert b"<img" not in page.content
    secret = re.search(r'id="totp-secret">([A-Z2-7]+)<', page.content.decode()).group(1)
    assert len(secret) >= 32
    # The QR code and the key stay the same while the member scans it.
    assert secret in client.get(f"{SETUP}?next=/deposits/").content.decode()
    assert client.get("/deposits/").url == otp_redirect("/deposits/")

    response = enter_code(client, _totp_now(secret), next_url="/deposits/", path=SETUP)
    assert response.status_code == 302
    assert response.url == f"{BACKUP_CODES}?next=/deposits/"
    assert TOTPDevice.objects.get(user=user).confirmed

    shown = client.get(response.url)
    codes = re.findall(r"<li><code>([^<]+)</code></li>", shown.content.decode())
    assert len(codes) == 10 == len(set(codes))
    again = client.get(response.url)
    assert re.findall(r"<li><code>([^<]+)</code></li>", again.content.decode()) == []
    assert not any(c.encode() in again.content for c in codes)

    assert client.get("/deposits/").status_code == 200
    enrolled = events(audit.OTP_ENROLLED, device="authenticator", backup_codes=10)
    assert [e.object_id for e in enrolled] == [str(user.pk)]


def test_a_wrong_code_at_enrolment_does_not_confirm_the_device(client):
    user = make_staff("viewer")
    sign_in(client, user, verified=False)
    TOTPDevice.objects.filter(user=user).delete()
    client.get(SETUP)
    device = otp.pending_totp(client.session, user)  # in this session only, not saved
    response = enter_code(client, wrong_code(device), path=SETUP)
    assert response.status_code == 400
    assert not TOTPDevice.objects.filter(user=user).exists()
    assert events(audit.OTP_FAILED, step="enrolment")


def test_the_secret_being_enrolled_is_never_shown_to_another_session(client):
    """Someone else with the password (or the Google account) must not be able to read the
    secret the member is about to scan, and so hold their second factor."""
    user = make_staff("viewer")
    sign_in(client, user, verified=False)
    TOTPDevice.objects.filter(user=user).delete()
    member_page = client.get(SETUP).content.decode()
    intruder = Client()
    sign_in(intruder, user, verified=False)
    TOTPDevice.objects.filter(user=user).delete()
    intruder_page = intruder.get(SETUP).content.decode()

    def secret(page: str) -> str:
        return re.search(r'id="totp-secret">([A-Z2-7]+)<', page).group(1)

    assert secret(member_page) != secret(intruder_page)
    assert secret(member_page) == secret(client.get(SETUP).content.decode())  # stable to scan
    assert not TOTPDevice.objects.filter(user=user).exists()  # nothing readable in the database


def test_a_member_already_enrolled_cannot_open_setup(client):
    user = make_staff("viewer")
    device = sign_in(client, user, verified=False)
    for method in (client.get, client.post):
        response = method(f"{SETUP}?next=/deposits/")
        assert response.status_code == 302
        assert response.url == otp_redirect("/deposits/")
    assert list(TOTPDevice.objects.filter(user=user)) == [device]


def test_an_anonymous_visitor_cannot_open_setup(client):
    response = client.get(SETUP)
    assert response.status_code == 302
    assert response.url.startswith(LOGIN)
    assert not TOTPDevice.objects.exists()


# --- Backup codes ---------------------------------------------------------------------------


def test_a_backup_code_signs_in_once_and_not_twice():
    user = make_staff("viewer")
    enrol(user)
    backup = otp.new_backup_codes(user)[0]

    first = Client()
    password_step(first, user.username)
    assert enter_code(first, backup).url == "/deposits/"
    assert first.get("/deposits/").status_code == 200
    assert events(audit.OTP_VERIFIED, device="backup code", backup_codes_left=9)

    second = Client()
    password_step(second, user.username)
    assert enter_code(second, backup).status_code == 400
    assert second.get("/deposits/").url == otp_redirect("/deposits/")


# --- Open redirects -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "evil", ["https://evil.example/", "//evil.example/", "https:///evil.example/"]
)
def test_next_pointing_elsewhere_is_not_followed(client, evil):
    user = make_staff("viewer")
    device = enrol(user)
    response = password_step(client, user.username, next_url=evil)
    assert response.status_code == 302
    assert "evil" not in response.url
    assert response.url == otp_redirect("/")

    response = enter_code(client, code(device), next_url=evil)
    assert response.status_code == 302
    assert response.url == "/"


def test_a_head_request_does_not_use_up_the_one_time_display_of_backup_codes(client):
    user = make_staff("viewer")
    sign_in(client, user)
    session = client.session
    session[accounts.BACKUP_CODES_ONCE] = ["aaaa1111", "bbbb2222"]
    session.save()
    assert client.head(BACKUP_CODES).status_code == 200
    assert b"aaaa1111" in client.get(BACKUP_CODES).content
