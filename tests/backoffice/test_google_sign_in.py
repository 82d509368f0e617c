"""Staff sign-in with Google: only accounts an admin created, in GOOGLE_ALLOWED_DOMAINS, and
always followed by the TOTP step.

Google is faked at the HTTP layer only (the `responses` library): the token exchange and the
userinfo call. Everything on our side runs for real: social-auth's views and pipeline,
backoffice.google.existing_staff_only, GoogleSignInErrorMiddleware, the OTP views, the audit
trail and the staff sessions.
"""

from __future__ import annotations

import html
import os
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest
import responses
from django.contrib.auth import SESSION_KEY, get_user_model
from django.test import Client
from django.urls import reverse
from responses import matchers
from social_django.models import UserSocialAuth
from staff import PASSWORD, code, enrol, make_staff

from backoffice import audit
from backoffice.models import AuditEvent, StaffSession

pytestmark = pytest.mark.django_db

BASE_DIR = Path(__file__).resolve().parents[2]

KEY = "1234-test.apps.googleusercontent.com"
SECRET = "test-client-secret"
ALLOWED = ["example.com"]

AUTHORIZE_URL = "https://accounts.google.com/o/oauth2/auth"
TOKEN_URL = "https://accounts.google.com/o/oauth2/token"
USERINFO_URL = "https://www.googleapis.com/oauth2/v3/userinfo"
ACCESS_TOKEN = "ya29.test-access-token"

BEGIN = "/accounts/social/login/google-oauth2/"
COMPLETE = "/accounts/social/complete/google-oauth2/"
LOGIN = "/accounts/login/"
OTP = "/accounts/otp/"

NO_STAFF_ACCOUNT = (
    "There is no staff account for that Google address. Ask an administrator to create one."
)
HD_NOT_ALLOWED = "That Google account is not in a domain allowed to sign in here."
EMAIL_DOMAIN_NOT_ALLOWED = "That Google account may not sign in here (its domain is not allowed)."
DID_NOT_COMPLETE = "Google sign-in did not complete:"

_MISSING = object()


# --- helpers ---------------------------------------------------------------------------------


@pytest.fixture
def google(settings):
    """Google sign-in configured as the environment would (settings are read at import)."""
    settings.GOOGLE_OAUTH2_KEY = KEY
    settings.GOOGLE_OAUTH2_SECRET = SECRET
    settings.SOCIAL_AUTH_GOOGLE_OAUTH2_KEY = KEY
    settings.SOCIAL_AUTH_GOOGLE_OAUTH2_SECRET = SECRET
    settings.GOOGLE_ALLOWED_DOMAINS = list(ALLOWED)
    settings.SOCIAL_AUTH_GOOGLE_OAUTH2_WHITELISTED_DOMAINS = list(ALLOWED)
    settings.GOOGLE_SIGN_IN = True
    return settings


@pytest.fixture
def alice():
    """An active staff member with a confirmed authenticator; email alice@example.com."""
    user = make_staff("viewer", "alice")
    assert user.email == "alice@example.com"
    return user


def with_email(user, email: str):
    """make_staff() names the address after the username; an admin may have typed another."""
    user.email = email
    user.save()
    return user


def profile(
    email: str = "alice@example.com",
    *,
    sub: str = "108000000000000000001",
    hd: object = "example.com",
    email_verified: object = True,
) -> dict:
    """Google's userinfo answer (OpenID Connect claims); _MISSING leaves a claim out."""
    data = {
        "sub": sub,
        "email": email,
        "email_verified": email_verified,
        "hd": hd,
        "name": "Alice Example",
        "given_name": "Alice",
        "family_name": "Example",
        "picture": "https://lh3.googleusercontent.com/a/test",
    }
    return {k: v for k, v in data.items() if v is not _MISSING and v is not None}


def begin(client: Client, next_url: str | None = None) -> str:
    """POST the Google button; returns the state Google would echo back."""
    response = client.post(BEGIN, {"next": next_url} if next_url is not None else {})
    assert response.status_code == 302, response
    location = urlparse(response["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == AUTHORIZE_URL
    return parse_qs(location.query)["state"][0]


def complete(client: Client, state: str | None, userinfo: dict, *, code_: str = "4/0-code"):
    """Google redirects the browser back; our server exchanges the code and reads userinfo.
    Both Google endpoints must be called exactly once (assert_all_requests_are_fired)."""
    with responses.RequestsMock(assert_all_requests_are_fired=True) as rsps:
        token = rsps.post(
            TOKEN_URL,
            json={
                "access_token": ACCESS_TOKEN,
                "token_type": "Bearer",
                "expires_in": 3599,
                "scope": "openid email profile",
            },
        )
        info = rsps.get(
            USERINFO_URL,
            json=userinfo,
            match=[matchers.header_matcher({"Authorization": f"Bearer {ACCESS_TOKEN}"})],
        )
        params = {"code": code_}
        if state is not None:
            params["state"] = state
        response = client.get(COMPLETE, params)
        assert token.call_count == 1
        assert info.call_count == 1
        sent = parse_qs(token.calls[0].request.body)
        assert sent["code"] == [code_]
        assert sent["client_id"] == [KEY]
        assert sent["client_secret"] == [SECRET]
        assert sent["grant_type"] == ["authorization_code"]
        assert sent["redirect_uri"][0].endswith(COMPLETE)
    return response


def complete_without_google(client: Client, params: dict):
    """The callback is refused before any call to Google (a bad state, a denied consent)."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        token = rsps.post(TOKEN_URL, json={"access_token": ACCESS_TOKEN, "token_type": "Bearer"})
        info = rsps.get(USERINFO_URL, json=profile())
        response = client.get(COMPLETE, params)
        assert token.call_count == 0, "the code was exchanged despite a refused callback"
        assert info.call_count == 0
    return response


def google_sign_in(client: Client, userinfo: dict, next_url: str | None = None):
    return complete(client, begin(client, next_url), userinfo)


def events(action: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=action).order_by("pk"))


def page_text(response) -> str:
    return html.unescape(response.content.decode())


def assert_not_signed_in(client: Client) -> None:
    assert SESSION_KEY not in client.session
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"].startswith(LOGIN)


def assert_refused(client: Client, response, message: str, *, reason: str | None = None) -> None:
    """Back on the login page with `message`, signed out, audited as a failed Google sign-in."""
    assert response.status_code == 302
    assert response["Location"] == LOGIN
    page = client.get(response["Location"])
    assert page.status_code == 200
    assert message in page_text(page)
    assert_not_signed_in(client)
    assert events(audit.SIGN_IN) == []
    assert not StaffSession.objects.exists()
    failed = [e for e in events(audit.SIGN_IN_FAILED) if e.details.get("method") == "google"]
    assert len(failed) == 1, [e.details for e in events(audit.SIGN_IN_FAILED)]
    if reason is not None:
        assert failed[0].details["reason"] == reason


class Forms(HTMLParser):
    """Every <form>: its method, action, inputs (name -> value) and button texts."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict] = []
        self._button = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form":
            self.forms.append(
                {
                    "method": (attrs.get("method") or "get").lower(),
                    "action": attrs.get("action"),
                    "inputs": {},
                    "buttons": [],
                }
            )
        elif self.forms and tag == "input" and attrs.get("name"):
            self.forms[-1]["inputs"][attrs["name"]] = attrs.get("value") or ""
        elif self.forms and tag == "button":
            self._button = True
            self.forms[-1]["buttons"].append("")

    def handle_endtag(self, tag):
        if tag == "button":
            self._button = False

    def handle_data(self, data):
        if self._button and self.forms:
            self.forms[-1]["buttons"][-1] += data.strip()


def forms_of(response) -> list[dict]:
    parser = Forms()
    parser.feed(response.content.decode())
    return parser.forms


def google_forms(response) -> list[dict]:
    return [f for f in forms_of(response) if f["action"] and "social" in f["action"]]


# --- the login page --------------------------------------------------------------------------


def test_urls_are_where_the_feature_expects_them():
    assert reverse("social:begin", args=["google-oauth2"]) == BEGIN
    assert reverse("social:complete", args=["google-oauth2"]) == COMPLETE
    assert reverse("login") == LOGIN
    assert reverse("otp-verify") == OTP


def test_without_google_configured_there_is_no_button_and_passwords_still_work(
    client, settings, alice
):
    settings.GOOGLE_OAUTH2_KEY = settings.GOOGLE_OAUTH2_SECRET = ""
    settings.SOCIAL_AUTH_GOOGLE_OAUTH2_KEY = settings.SOCIAL_AUTH_GOOGLE_OAUTH2_SECRET = ""
    settings.GOOGLE_SIGN_IN = False
    page = client.get(LOGIN)
    assert page.status_code == 200
    assert "Sign in with Google" not in page_text(page)
    assert BEGIN not in page_text(page)
    assert google_forms(page) == []
    password_forms = [f for f in forms_of(page) if f["action"] == LOGIN]
    assert len(password_forms) == 1
    assert {"username", "password", "csrfmiddlewaretoken"} <= set(password_forms[0]["inputs"])

    response = client.post(LOGIN, {"username": "alice", "password": PASSWORD})
    assert response.status_code == 302
    assert response["Location"].startswith(OTP)
    assert client.session[SESSION_KEY] == str(alice.pk)
    assert [e.details["method"] for e in events(audit.SIGN_IN)] == ["password"]


def test_with_google_configured_the_button_posts_to_begin_with_a_csrf_token(client, google):
    page = client.get(LOGIN)
    assert page.status_code == 200
    [form] = google_forms(page)
    assert form["method"] == "post"
    assert form["action"] == BEGIN
    assert form["inputs"].get("csrfmiddlewaretoken")
    assert form["buttons"] == ["Sign in with Google"]
    # Whatever happens at Google, the next stop is the OTP step.
    assert form["inputs"]["next"].startswith(OTP)
    # The password form is still there.
    assert [f for f in forms_of(page) if f["action"] == LOGIN]


def test_begin_is_post_only_and_csrf_protected(google):
    browser = Client(enforce_csrf_checks=True)
    assert browser.get(BEGIN).status_code == 405
    assert browser.post(BEGIN).status_code == 403  # no CSRF token

    [form] = google_forms(browser.get(LOGIN))
    response = browser.post(BEGIN, form["inputs"])
    assert response.status_code == 302
    assert response["Location"].startswith(AUTHORIZE_URL + "?")


def test_begin_sends_the_browser_to_google_with_our_client_and_callback(client, google):
    response = client.post(BEGIN)
    assert response.status_code == 302
    query = parse_qs(urlparse(response["Location"]).query)
    assert query["client_id"] == [KEY]
    assert query["response_type"] == ["code"]
    assert query["redirect_uri"] == [f"http://testserver{COMPLETE}"]
    assert "email" in query["scope"][0].split()
    assert query["prompt"] == ["select_account"]
    assert len(query["state"][0]) >= 32
    assert SECRET not in response["Location"]


# --- the happy path --------------------------------------------------------------------------


def test_google_sign_in_then_totp_reaches_the_dashboard(client, google, alice):
    device = enrol(alice)
    client.get(LOGIN)
    key_before = client.session.session_key

    response = google_sign_in(client, profile())
    assert response.status_code == 302
    assert response["Location"] == OTP
    assert client.session[SESSION_KEY] == str(alice.pk)
    assert client.session.session_key != key_before  # a new session id at sign-in

    # Signed in, but not verified: everything past the OTP step is still closed.
    for path in ("/", "/deposits/", "/admin/", "/audit/"):
        blocked = client.get(path)
        assert blocked.status_code == 302, path
        assert blocked["Location"].startswith(OTP), (path, blocked["Location"])
    assert events(audit.OTP_VERIFIED) == []

    assert client.get(OTP).status_code == 200
    verified = client.post(OTP, {"token": code(device), "next": "/deposits/"})
    assert verified.status_code == 302
    assert verified["Location"] == "/deposits/"
    assert client.get("/").status_code == 200
    assert client.get("/deposits/").status_code == 200

    [sign_in] = events(audit.SIGN_IN)
    assert sign_in.details == {"method": "google"}
    assert sign_in.actor_id == alice.pk
    [otp_verified] = events(audit.OTP_VERIFIED)
    assert otp_verified.actor_id == alice.pk
    assert otp_verified.pk > sign_in.pk

    [session] = StaffSession.objects.filter(user=alice)
    assert session.method == StaffSession.Method.GOOGLE
    assert session.session_key == client.session.session_key  # followed the OTP rotation
    assert session.ended_at is None

    [association] = UserSocialAuth.objects.all()
    assert (association.user, association.provider) == (alice, "google-oauth2")
    assert association.uid == profile()["sub"]
    assert "access_token" not in (association.extra_data or {})  # no Google token kept


def test_google_sign_in_without_an_authenticator_goes_to_enrolment(client, google, alice):
    response = google_sign_in(client, profile())
    assert response["Location"] == OTP
    onward = client.get(OTP)
    assert onward.status_code == 302
    assert onward["Location"].startswith(reverse("otp-setup"))
    assert client.get("/deposits/")["Location"].startswith(OTP)


def test_the_login_pages_next_is_kept_but_still_goes_through_otp(client, google, alice):
    device = enrol(alice)
    response = google_sign_in(client, profile(), next_url=f"{OTP}?next=/deposits/")
    assert response["Location"] == f"{OTP}?next=/deposits/"
    verified = client.post(response["Location"], {"token": code(device)})
    assert verified["Location"] == "/deposits/"


@pytest.mark.parametrize(
    "next_url", ["https://evil.example/phish", "//evil.example/", "/deposits/"]
)
def test_a_next_never_skips_the_otp_step_nor_leaves_the_site(client, google, alice, next_url):
    enrol(alice)
    response = google_sign_in(client, profile(), next_url=next_url)
    assert response.status_code == 302
    assert "evil.example" not in response["Location"]
    landing = client.get(response["Location"])
    if landing.status_code == 200:  # the OTP page itself
        assert landing.wsgi_request.path == OTP
    else:  # or a page that sends there
        assert landing.status_code == 302
        assert landing["Location"].startswith(OTP)
    assert events(audit.OTP_VERIFIED) == []


@pytest.mark.parametrize(
    ("stored", "from_google"),
    [("Alice@Example.com", "alice@example.com"), ("alice@example.com", "ALICE@Example.COM")],
)
def test_the_email_is_matched_case_insensitively(client, google, alice, stored, from_google):
    alice.email = stored
    alice.save()
    response = google_sign_in(client, profile(from_google))
    assert response["Location"] == OTP
    assert client.session[SESSION_KEY] == str(alice.pk)
    assert get_user_model().objects.get(pk=alice.pk).email == stored  # never rewritten


def test_a_second_sign_in_reuses_the_association(client, google, alice):
    device = enrol(alice)
    assert google_sign_in(client, profile())["Location"] == OTP
    client.post(reverse("logout"))
    assert_not_signed_in(client)

    response = google_sign_in(client, profile())
    assert response["Location"] == OTP
    assert client.session[SESSION_KEY] == str(alice.pk)
    assert client.post(OTP, {"token": code(device)})["Location"] == "/"
    [association] = UserSocialAuth.objects.all()
    assert association.user == alice
    assert len(events(audit.SIGN_IN)) == 2
    assert StaffSession.objects.filter(user=alice, method="google").count() == 2


def test_an_inactive_namesake_does_not_make_the_match_ambiguous(client, google, alice):
    with_email(make_staff("viewer", "old-alice", is_active=False), "alice@example.com")
    response = google_sign_in(client, profile())
    assert response["Location"] == OTP
    assert client.session[SESSION_KEY] == str(alice.pk)


def test_google_does_not_bypass_the_lockout_at_the_otp_step(client, google, alice, settings):
    device = enrol(alice)
    for _ in range(settings.AXES_FAILURE_LIMIT):
        client.post(LOGIN, {"username": "alice", "password": "wrong"})
    assert google_sign_in(client, profile())["Location"] == OTP
    locked = client.post(OTP, {"token": code(device)})
    assert locked.status_code == 429
    assert client.get("/")["Location"].startswith(OTP)
    assert events(audit.OTP_VERIFIED) == []


# --- refusals --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("email", "hd"),
    [
        ("mallory@other.test", "other.test"),  # another Workspace
        ("mallory@gmail.com", None),  # a personal account
        ("alice@mail.example.com", "example.com"),  # a subdomain is another domain
        ("alice@example.com.other.test", "example.com"),
    ],
)
def test_an_email_outside_the_allowed_domains_is_refused(client, google, email, hd):
    # Even with a staff account holding exactly that address.
    with_email(make_staff("viewer", "mallory"), email)
    users = get_user_model().objects.count()
    response = google_sign_in(client, profile(email, hd=hd))
    assert_refused(client, response, EMAIL_DOMAIN_NOT_ALLOWED, reason="authentication_disallowed")
    assert get_user_model().objects.count() == users
    assert not UserSocialAuth.objects.exists()


@pytest.mark.parametrize("hd", [_MISSING, "", "other.test", "example.com.other.test"])
def test_an_allowed_email_without_googles_hosted_domain_is_refused(client, google, alice, hd):
    response = google_sign_in(client, profile(hd=hd))
    assert_refused(client, response, HD_NOT_ALLOWED)
    failed = events(audit.SIGN_IN_FAILED)[-1]
    assert failed.details["error"] == "DomainNotAllowed"
    assert not UserSocialAuth.objects.exists()


def test_an_unknown_google_account_is_refused_and_nobody_is_created(client, google, alice):
    users = get_user_model().objects.count()
    response = google_sign_in(client, profile("carol@example.com", sub="108000000000000000099"))
    assert_refused(client, response, NO_STAFF_ACCOUNT)
    assert events(audit.SIGN_IN_FAILED)[-1].details["error"] == "NoStaffAccount"
    assert get_user_model().objects.count() == users
    assert not get_user_model().objects.filter(email__iexact="carol@example.com").exists()
    assert not get_user_model().objects.filter(username__iexact="carol").exists()
    assert not UserSocialAuth.objects.exists()


def test_a_deactivated_account_is_refused(client, google, alice):
    enrol(alice)
    alice.is_active = False
    alice.save()
    response = google_sign_in(client, profile())
    assert_refused(client, response, NO_STAFF_ACCOUNT)
    assert not UserSocialAuth.objects.exists()


def test_an_account_deactivated_after_linking_google_is_refused(client, google, alice):
    assert google_sign_in(client, profile())["Location"] == OTP
    client.post(reverse("logout"))
    alice.is_active = False
    alice.save()
    sign_ins = len(events(audit.SIGN_IN))

    response = google_sign_in(client, profile())
    assert response.status_code == 302
    assert response["Location"] == LOGIN
    assert NO_STAFF_ACCOUNT in page_text(client.get(LOGIN))
    assert_not_signed_in(client)
    assert len(events(audit.SIGN_IN)) == sign_ins
    assert events(audit.SIGN_IN_FAILED)[-1].details["method"] == "google"


@pytest.mark.parametrize("email_verified", [False, "true", _MISSING])
def test_an_unverified_email_is_refused(client, google, alice, email_verified):
    response = google_sign_in(client, profile(email_verified=email_verified))
    assert_refused(client, response, DID_NOT_COMPLETE)
    assert events(audit.SIGN_IN_FAILED)[-1].details["reason"] in ("invalid_claim", "missing_claim")
    assert not UserSocialAuth.objects.exists()


def test_two_active_accounts_with_the_address_are_refused(client, google, alice):
    with_email(make_staff("viewer", "bob"), "ALICE@example.com")
    response = google_sign_in(client, profile())
    assert_refused(client, response, NO_STAFF_ACCOUNT)
    assert not UserSocialAuth.objects.exists()


def test_a_link_to_another_account_than_the_address_names_is_refused(client, google, alice):
    """Google's subject is linked to alice, but the address now belongs to bob only."""
    assert google_sign_in(client, profile())["Location"] == OTP
    client.post(reverse("logout"))
    alice.email = "alice.old@example.com"
    alice.save()
    with_email(make_staff("viewer", "bob"), "alice@example.com")

    response = google_sign_in(client, profile())
    assert response["Location"] == LOGIN
    assert NO_STAFF_ACCOUNT in page_text(client.get(LOGIN))
    assert_not_signed_in(client)
    assert [a.user for a in UserSocialAuth.objects.all()] == [alice]


@pytest.mark.parametrize("tamper", ["changed", "missing", "empty", "another browser's"])
def test_a_bad_state_is_refused_before_the_code_is_exchanged(client, google, alice, tamper):
    state = begin(client)
    if tamper == "changed":
        params = {"code": "4/0-code", "state": state[:-1] + ("A" if state[-1] != "A" else "B")}
    elif tamper == "missing":
        params = {"code": "4/0-code"}
    elif tamper == "empty":
        params = {"code": "4/0-code", "state": ""}
    else:
        params = {"code": "4/0-code", "state": begin(Client())}
    response = complete_without_google(client, params)
    assert_refused(client, response, DID_NOT_COMPLETE)
    assert not UserSocialAuth.objects.exists()


def test_a_state_is_single_use(client, google, alice):
    state = begin(client)
    assert complete(client, state, profile())["Location"] == OTP
    client.post(reverse("logout"))
    response = complete_without_google(client, {"code": "4/0-code", "state": state})
    assert response["Location"] == LOGIN
    assert DID_NOT_COMPLETE in page_text(client.get(LOGIN))
    assert_not_signed_in(client)


def test_consent_declined_at_google_is_refused(client, google, alice):
    state = begin(client)
    response = complete_without_google(client, {"error": "access_denied", "state": state})
    assert_refused(client, response, DID_NOT_COMPLETE)


def test_a_rejected_code_is_refused(client, google, alice):
    state = begin(client)
    with responses.RequestsMock(assert_all_requests_are_fired=True) as rsps:
        rsps.post(TOKEN_URL, status=400, json={"error": "invalid_grant"})
        response = client.get(COMPLETE, {"code": "4/0-stale", "state": state})
    assert_refused(client, response, DID_NOT_COMPLETE)


def test_the_complete_step_alone_signs_nobody_in(client, google, alice):
    """A forged callback with no begin in this browser."""
    response = complete_without_google(client, {"code": "4/0-code", "state": "x" * 32})
    assert_refused(client, response, DID_NOT_COMPLETE)


# --- start-up validation ---------------------------------------------------------------------


def run_django(code_: str, tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """`code_` after django.setup() in a fresh interpreter with only the given environment."""
    clean_env = {
        "PATH": os.environ["PATH"],
        "DJANGO_SETTINGS_MODULE": "backoffice.settings",
        "VAR_DIR": str(tmp_path / "var"),
        "DEBUG": "true",
    }
    return subprocess.run(
        [sys.executable, "-c", f"import django; django.setup()\n{code_}"],
        cwd=BASE_DIR,
        env=clean_env | env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize("domains", [None, "", " , "], ids=["unset", "empty", "blank"])
def test_start_up_refuses_google_without_allowed_domains(tmp_path, domains):
    env = {} if domains is None else {"GOOGLE_ALLOWED_DOMAINS": domains}
    result = run_django("", tmp_path, GOOGLE_OAUTH2_KEY="x", GOOGLE_OAUTH2_SECRET="y", **env)
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert "GOOGLE_ALLOWED_DOMAINS" in result.stderr


@pytest.mark.parametrize(
    "given", [{"GOOGLE_OAUTH2_KEY": "x"}, {"GOOGLE_OAUTH2_SECRET": "y"}], ids=["key", "secret"]
)
def test_start_up_refuses_half_a_google_client(tmp_path, given):
    result = run_django("", tmp_path, GOOGLE_ALLOWED_DOMAINS="example.com", **given)
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert "GOOGLE_OAUTH2_KEY" in result.stderr and "GOOGLE_OAUTH2_SECRET" in result.stderr


def test_start_up_with_google_configured(tmp_path):
    show = (
        "from django.conf import settings as s\n"
        "print(s.GOOGLE_SIGN_IN)\n"
        "print(','.join(s.SOCIAL_AUTH_GOOGLE_OAUTH2_WHITELISTED_DOMAINS))\n"
        "print(','.join(s.GOOGLE_ALLOWED_DOMAINS))\n"
        "print(' '.join(s.CONTENT_SECURITY_POLICY['DIRECTIVES']['form-action']))\n"
        "print(s.SOCIAL_AUTH_GOOGLE_OAUTH2_KEY, s.SOCIAL_AUTH_GOOGLE_OAUTH2_SECRET)\n"
    )
    result = run_django(
        show,
        tmp_path,
        GOOGLE_OAUTH2_KEY="x",
        GOOGLE_OAUTH2_SECRET="y",
        GOOGLE_ALLOWED_DOMAINS="Example.COM,staff.example.org",
    )
    assert result.returncode == 0, result.stderr
    sign_in, whitelisted, allowed, form_action, client_ = result.stdout.splitlines()
    assert sign_in == "True"
    assert whitelisted == allowed == "example.com,staff.example.org"
    assert "https://accounts.google.com" in form_action.split()
    assert client_ == "x y"


def test_start_up_without_google(tmp_path):
    show = (
        "from django.conf import settings as s\n"
        "print(s.GOOGLE_SIGN_IN)\n"
        "print(' '.join(s.CONTENT_SECURITY_POLICY['DIRECTIVES']['form-action']))\n"
    )
    result = run_django(show, tmp_path)
    assert result.returncode == 0, result.stderr
    sign_in, form_action = result.stdout.splitlines()
    assert sign_in == "False"
    assert "accounts.google.com" not in form_action


def test_refusals_record_the_address_that_was_tried(client, google, alice):
    response = google_sign_in(client, profile("carol@example.com", sub="108000000000000000099"))
    assert_refused(client, response, NO_STAFF_ACCOUNT)
    response = google_sign_in(client, profile("mallory@evil.test", hd="evil.test"))
    tried = [e.details.get("email") for e in events(audit.SIGN_IN_FAILED)]
    assert sorted(tried) == ["carol@example.com", "mallory@evil.test"]
    assert response["Location"] == LOGIN


def test_without_google_configured_its_begin_and_complete_steps_do_not_exist(client):
    assert client.post("/accounts/social/login/google-oauth2/").status_code == 404
    assert client.get("/accounts/social/complete/google-oauth2/?code=x&state=y").status_code == 404
