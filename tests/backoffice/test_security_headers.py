"""Browser-side defences: a strict CSP the pages actually keep to, no framing, htmx without eval,
and the production settings that `check --deploy` asks for."""

from __future__ import annotations

import json
import os
import re
import secrets
import string
import subprocess
import sys
from pathlib import Path

import pytest
from django.contrib.staticfiles import finders
from django.test import Client
from staff import MODEL_BACKEND, make_staff, sign_in

from backoffice import audit, roles

pytestmark = pytest.mark.django_db

BASE_DIR = Path(__file__).resolve().parents[2]

# A <script> element without a src attribute (inline code), a style attribute, a <style> element,
# an inline event handler or a javascript: URL: each is refused by the CSP below, or needs
# 'unsafe-inline' to work.
INLINE_SCRIPT = re.compile(r"<script\b(?![^>]*\bsrc\s*=)[^>]*>", re.IGNORECASE)
STYLE_ATTRIBUTE = re.compile(r"<[^>]+\sstyle\s*=", re.IGNORECASE)
STYLE_ELEMENT = re.compile(r"<style\b", re.IGNORECASE)
EVENT_HANDLER = re.compile(r"<[^>]+\son[a-z]+\s*=", re.IGNORECASE)
JAVASCRIPT_URL = re.compile(r"""(?:href|src|action)\s*=\s*["']?\s*javascript:""", re.IGNORECASE)


def directives(response) -> dict[str, list[str]]:
    header = response["Content-Security-Policy"]
    parsed = {}
    for part in header.split(";"):
        name, *values = part.split()
        parsed[name] = values
    return parsed


def assert_no_inline_code(html: str, where: str) -> None:
    for name, pattern in (
        ("inline <script>", INLINE_SCRIPT),
        ("style attribute", STYLE_ATTRIBUTE),
        ("<style> element", STYLE_ELEMENT),
        ("inline event handler", EVENT_HANDLER),
        ("javascript: URL", JAVASCRIPT_URL),
    ):
        found = pattern.findall(html)
        assert not found, f"{where}: {name}: {found[:3]}"


# --- Headers ------------------------------------------------------------------------------------


@pytest.fixture
def staff_client(client):
    sign_in(client, make_staff(roles.ADMIN))
    return client


def test_a_staff_page_has_a_strict_content_security_policy(staff_client):
    response = staff_client.get("/")
    assert response.status_code == 200
    header = response["Content-Security-Policy"]
    assert "unsafe-inline" not in header
    assert "unsafe-eval" not in header
    assert "unsafe-hashes" not in header
    assert "*" not in header
    policy = directives(response)
    assert policy["script-src"] == ["'self'"]
    assert policy["style-src"] == ["'self'"]
    assert policy["default-src"] == ["'self'"]
    assert policy["frame-ancestors"] == ["'none'"]
    assert policy["object-src"] == ["'none'"]
    assert policy["base-uri"] == ["'none'"]
    assert policy["form-action"] == ["'self'"]  # no Google sign-in configured in tests


@pytest.mark.parametrize("path", ["/", "/accounts/login/", "/healthz", "/no-such-page/"])
def test_every_answer_is_unframeable_and_under_the_policy(staff_client, path):
    response = Client().get(path) if path == "/accounts/login/" else staff_client.get(path)
    assert response["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in response["Content-Security-Policy"]
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"


def test_a_refusal_and_a_redirect_carry_the_headers_too(client):
    redirect = client.get("/audit/")
    assert redirect.status_code == 302
    assert redirect["X-Frame-Options"] == "DENY"
    sign_in(client, make_staff(roles.VIEWER))
    refused = client.get("/audit/")
    assert refused.status_code == 403
    assert refused["X-Frame-Options"] == "DENY"
    assert "script-src 'self'" in refused["Content-Security-Policy"]


# --- The pages keep to the policy ---------------------------------------------------------------


def pages_as_each_visitor() -> list[tuple[str, Client, str, int]]:
    """(what, client, path, status) for every page we render ourselves."""
    anonymous = Client()

    enrolling = Client()  # password done, no authenticator yet
    enrolling.force_login(make_staff(None, username="new"), backend=MODEL_BACKEND)

    unverified = Client()  # password done, authenticator enrolled, code not yet given
    sign_in(unverified, make_staff(None, username="halfway"), verified=False)

    member = Client()  # every page the shell has: compliance sees them all but the admin
    sign_in(member, make_staff(roles.COMPLIANCE))
    audit.record(audit.SIGN_IN, details={"method": "password", "note": "<b>x</b>"})

    stale = Client()  # signed in a while ago: a money action would ask for a fresh code
    sign_in(stale, make_staff(roles.OPERATOR), otp_age=3600)

    return [
        ("login", anonymous, "/accounts/login/", 200),
        ("OTP setup", enrolling, "/accounts/otp/setup/", 200),
        ("OTP verify", unverified, "/accounts/otp/", 200),
        ("sign-out", unverified, "/accounts/logout/", 200),
        ("dashboard", member, "/", 200),
        ("deposits", member, "/deposits/", 200),
        ("payouts", member, "/payouts/", 200),
        ("payments", member, "/payments/", 200),
        ("parties", member, "/parties/", 200),
        ("webhook events", member, "/webhooks/events/", 200),
        ("exports", member, "/exports/", 200),
        ("audit", member, "/audit/", 200),
        ("sessions", member, "/accounts/sessions/", 200),
        ("backup codes", member, "/accounts/backup-codes/", 200),
        ("step-up", stale, "/accounts/step-up/?next=/payouts/", 200),
        ("403", stale, "/audit/", 403),
        ("404", member, "/no-such-page/", 404),
    ]


def test_no_page_has_inline_script_or_style():
    for what, client, path, status in pages_as_each_visitor():
        response = client.get(path)
        assert response.status_code == status, (what, response.status_code)
        html = response.content.decode()
        assert "<html" in html, what
        assert_no_inline_code(html, what)


@pytest.mark.parametrize(
    "html",
    [
        "<script>alert(1)</script>",
        '<SCRIPT type="module">x()</SCRIPT>',
        '<div style="color: red">',
        "<p class=x style='x'>",
        "<style>p {}</style>",
        '<button onclick="x()">',
        '<a href="javascript:x()">',
    ],
)
def test_the_scan_catches_inline_code(html):
    with pytest.raises(AssertionError):
        assert_no_inline_code(html, "sample")


def test_the_scan_lets_safe_markup_through():
    assert_no_inline_code(
        '<script src="/static/x.js" defer></script><p class="styled" data-style="x">'
        '<a href="/javascript/">',
        "sample",
    )


def test_the_pages_checked_above_are_the_pages_they_claim_to_be():
    titles = {
        "login": "Sign in",
        "OTP setup": "Set up your authenticator",
        "OTP verify": "<form",
        "dashboard": "Dashboard",
        "audit": "Audit trail",
        "403": "Not allowed",
        "404": "Not found",
    }
    for what, client, path, _ in pages_as_each_visitor():
        if what in titles:
            assert titles[what] in client.get(path).content.decode(), what


def test_the_enrolment_qr_code_is_inline_svg_without_style():
    client = Client()
    client.force_login(make_staff(None, username="new"), backend=MODEL_BACKEND)
    html = client.get("/accounts/otp/setup/").content.decode()
    assert "<svg" in html
    assert_no_inline_code(html, "OTP setup")


def test_the_error_pages_rendered_standalone_have_no_inline_code():
    from django.template.loader import render_to_string

    assert_no_inline_code(render_to_string("500.html"), "500")


def test_htmx_is_configured_for_the_policy(staff_client):
    html = staff_client.get("/").content.decode()
    match = re.search(r"""<meta name="htmx-config" content='([^']*)'>""", html)
    assert match, "no htmx-config meta"
    config = json.loads(match[1])
    assert config["allowEval"] is False
    assert config["includeIndicatorStyles"] is False
    assert config["selfRequestsOnly"] is True
    assert config.get("allowScriptTags") is False


def test_htmx_is_served_from_our_static_files(staff_client):
    html = staff_client.get("/").content.decode()
    sources = re.findall(r"<script\b[^>]*\bsrc=\"([^\"]+)\"", html)
    assert sources, "no script at all"
    htmx = [s for s in sources if "htmx" in s]
    assert htmx, sources
    for src in sources:
        assert src.startswith("/static/"), src
        assert finders.find(src.removeprefix("/static/")), f"{src} is not among our static files"


# --- Production settings ------------------------------------------------------------------------


def production_env() -> dict[str, str]:
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "VIRTUAL_ENV", "DATABASE_URL", "REDIS_URL")
    env = {k: v for k, v in os.environ.items() if k in keep}
    alphabet = string.ascii_letters + string.digits + "!@#%^&*(-_=+)"
    env |= {
        "SECRET_KEY": "".join(secrets.choice(alphabet) for _ in range(60)),
        "ALLOWED_HOSTS": "backoffice.example.com",
        "FLASHFX_API_URL": "https://api.example.com/",
        "FLASHFX_EMAIL": "x@example.com",
        "FLASHFX_PASSWORD": "x",
        "FLASHFX_WEBHOOK_SECRET": "x",
        "AUDIT_HMAC_KEY": "a-key-kept-outside-the-database",
        "DJANGO_SETTINGS_MODULE": "backoffice.settings",
    }
    assert "DEBUG" not in env
    return env


def run(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *args],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_check_deploy_finds_nothing_with_production_settings():
    done = run("manage.py", "check", "--deploy", "--fail-level", "WARNING", env=production_env())
    assert done.returncode == 0, done.stdout + done.stderr
    assert "System check identified no issues" in done.stdout, done.stdout + done.stderr


@pytest.mark.parametrize("debug", [None, "false"], ids=["DEBUG unset", "DEBUG=false"])
def test_without_debug_cookies_are_secure_and_hsts_is_on(debug):
    env = production_env()
    if debug is not None:
        env["DEBUG"] = debug
    code = (
        "import json, django; django.setup(); from django.conf import settings as s; "
        "print(json.dumps({n: getattr(s, n, None) for n in ("
        "'DEBUG', 'SESSION_COOKIE_SECURE', 'CSRF_COOKIE_SECURE', 'SECURE_HSTS_SECONDS', "
        "'SECURE_SSL_REDIRECT', 'SESSION_COOKIE_HTTPONLY', 'X_FRAME_OPTIONS', "
        "'CSRF_FAILURE_VIEW')}))"
    )
    done = run("-c", code, env=env)
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["DEBUG"] is False
    assert seen["SESSION_COOKIE_SECURE"] is True
    assert seen["CSRF_COOKIE_SECURE"] is True
    assert seen["SECURE_HSTS_SECONDS"] > 0
    assert seen["SECURE_SSL_REDIRECT"] is True
    assert seen["SESSION_COOKIE_HTTPONLY"] is True
    assert seen["X_FRAME_OPTIONS"] == "DENY"
    assert seen["CSRF_FAILURE_VIEW"] == "backoffice.views.csrf_failure"
